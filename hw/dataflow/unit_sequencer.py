"""Issue schedule of one unit of the dataflow datapath: its sub-convolutions, group after group.

A unit walks the run's pixel groups ``g = 0 .. G-1``. For each one it waits until the datapath
allows it (``may_start``, from :class:`~hw.dataflow.sequencer.DataflowSequencer`: input loaded,
squeezed neighbours written, line-buffer or output slot free), sets its lanes' border flags
(SETUP, one cycle), issues the entries of its non-empty slots one per cycle (slot 0, 1, 2 in
that order) and a flush token, and goes on to the next group at once: it never waits for its
own pipeline to drain. The group number, the border flags and the phase travel with every entry
through the entry pipeline (``carry_context``), so entries of two groups may be in flight.

``done`` counts the groups whose results are all written: the flush token of group g, delayed
by the pipeline's latency, increments it in the cycle its last result is written.

*Dual mode* (``dual``; the squeeze PE array of a Fire layer that also expands channels): two
jobs per group, A (slot 0, the squeeze, group ``g``) and B (slots 1 and 2, its expand channels,
group ``g_b``), each with its own ``may_start`` and written counter (``done``, ``done_b``). Job B
of group ``g_b`` runs as soon as job A of group ``g_b + lag`` has been issued (``lag = A + 1``),
so the two alternate; border flags follow job B's groups.

Cycles per group: ``3 + passes * (n + 1)`` (SETTLE, WAIT and SETUP, then per pass the ``n``
entries and a FLUSH) when ``may_start`` is already high. A unit of ``P / passes`` multipliers covers
the group's P lanes in ``passes`` blocks, one after another. The exact schedule is
:mod:`hw.dataflow.cycle_model`.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.blocks.row_flags import column_flags, row_flags
from hw.blocks.signals import delay

__all__ = ["UnitSequencer"]


class UnitSequencer(wiring.Component):
    """One unit's issue FSM.

    Throughput one entry per cycle while a slot is issued; besides, per group, SETTLE, WAIT,
    SETUP and one FLUSH per pass. Latency from ``run`` to the first WAIT: 2 cycles.

    Parameters
    ----------
    lanes : int
        P.
    groups : int
        D, the line buffer's groups (``group`` is the group number mod D).
    max_groups : int
        Largest G of any run.
    entries : int
        Entries in the unit's weight store.
    drain : int
        Cycles from a flush token's issue until its results are written.
    passes : int
        Blocks of ``lanes / passes`` lanes the unit's multipliers cover one after another:
        every group's entries are issued ``passes`` times, once per block, each pass ending
        in a flush (``issue_pass`` says which block).

    Members
    -------
    run : In(1)
        Pulse: start a run of ``groups_in`` groups (the other inputs steady until ``finished``).
    groups_in : In(range(max_groups + 1))
    base, count : In(ArrayLayout(range(entries + 1), 3))
        Per slot: first entry and entry count (0: the slot is skipped).
    phase : In(ArrayLayout(2, 3))
        Per slot: the phase the entry pipeline runs it in.
    width, pixels_above : In
        Row width and ``H*W - W``; ``col_init`` (per block of ``col_block`` lanes its first
        lane's column, ``k mod W``), ``col_step`` (``P mod W``): for the border flags.
    may_start : In(1)
        The datapath allowed group ``g`` to start in the cycle before (registered by the
        sequencer, so a unit spends one SETTLE cycle after each group change).
    dual, lag : In(1), In(range(max_groups + 1))
        Dual mode (see the module docstring) and its lag between jobs A and B.
    may_start_b : In(1)
        As ``may_start``, for job B's group ``g_b``.
    g : Out(range(max_groups + 1))
        The group the unit is at (G once it has issued every group); job A's in dual mode.
    done : Out(range(max_groups + 1))
        Groups whose results are all written (job A's in dual mode).
    g_b, done_b : Out(range(max_groups + 1))
        Job B's group and written groups (dual mode only).
    finished : Out(1)
        ``g == done == G`` (and ``g_b == done_b == G`` in dual mode): nothing in flight.
    entry_addr, issue_valid, issue_flush, issue_phase, issue_restart, issue_pass : Out
        To the weight store and the entry pipeline, as from the shared engine's sequencer,
        and the block of lanes this pass covers.
    group : Out(range(D))
        The group of the running job, as issued (mod D).
    top_ok, bot_ok, left_ok, right_ok : Out(P)
        Per lane of the group being expanded, set in SETUP.
    """

    def __init__(self, *, lanes, groups, max_groups, entries, drain, passes=1, col_block=1):
        self._lanes, self._groups, self._drain = lanes, groups, drain
        self._passes = passes
        # Lanes sharing one column counter (the shared sequencer's rule: a power of two no
        # wider than any run, see hw.fire.sequencer.column_block).
        self._col_block = col_block
        col = range(max(lanes, 256))
        super().__init__({
            "run": In(1),
            "groups_in": In(range(max_groups + 1)),
            "base": In(data.ArrayLayout(range(entries + 1), 3)),
            "count": In(data.ArrayLayout(range(entries + 1), 3)),
            "phase": In(data.ArrayLayout(2, 3)),
            "width": In(8),
            "pixels_above": In(17),
            "col_init": In(data.ArrayLayout(col, lanes // col_block)),
            "col_step": In(range(lanes + 1)),
            "may_start": In(1),
            "dual": In(1),
            "lag": In(range(max_groups + 1)),
            "may_start_b": In(1),
            "g": Out(range(max_groups + 1)),
            "done": Out(range(max_groups + 1)),
            "g_b": Out(range(max_groups + 1)),
            "done_b": Out(range(max_groups + 1)),
            "finished": Out(1),
            "entry_addr": Out(range(max(2, entries))),
            "issue_valid": Out(1),
            "issue_flush": Out(1),
            "issue_phase": Out(2),
            "issue_restart": Out(1),
            "issue_pass": Out(range(max(2, passes))),
            "group": Out(range(groups)),
            "top_ok": Out(lanes), "bot_ok": Out(lanes),
            "left_ok": Out(lanes), "right_ok": Out(lanes),
        })

    def elaborate(self, platform):
        m = Module()
        P, G = self._lanes, self.groups_in
        slot = Signal(2)
        job = Signal()          # 0: job A (or the only job), 1: job B (dual mode)
        j = Signal.like(self.count[0])
        col = [Signal(range(max(P, 256)), name=f"col{k}") for k in range(P // self._col_block)]
        # The slots of the running job: all in single mode; slot 0 (A) or 1, 2 (B) in dual.
        count = [Mux(~self.dual | ~job, self.count[0], 0),
                 Mux(~self.dual | job, self.count[1], 0),
                 Mux(~self.dual | job, self.count[2], 0)]
        cur = Mux(slot == 0, count[0], Mux(slot == 1, count[1], count[2]))
        base = Mux(slot == 0, self.base[0], Mux(slot == 1, self.base[1], self.base[2]))
        m.d.comb += [
            self.entry_addr.eq(base + j),
            self.issue_phase.eq(Mux(slot == 0, self.phase[0],
                                    Mux(slot == 1, self.phase[1], self.phase[2]))),
            self.group.eq(Mux(job, self.g_b, self.g)),
            self.finished.eq((self.g == G) & (self.done == G) &
                             (~self.dual | ((self.g_b == G) & (self.done_b == G)))),
        ]
        last_pass = Signal()
        m.d.comb += last_pass.eq(self.issue_pass == self._passes - 1)
        for flag, counter, name in ((~job, self.done, "a"), (job, self.done_b, "b")):
            written = delay(m, self.issue_flush & last_pass & flag, self._drain,
                            f"written_{name}")
            with m.If(written):
                m.d.sync += counter.eq(counter + 1)
        first = Mux(count[0] != 0, 0, Mux(count[1] != 0, 1, Mux(count[2] != 0, 2, 3)))
        following = Mux((slot < 1) & (count[1] != 0), 1, Mux((slot < 2) & (count[2] != 0), 2, 3))
        # Dual mode: job B (group g_b) as soon as the A job of group g_b + lag is issued.
        want_b = self.dual & (self.g_b != G) & ((self.g_b + self.lag < self.g) | (self.g == G))
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.run):
                    m.d.sync += [self.g.eq(0), self.done.eq(0), self.g_b.eq(0),
                                 self.done_b.eq(0), job.eq(0)]
                    m.d.sync += [c.eq(self.col_init[k]) for k, c in enumerate(col)]
                    m.next = "SETTLE"
            with m.State("SETTLE"):
                # may_start is registered: it speaks of the group of the cycle before.
                m.next = "WAIT"
            with m.State("WAIT"):
                m.d.sync += [j.eq(0), job.eq(want_b)]
                with m.If(~want_b & (self.g == G)):
                    m.next = "IDLE"
                with m.Elif(Mux(want_b, self.may_start_b, self.may_start)):
                    m.next = "SETUP"
            with m.State("SETUP"):
                with m.If(~self.dual | job):
                    self._border_flags(m, col, Mux(job, self.g_b, self.g))
                m.d.sync += slot.eq(first)
                with m.If(first == 3):
                    m.next = "FLUSH"
                with m.Else():
                    m.next = "ISSUE"
            with m.State("ISSUE"):
                m.d.comb += [self.issue_valid.eq(1), self.issue_restart.eq(j == 0)]
                m.d.sync += j.eq(j + 1)
                with m.If(j + 1 == cur):
                    m.d.sync += [j.eq(0), slot.eq(following)]
                    with m.If(following == 3):
                        m.next = "FLUSH"
            with m.State("FLUSH"):
                m.d.comb += self.issue_flush.eq(1)
                with m.If(last_pass):
                    with m.If(job):
                        m.d.sync += self.g_b.eq(self.g_b + 1)
                    with m.Else():
                        m.d.sync += self.g.eq(self.g + 1)
                    m.d.sync += self.issue_pass.eq(0)
                    m.next = "SETTLE"
                with m.Else():      # the next block of the group's lanes: the same entries
                    m.d.sync += [self.issue_pass.eq(self.issue_pass + 1), slot.eq(first)]
                    with m.If(first != 3):
                        m.next = "ISSUE"
        return m

    def _border_flags(self, m, col, g):
        """Per lane of group ``g``: which 3x3 neighbours lie inside the image."""
        P = self._lanes
        top, bottom = row_flags(m, g, P, self.width, self.pixels_above)
        m.d.sync += [self.top_ok.eq(Cat(*top)), self.bot_ok.eq(Cat(*bottom))]
        B = self._col_block
        for b, first in enumerate(col):
            left, right = column_flags(m, first, B, self.width)
            m.d.sync += [self.left_ok[b * B + j].eq(left[j]) for j in range(B)]
            m.d.sync += [self.right_ok[b * B + j].eq(right[j]) for j in range(B)]
            advanced = first + self.col_step
            m.d.sync += first.eq(Mux(advanced >= self.width, advanced - self.width, advanced))
