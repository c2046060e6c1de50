"""Exact cycle model of one image through the :class:`~hw.network.accelerator.NetworkAccelerator`.

Cycle 0 is the cycle ``start`` is high; the image is offered from then on, a pixel a cycle, and
the logits are always taken. Each step is an engine run (:mod:`hw.fire.cycle_model`) started
two cycles after the previous step ended; conv1's input beats are paced by the patch streamer
(:func:`patch_pacing`); a step ends once the engine's ``done`` and its sink's last beat were
both seen. The tests assert equality with simulation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hw.arch import SHARED
from hw.network.max_pool import MaxPool
from hw.network.patch_runs import run_bytes

__all__ = ["NetworkCycles", "network_cycles", "patch_pacing", "check_channels_per_cycle"]

#: Cycles from the sequencer's ``start`` to the first engine ``start`` transfer (IDLE, LOAD).
LAUNCH = 2
#: Cycles from a step's end to the next engine ``start`` transfer (LOAD, LAUNCH).
BETWEEN = 2
#: Cycles from the global sum's last input beat to its first logit.
SUM_FIRST = 4
#: Cycles between two words of logits (the global sum's READ and LOAD states).
SUM_WORD = 2


#: Fewest cycles per beat the engine's sinks take: the max-pool 3, the global sum 2.
SINK_BEAT_CYCLES = 3


def check_channels_per_cycle(lanes, channels_per_beat, channels_per_cycle, *, network=True):
    """``ValueError`` unless the shared engine can move W = ``channels_per_cycle`` channels per
    cycle with these lanes and L = ``channels_per_beat``, and, in a ``network``, its drainer
    (a beat every L / W cycles) never outruns the max-pool (a beat every 3 cycles)."""
    from hw.fire.group_buffer import GroupBuffer
    GroupBuffer.check_parameters(lanes, channels_per_beat,
                                 1 << (channels_per_beat - 1).bit_length(), channels_per_cycle)
    if network and channels_per_beat < SINK_BEAT_CYCLES * channels_per_cycle:
        raise ValueError(
            f"{channels_per_cycle} channels per cycle need at least "
            f"{SINK_BEAT_CYCLES * channels_per_cycle} channels per beat in a network (the "
            f"max-pool takes a beat every {SINK_BEAT_CYCLES} cycles), not {channels_per_beat}: "
            f"raise the channels per beat or lower the channels per cycle")


@dataclass
class NetworkCycles:
    """Cycles of one image and where they go, per step."""
    cycles: int
    steps: list = field(default_factory=list)   # (name, start cycle, LayerCycles)


def patch_pacing(*, kernel, stride, width, out_width, patch_beats, reads_per_beat,
                 image_start):
    """``input_ready(k, t)`` of the patch streamer's beats (see
    :func:`hw.fire.cycle_model.plain_layer_cycles`), in the engine run's cycles.

    A beat takes ``R + 2`` cycles to gather after the last one left (R = ``reads_per_beat``
    row-memory reads: L bytes, or L / Q runs with the run streamer; the last read's register,
    the send state); a new output row adds ``stride + 2`` (the row cursor moves
    a row a cycle); the first beat waits for ``kernel`` image rows, the image's first pixel
    having been taken in cycle ``image_start``.
    """
    L = reads_per_beat
    row_beats = patch_beats * out_width

    def ready(k, taken):
        if k == 0:
            return image_start + kernel * width + L + 2
        if k % row_beats == 0:
            return taken + L + stride + 4
        return taken + L + 2
    return ready


def network_cycles(program, *, lanes, arch=SHARED):
    """Predict the cycles of one image through the whole network.

    Parameters
    ----------
    program : NetworkProgram
    lanes : int
    arch : hw.arch.Arch
        The engine's datapath (shared by default).
    """
    L = program.channels_per_beat
    check_channels_per_cycle(lanes, L, arch.channels_per_cycle)
    eprog = program.program_for(arch)
    result = NetworkCycles(cycles=0)
    start = LAUNCH
    for step in program.steps:
        layer = eprog.layers[step.layer]
        pacing = None
        if step.source is None:
            conv1 = program.conv1.spec
            pacing = patch_pacing(
                kernel=conv1.kernel, stride=conv1.stride, width=program.input_size,
                out_width=step.width, patch_beats=-(-layer.in_channels // L),
                reads_per_beat=L // run_bytes(conv1.kernel) if program.patch_runs else L,
                image_start=0)
        run = arch.layer_cycles(eprog, step.layer, lanes=lanes, channels_per_beat=L,
                                input_ready=pacing)
        result.steps.append((step.name, start, run))
        done = start + run.cycles
        last = start + run.last_beat
        if step.dest is None:
            words = -(-program.classes // L)
            tail = program.classes - (words - 1) * L
            sink = last + SUM_FIRST + (words - 1) * (L + SUM_WORD) + tail
        elif step.pool:
            sink = last + MaxPool.LATENCY + 1
        else:
            sink = last + 1
        end = max(done + 1, sink)
        start = end + BETWEEN
    result.cycles = end
    return result
