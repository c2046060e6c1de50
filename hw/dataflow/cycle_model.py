"""Exact cycle model of one :class:`~hw.dataflow.engine.DataflowEngine` layer run.

It replays the input loader, the three units' issue FSMs
(:class:`~hw.dataflow.unit_sequencer.UnitSequencer`), the slot joins and the output drainer at
the level of their handshakes, with the input stream always valid and the output stream always
ready. Cycle 0 is the ``start`` transfer; the result is the cycle ``done`` is high. The tests
assert equality with simulation.

Per unit and group ``g``: the unit enters WAIT in cycle ``w``; ``may_start`` holds from cycle
``r`` (the latest of its conditions), so SETUP is in ``t + 1`` with ``t = max(w, r)``; then,
for each of its ``p`` passes, its ``n`` entries and a FLUSH: the last FLUSH is in
``F = t + 1 + p * (n + 1)`` and WAIT for ``g + 1`` in ``F + 1``. Its results for ``g`` are
counted as written from ``F + drain + 1``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hw.fire.entry_pipeline import EntryPipeline
from hw.fire.output_drainer import OutputDrainer

__all__ = ["UnitCycles", "DataflowCycles", "dataflow_layer_cycles"]

#: Why a unit waited, in the order the conditions are named in the report.
REASONS = ("input", "squeezed", "line_space", "output")


@dataclass
class UnitCycles:
    """One unit's cycles in a run: issuing, waiting (by reason), and the rest."""
    entries_per_group: int
    issue: int = 0
    wait: dict = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    overhead: int = 0       # WAIT/SETUP/FLUSH cycles, and idle after its last group


@dataclass
class DataflowCycles:
    """Cycles of one dataflow layer run."""
    cycles: int
    groups: int
    units: list
    last_beat: int = 0
    detail: dict = field(default_factory=dict)


def dataflow_layer_cycles(*, lanes, channels_per_beat, line_groups, in_channels, out_channels,
                          unit_entries, fire, height, width, passes=(1, 1, 1),
                          drain=EntryPipeline.latency):
    """Predict one layer run.

    Parameters
    ----------
    lanes, channels_per_beat : int
        P and L.
    line_groups : int
        D of the engine (:attr:`DataflowEngine.line_groups`).
    in_channels, out_channels : int
    unit_entries : (int, int, int)
        Entries per group of the squeeze, expand-1x1 and expand-3x3 units in this layer.
    fire : bool
        A Fire layer (else a plain layer: every unit reads the input and writes outputs).
    passes : (int, int, int)
        Passes of each unit over a group.
    height, width : int
    """
    P, L, D = lanes, channels_per_beat, line_groups
    pixels = height * width
    G = -(-pixels // P)
    A = (width + P) // P if fire else 0
    go = 2 + max(height, P // width)
    npix = [min(P, pixels - g * P) for g in range(G)]
    load = [n * -(-in_channels // L) * L for n in npix]
    unload = [n * -(-out_channels // L) * L for n in npix]
    readers = (0,) if fire else (0, 1, 2)
    writers = (1, 2) if fire else (0, 1, 2)
    units = [UnitCycles(n) for n in unit_entries]
    flush = [[None] * G for _ in range(3)]          # F_u(g)
    wait_at = [go + 3] * 3                          # WAIT cycle of each unit's next group
    full, fill, o_release = {}, {}, {}
    nxt = [0, 0, 0]
    loader_next = drainer_next = go + 1
    last_read = go

    def written(u, g):
        return flush[u][g] + drain + 1

    def ready(u, g):
        """(cycle from which unit u may start group g, the reason it binds) or None."""
        conds = []
        if u in readers:
            if g not in full:
                return None
            conds.append((full[g], "input"))
        if u in writers and g >= 2:
            if g - 2 not in o_release:
                return None
            conds.append((o_release[g - 2] + 1, "output"))
        if fire and u:
            need = min(g + A, G - 1)
            if flush[0][need] is None:
                return None
            conds.append((written(0, need), "squeezed"))
        if fire and not u and g - D + A >= 0:
            h = g - D + A
            if flush[1][h] is None or flush[2][h] is None:
                return None
            conds.append((max(written(1, h), written(2, h)), "line_space"))
        return max(conds, default=(0, None))

    while min(nxt) < G or len(fill) < G:
        progressed = False
        # The loader: group g once group g-2 is released by every reader.
        g = len(full)
        if g < G and (g < 2 or all(flush[u][g - 2] is not None for u in readers)):
            release = max((written(u, g - 2) for u in readers), default=go) if g >= 2 else go
            start = max(loader_next, release + 1)
            full[g] = start + load[g]
            loader_next = full[g]
            progressed = True
        for u in range(3):
            g = nxt[u]
            if g >= G:
                continue
            r = ready(u, g)
            if r is None:
                continue
            t = max(wait_at[u], r[0])
            if t > wait_at[u]:
                units[u].wait[r[1]] += t - wait_at[u]
            flush[u][g] = t + 1 + passes[u] * (unit_entries[u] + 1)
            units[u].issue += passes[u] * unit_entries[u]
            wait_at[u] = flush[u][g] + 1
            nxt[u] += 1
            progressed = True
        # The drainer: a group once every writer has written it.
        g = len(fill)
        if g < G and all(flush[u][g] is not None for u in writers):
            fill[g] = max(written(u, g) for u in writers)
            first_read = max(drainer_next, fill[g] + 1)
            last_read = first_read + unload[g] - 1
            o_release[g] = last_read
            drainer_next = last_read + 1
            progressed = True
        if not progressed:
            raise AssertionError("the dataflow schedule deadlocks (line buffer too small?)")

    done = max(max(written(u, G - 1) for u in range(3)), last_read + OutputDrainer.TAIL)
    for unit in units:
        unit.overhead = done - unit.issue - sum(unit.wait.values())
    return DataflowCycles(cycles=done, groups=G, units=units,
                          last_beat=last_read + OutputDrainer.TAIL - 1,
                          detail={"reach": A, "init": go, "line_groups": D})


def layer_cycles(engine_or_params, program, index, *, height=None, width=None):
    """:func:`dataflow_layer_cycles` of layer ``index`` of a
    :class:`~hw.dataflow.program.DataflowProgram` on an engine (or a dict with ``lanes``,
    ``channels_per_beat``, ``line_groups``)."""
    params = engine_or_params
    if not isinstance(params, dict):
        params = {"lanes": params.lanes, "channels_per_beat": params.channels_per_beat,
                  "line_groups": params.line_groups}
    params = {"passes": program.passes, **params}
    layer = program.layers[index]
    return dataflow_layer_cycles(
        **params, in_channels=layer.in_channels, out_channels=layer.out_channels,
        unit_entries=[unit.layers[index].entry_count for unit in program.units],
        fire=layer.is_fire, height=layer.height if height is None else height,
        width=layer.width if width is None else width)
