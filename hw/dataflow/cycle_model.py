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


def _jobs(G, dual, lag):
    """A unit's jobs in issue order: ``("all", g)``, or in dual mode ``("A", g)`` (squeeze) and
    ``("B", g)`` (expand), B as soon as the A job ``lag`` groups later is issued."""
    if not dual:
        return [("all", g) for g in range(G)]
    jobs, ga, gb = [], 0, 0
    while ga < G or gb < G:
        if gb < G and (gb + lag < ga or ga == G):
            jobs.append(("B", gb))
            gb += 1
        else:
            jobs.append(("A", ga))
            ga += 1
    return jobs


def dataflow_layer_cycles(*, lanes, channels_per_beat, line_groups, in_channels, out_channels,
                          unit_slots, fire, height, width, dual=False, passes=(1, 1, 1),
                          input_ready=None, drain=EntryPipeline.latency):
    """Predict one layer run.

    Parameters
    ----------
    lanes, channels_per_beat : int
        P and L.
    line_groups : int
        D of the engine (:attr:`DataflowEngine.line_groups`).
    in_channels, out_channels : int
    unit_slots : three (int, int, int)
        Per unit, the entries per group of its slots (squeeze, 1x1 part, 3x3 or plain part).
    fire : bool
        A Fire layer (else a plain layer: every unit reads the input and writes outputs).
    height, width : int
    dual : bool
        The squeeze unit also expands (its slots 1 and 2 run as a second job per group).
    passes : (int, int, int)
        Passes of each unit over a group.
    input_ready : callable, optional
        Paces the input stream as for :func:`hw.fire.cycle_model.plain_layer_cycles` (conv1's
        patches); by default every beat is offered at once.
    """
    P, L, D = lanes, channels_per_beat, line_groups
    pixels = height * width
    G = -(-pixels // P)
    A = (width + P) // P if fire else 0
    go = 2 + max(height, P // width)
    npix = [min(P, pixels - g * P) for g in range(G)]
    load = [n * -(-in_channels // L) * L for n in npix]
    unload = [n * -(-out_channels // L) * L for n in npix]
    units = [UnitCycles(sum(slots)) for slots in unit_slots]
    jobs = [_jobs(G, dual and u == 0, A + 1) for u in range(3)]
    entries = {"all": [sum(s) for s in unit_slots], "A": [unit_slots[0][0]] * 3,
               "B": [unit_slots[0][1] + unit_slots[0][2]] * 3}
    flush = {}                                      # (u, kind, g) -> last FLUSH cycle
    # Written-group events each handshake waits for: (unit, job kind) pairs.
    readers = [(0, "A" if dual else "all")] if fire else [(u, "all") for u in range(3)]
    writers = ([(0, "B")] if dual else []) + [(1, "all"), (2, "all")] if fire else \
        [(u, "all") for u in range(3)]
    squeezer = (0, "A" if dual else "all")
    line_readers = [(1, "all"), (2, "all")] + ([(0, "B")] if dual else [])
    wait_at = [go + 3] * 3
    full, fill, o_release = {}, {}, {}
    nxt = [0, 0, 0]
    loader_next = drainer_next = go + 1
    last_read = go
    in_beats = -(-in_channels // L)
    pace = {"beat": 0, "taken": None}

    def loaded(g, start):
        """Cycle group g's slot is full when its loading may start in ``start``."""
        if input_ready is None:
            return start + load[g]
        ready = start
        for _ in range(npix[g] * in_beats):
            pace["taken"] = max(ready, input_ready(pace["beat"], pace["taken"]))
            ready = pace["taken"] + L
            pace["beat"] += 1
        return ready

    def written(key, g):
        f = flush.get((*key, g))
        return None if f is None else f + drain + 1

    def latest(events):
        cycles = [written(key, g) for key, g in events]
        return None if None in cycles else max(cycles, default=0)

    def ready(u, kind, g):
        """(cycle from which the job may start, the reason that binds) or None."""
        conds = []
        if (u, kind) in readers:
            if g not in full:
                return None
            conds.append((full[g], "input"))
        if ((u, kind) in writers) and g >= 2:
            if g - 2 not in o_release:
                return None
            conds.append((o_release[g - 2] + 1, "output"))
        if fire and (u or kind == "B"):
            c = latest([(squeezer, min(g + A, G - 1))])
            if c is None:
                return None
            conds.append((c, "squeezed"))
        if fire and u == 0 and kind != "B" and g - D + A >= 0:
            c = latest([(key, g - D + A) for key in line_readers])
            if c is None:
                return None
            conds.append((c, "line_space"))
        return max(conds, default=(0, None))

    while min(n - len(j) for n, j in zip(nxt, jobs)) < 0 or len(fill) < G:
        progressed = False
        g = len(full)           # the loader: group g once g-2 is released by every reader
        if g < G:
            release = go if g < 2 else latest([(key, g - 2) for key in readers])
            if release is not None:
                full[g] = loaded(g, max(loader_next, release + 1))
                loader_next = full[g]
                progressed = True
        for u in range(3):
            if nxt[u] == len(jobs[u]):
                continue
            kind, g = jobs[u][nxt[u]]
            r = ready(u, kind, g)
            if r is None:
                continue
            t = max(wait_at[u], r[0])
            if t > wait_at[u]:
                units[u].wait[r[1]] += t - wait_at[u]
            n = entries[kind][u]
            flush[(u, kind, g)] = t + 1 + passes[u] * (n + 1)
            units[u].issue += passes[u] * n
            wait_at[u] = flush[(u, kind, g)] + 1
            nxt[u] += 1
            progressed = True
        g = len(fill)           # the drainer: a group once every writer has written it
        if g < G:
            f = latest([(key, g) for key in writers])
            if f is not None:
                fill[g] = f
                first_read = max(drainer_next, f + 1)
                last_read = first_read + unload[g] - 1
                o_release[g] = last_read
                drainer_next = last_read + 1
                progressed = True
        if not progressed:
            raise AssertionError("the dataflow schedule deadlocks (line buffer too small?)")

    ends = [written((u, kind), g) for u in range(3) for kind, g in jobs[u][-1:]]
    done = max(max(ends), last_read + OutputDrainer.TAIL)
    for unit in units:
        unit.overhead = done - unit.issue - sum(unit.wait.values())
    return DataflowCycles(cycles=done, groups=G, units=units,
                          last_beat=last_read + OutputDrainer.TAIL - 1,
                          detail={"reach": A, "init": go, "line_groups": D})


def layer_cycles(engine_or_params, program, index, *, height=None, width=None,
                 input_ready=None):
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
        unit_slots=[tuple(0 if c is None else c.entry_count for c in unit.layers[index].slots)
                    for unit in program.units],
        dual=program.units[0].layers[index].dual, fire=layer.is_fire, input_ready=input_ready,
        height=layer.height if height is None else height,
        width=layer.width if width is None else width)
