"""Exact cycle model of one :class:`~hw.fire.engine.FireEngine` layer run.

It replays the engine's three controllers (input loader, lane sequencer, output drainer) at
the level of their handshakes, assuming the input stream is always valid and the output stream
always ready. Cycle 0 is the cycle the ``start`` transfer happens; the result is the cycle
``done`` is high. The tests assert equality with simulation, so any change to the engine's
control must be mirrored here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hw.fire.entry_pipeline import EntryPipeline
from hw.fire.output_drainer import OutputDrainer

__all__ = ["LayerCycles", "layer_cycles", "plain_layer_cycles", "fire_cycles", "run_cycles"]


@dataclass
class LayerCycles:
    """Cycles of one layer run and where they go."""
    cycles: int
    groups: int
    issue: int = 0          # cycles issuing sparse entries (one entry per cycle, all lanes busy)
    wait_input: int = 0     # sequencer waiting for the loader
    wait_output: int = 0    # sequencer waiting for the drainer to free a result buffer
    overhead: int = 0       # flushes, pipeline drains, control states, start and tail
    last_beat: int = 0      # cycle the run's last output beat is transferred
    detail: dict = field(default_factory=dict)


def layer_cycles(*, lanes, channels_per_beat, in_channels, out_channels, entry_counts,
                 height, width, drain=EntryPipeline.latency, channels_per_cycle=1):
    """Predict the cycles of one Fire layer run.

    Parameters
    ----------
    lanes, channels_per_beat : int
        Engine parameters P and L.
    channels_per_cycle : int
        W, channels the loader and the drainer move per cycle (a beat takes L / W cycles).
    in_channels, out_channels : int
        Cin and E1 + E3 of the layer.
    entry_counts : (int, int, int)
        Hardware entries (fillers included) of squeeze, expand 1x1, expand 3x3.
    height, width : int
        Size of this run.
    drain : int
        ``FireEngine.DRAIN`` (the entry pipeline's latency).
    """
    P, L = lanes, channels_per_beat
    n_sq, n_e1, n_e3 = entry_counts
    pixels = height * width
    groups = -(-pixels // P)
    reach = (width + P) // P
    go = 2 + max(height, P // width)
    npix = [min(P, pixels - g * P) for g in range(groups)]
    beat_cycles = L // channels_per_cycle
    load = [n * -(-in_channels // L) * beat_cycles for n in npix]
    unload = [n * -(-out_channels // L) * beat_cycles for n in npix]

    result = LayerCycles(cycles=0, groups=groups)
    x_release = {}      # group -> cycle its input slot was released
    o_release = {}      # group -> cycle its last output byte was read
    full = {}
    loader_next = go + 1
    drainer_next = go + 1
    last_read = go
    cyc = go + 1        # cycle of STEP for step 0
    for step in range(groups + reach):
        if step < groups:
            g = step
            start = max(loader_next, x_release.get(g - 2, go) + 1)
            full[g] = start + load[g]
            loader_next = full[g]
            wait = max(cyc + 1, full[g])
            result.wait_input += wait - (cyc + 1)
            release = wait + 1 + n_sq + drain
            x_release[g] = release
            result.issue += n_sq
            after_squeeze = release + 1
        else:
            after_squeeze = cyc + 1
        if step >= reach:
            e = step - reach
            wait = max(after_squeeze + 1, o_release.get(e - 2, go) + 1)
            result.wait_output += wait - (after_squeeze + 1)
            filled = wait + 2 + n_e1 + n_e3 + drain
            result.issue += n_e1 + n_e3
            first_read = max(drainer_next, filled + 1)
            last_read = first_read + unload[e] - 1
            o_release[e] = last_read
            drainer_next = last_read + 1
            nxt = filled + 1
        else:
            nxt = after_squeeze + 1
        cyc = nxt + 1
    return _finish(result, cyc, last_read, reach=reach, init=go)


def _finish(result, cyc, last_read, *, reach, init):
    """Fill in ``result`` once the last step ends in ``cyc`` and the drainer's last read is in
    ``last_read``: the last byte read leaves the drainer's two read registers, its FIFO and the
    beat packer ``OutputDrainer.TAIL`` cycles later."""
    done = max(cyc, last_read + OutputDrainer.TAIL)
    result.cycles = done
    result.last_beat = last_read + OutputDrainer.TAIL - 1
    result.overhead = done - result.issue - result.wait_input - result.wait_output
    result.detail = {"groups": result.groups, "reach": reach, "init": init}
    return result


def plain_layer_cycles(*, lanes, channels_per_beat, in_channels, out_channels, entries,
                       height, width, drain=EntryPipeline.latency, input_ready=None,
                       channels_per_cycle=1):
    """Predict the cycles of one plain-layer run (one 1x1 convolution, phase 3).

    Parameters are those of :func:`layer_cycles`, with ``entries`` the convolution's hardware
    entries. ``input_ready``, if given, paces the input stream: ``input_ready(k, t)`` is the
    earliest cycle beat ``k`` can be offered when beat ``k - 1`` was taken in cycle ``t``
    (``t`` is None for beat 0); by default every beat is offered at once.
    """
    P, L = lanes, channels_per_beat
    pixels = height * width
    groups = -(-pixels // P)
    go = 2 + max(height, P // width)
    in_beats = -(-in_channels // L)
    npix = [min(P, pixels - g * P) for g in range(groups)]
    beat_cycles = L // channels_per_cycle
    unload = [n * -(-out_channels // L) * beat_cycles for n in npix]

    result = LayerCycles(cycles=0, groups=groups)
    x_release, o_release = {}, {}
    loader_next = go + 1
    drainer_next = go + 1
    taken = None            # cycle the last input beat was taken
    beat = 0
    cyc = go + 1            # cycle of STEP for step 0
    for g in range(groups):
        start = max(loader_next, x_release.get(g - 2, go) + 1)
        if input_ready is None:
            full = start + npix[g] * in_beats * beat_cycles
        else:
            ready = start
            for _ in range(npix[g] * in_beats):
                taken = max(ready, input_ready(beat, taken))
                ready = taken + beat_cycles
                beat += 1
            full = ready
        loader_next = full
        wait = max(cyc + 1, full, o_release.get(g - 2, go) + 1)
        if full >= o_release.get(g - 2, go) + 1:
            result.wait_input += wait - (cyc + 1)
        else:
            result.wait_output += wait - (cyc + 1)
        release = wait + 1 + entries + drain
        x_release[g] = release
        result.issue += entries
        first_read = max(drainer_next, release + 1)
        last_read = first_read + unload[g] - 1
        o_release[g] = last_read
        drainer_next = last_read + 1
        cyc = release + 2
    return _finish(result, cyc, last_read, reach=0, init=go)


def run_cycles(layer, *, lanes, channels_per_beat, height=None, width=None, input_ready=None,
               channels_per_cycle=1):
    """Cycles of one run of any layer of an :class:`~hw.fire.program.EngineProgram`."""
    if layer.is_fire:
        if input_ready is not None:
            raise ValueError("a paced input is modelled for plain layers only")
        return fire_cycles(layer, lanes=lanes, channels_per_beat=channels_per_beat,
                           height=height, width=width, channels_per_cycle=channels_per_cycle)
    return plain_layer_cycles(
        lanes=lanes, channels_per_beat=channels_per_beat, in_channels=layer.in_channels,
        out_channels=layer.out_channels, entries=layer.conv.entry_count,
        height=layer.height if height is None else height,
        width=layer.width if width is None else width, input_ready=input_ready,
        channels_per_cycle=channels_per_cycle)


def fire_cycles(fire, *, lanes, channels_per_beat, height=None, width=None,
                channels_per_cycle=1):
    """:func:`layer_cycles` of one :class:`~hw.fire.program.FireProgram` run.

    ``height``/``width`` default to the layer's own size (a cropped run passes its own).
    """
    return layer_cycles(
        lanes=lanes, channels_per_beat=channels_per_beat, in_channels=fire.in_channels,
        out_channels=fire.out_channels, entry_counts=[c.entry_count for c in fire.convs],
        height=fire.height if height is None else height,
        width=fire.width if width is None else width, channels_per_cycle=channels_per_cycle)
