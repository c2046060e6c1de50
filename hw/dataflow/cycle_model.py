"""Exact cycle model of one :class:`~hw.dataflow.engine.DataflowEngine` layer run.

It replays the input loader, the three units' issue FSMs
(:class:`~hw.dataflow.unit_sequencer.UnitSequencer`), the slot joins and the output drainer at
the level of their handshakes, with the input stream always valid and the output stream always
ready. Cycle 0 is the ``start`` transfer; the result is the cycle ``done`` is high. The tests
assert equality with simulation.

Per unit and group ``g``: the unit enters SETTLE in cycle ``w`` (WAIT from ``w + 1``); its
start condition holds from cycle ``r`` (the latest of its conditions) and reaches it
registered a cycle later, so it leaves WAIT in ``t = max(w, r) + 1`` and SETUP is in ``t + 1``;
then, for each of its ``p`` passes, its ``n`` entries and a FLUSH: the last FLUSH is in
``F = t + 1 + p * (n + 1)`` and SETTLE for ``g + 1`` in ``F + 1``. Its results for ``g`` are
counted as written from ``F + drain + 1``; the (registered) slot release or fill follows a
cycle after the last unit's.
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
    run = _Replay(lanes=lanes, channels_per_beat=channels_per_beat, line_groups=line_groups,
                  in_channels=in_channels, out_channels=out_channels, unit_slots=unit_slots,
                  fire=fire, height=height, width=width, dual=dual, passes=passes,
                  input_ready=input_ready, drain=drain)
    while not run.finished():
        progressed = run.loader() | any([run.unit(u) for u in range(3)]) | run.drainer()
        if not progressed:
            raise AssertionError("the dataflow schedule deadlocks (line buffer too small?)")
    return run.result()


class _Replay:
    """The state of one replayed run (see :func:`dataflow_layer_cycles`): each step method
    schedules the next event it can (a group loaded, a unit's job, a group drained) once
    everything it waits for is known, and says whether it did."""

    def __init__(self, *, lanes, channels_per_beat, line_groups, in_channels, out_channels,
                 unit_slots, fire, height, width, dual, passes, input_ready, drain):
        P, L = lanes, channels_per_beat
        pixels = height * width
        self.G = G = -(-pixels // P)
        self.A = (width + P) // P if fire else 0
        self.D, self.L, self.fire, self.passes, self.drain = line_groups, L, fire, passes, drain
        self.go = 2 + max(height, P // width)
        self.npix = [min(P, pixels - g * P) for g in range(G)]
        self.in_beats = -(-in_channels // L)
        self.unload = [n * -(-out_channels // L) * L for n in self.npix]
        self.units = [UnitCycles(sum(slots)) for slots in unit_slots]
        self.jobs = [_jobs(G, dual and u == 0, self.A + 1) for u in range(3)]
        self.entries = {"all": [sum(s) for s in unit_slots], "A": [unit_slots[0][0]] * 3,
                        "B": [unit_slots[0][1] + unit_slots[0][2]] * 3}
        self.flush = {}                             # (u, kind, g) -> last FLUSH cycle
        # Whose written groups each handshake waits for: (unit, job kind) pairs.
        both = [(u, "all") for u in range(3)]
        self.readers = [(0, "A" if dual else "all")] if fire else both
        self.writers = ([(0, "B")] if dual else []) + both[1:] if fire else both
        self.squeezer = (0, "A" if dual else "all")
        self.line_readers = both[1:] + ([(0, "B")] if dual else [])
        self.wait_at = [self.go + 3] * 3
        self.full, self.fill, self.o_release = {}, {}, {}
        self.nxt = [0, 0, 0]
        self.loader_next = self.drainer_next = self.go + 1
        self.last_read = self.go
        self.input_ready = input_ready
        self.pace = {"beat": 0, "taken": None}

    def finished(self):
        return all(n == len(j) for n, j in zip(self.nxt, self.jobs)) and len(self.fill) == self.G

    def written(self, key, g):
        f = self.flush.get((*key, g))
        return None if f is None else f + self.drain + 1

    def latest(self, events):
        cycles = [self.written(key, g) for key, g in events]
        return None if None in cycles else max(cycles, default=0)

    def loader(self):
        """Group g is loaded once group g-2 is released by every reader."""
        g = len(self.full)
        if g >= self.G:
            return False
        release = self.go if g < 2 else self.latest([(key, g - 2) for key in self.readers])
        if release is None:
            return False
        start = max(self.loader_next, release + 1 + (g >= 2))     # the pulse is registered
        if self.input_ready is None:
            self.full[g] = start + self.npix[g] * self.in_beats * self.L
        else:
            ready, pace = start, self.pace
            for _ in range(self.npix[g] * self.in_beats):
                pace["taken"] = max(ready, self.input_ready(pace["beat"], pace["taken"]))
                ready = pace["taken"] + self.L
                pace["beat"] += 1
            self.full[g] = ready
        self.loader_next = self.full[g]
        return True

    def ready(self, u, kind, g):
        """(cycle from which the job may start, the reason that binds) or None."""
        conds = []
        if (u, kind) in self.readers:
            if g not in self.full:
                return None
            conds.append((self.full[g], "input"))
        if (u, kind) in self.writers and g >= 2:
            if g - 2 not in self.o_release:
                return None
            conds.append((self.o_release[g - 2] + 1, "output"))
        if self.fire and (u or kind == "B"):
            conds.append((self.latest([(self.squeezer, min(g + self.A, self.G - 1))]),
                          "squeezed"))
        if self.fire and u == 0 and kind != "B" and g - self.D + self.A >= 0:
            h = g - self.D + self.A
            conds.append((self.latest([(key, h) for key in self.line_readers]), "line_space"))
        if any(c is None for c, _ in conds):
            return None
        return max(conds, default=(0, None))

    def unit(self, u):
        """Unit u's next job, once its conditions are known."""
        if self.nxt[u] == len(self.jobs[u]):
            return False
        kind, g = self.jobs[u][self.nxt[u]]
        r = self.ready(u, kind, g)
        if r is None:
            return False
        t = max(self.wait_at[u], r[0]) + 1
        if r[0] > self.wait_at[u]:
            self.units[u].wait[r[1]] += r[0] - self.wait_at[u]
        n = self.entries[kind][u]
        self.flush[(u, kind, g)] = t + 1 + self.passes[u] * (n + 1)
        self.units[u].issue += self.passes[u] * n
        self.wait_at[u] = self.flush[(u, kind, g)] + 1
        self.nxt[u] += 1
        return True

    def drainer(self):
        """Group g is drained once every writer has written it."""
        g = len(self.fill)
        if g >= self.G:
            return False
        f = self.latest([(key, g) for key in self.writers])
        if f is None:
            return False
        f += 1                                      # the fill pulse is registered
        self.fill[g] = f
        first_read = max(self.drainer_next, f + 1)
        self.last_read = first_read + self.unload[g] - 1
        self.o_release[g] = self.last_read
        self.drainer_next = self.last_read + 1
        return True

    def result(self):
        ends = [self.written((u, kind), g) for u in range(3) for kind, g in self.jobs[u][-1:]]
        done = max(max(ends), self.last_read + OutputDrainer.TAIL)
        for unit in self.units:
            unit.overhead = done - unit.issue - sum(unit.wait.values())
        return DataflowCycles(cycles=done, groups=self.G, units=self.units,
                              last_beat=self.last_read + OutputDrainer.TAIL - 1,
                              detail={"reach": self.A, "init": self.go, "line_groups": self.D})


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
