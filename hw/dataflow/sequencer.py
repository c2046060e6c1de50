"""Control of the dataflow datapath: run setup, the three units' issue FSMs, and what lets
each unit start its next group.

Run setup is the shared engine's (:class:`~hw.fire.sequencer.Sequencer`: descriptor latch,
H*W, lane columns, 3x3 tap table; ``go`` to the loader and the drainer), then every unit's
:class:`~hw.dataflow.unit_sequencer.UnitSequencer` walks the groups on its own. A unit may start
group ``g`` (``may_start``) when:

- it reads the input buffer (squeeze unit; every unit in a plain layer): group g is loaded
  (its slot is full and group g-2 was released);
- it writes layer outputs (expand units; every unit in a plain layer): group g's output slot
  is free (group g-2 was filled and drained);
- expand units of a Fire layer: the squeezed groups up to ``g + A`` (``A = ceil((W+1)/P)``)
  are written, or all of them at the end of the map;
- the squeeze unit of a Fire layer: every unit that expands (both expand units, and the
  squeeze unit's own expand job in dual mode) is done with every group that still reads the
  line-buffer slot group g overwrites (``g < min(done1, done2[, done_b0]) + D - A``); in dual
  mode its expand job (``may_start_b``) waits like an expand unit.

An input slot is released when every unit reading it has written its results for that group,
an output slot filled when every unit writing it has (counters of written groups, so units may
be several groups apart). ``may_start`` and the release and fill pulses are registered, and
the counters are compared side by side rather than through a minimum: on ECP5 the chain from
the counters into a unit's FSM was the critical path at 70 MHz, then the minimum of three into
the fill pulse at 73 MHz. ``done`` pulses once every unit has finished and the drainer has
sent the last beat.
"""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from hw.blocks.layouts import start_layout
from hw.dataflow.unit_sequencer import UnitSequencer
from hw.fire.sequencer import Sequencer, _Registers, column_block, descriptor_layout

__all__ = ["DataflowSequencer"]


class DataflowSequencer(Sequencer):
    """Run setup, three unit FSMs and their start conditions (see the module docstring).

    Throughput: each unit issues one entry per cycle while it has a group to work on; latency
    from ``start`` to ``go`` as the shared sequencer's (``2 + max(H, floor(P/W))``).

    Parameters
    ----------
    program : DataflowProgram
    lanes, channels_per_beat : int
        P and L.
    groups : int
        D, the line buffer's groups (a power of two > 2A for the widest Fire layer).
    drain : int
        The entry pipeline's latency.
    fixed_widths : bool
        Reject a Fire run at another width than its layer's (the units' line buffers then
        rotate for those widths only).

    Members
    -------
    start, done, busy, go, pixels, tap_group, tap_rot :
        As the shared :class:`~hw.fire.sequencer.Sequencer`'s.
    desc : Out(descriptor_layout)
        The layer's channels and beats (for the loader and the drainer).
    udesc0, udesc1, udesc2 : Out(descriptor_layout)
        Each unit's descriptor (its codebook, bias and destination bases); the units' issue
        FSMs are :attr:`units` (their ports go to the entry pipelines).
    x_full : In(2); x_release : Out(2); o_full : In(2); o_fill : Out(2); drained : In(1)
        The loader's and the drainer's handshakes.
    bounds : Out(ArrayLayout, 2)
        First output channel of units 1 and 2 (for the drainer).
    """

    def __init__(self, program, *, lanes, channels_per_beat, groups, drain, fixed_widths=False):
        self._program = program
        self._lanes, self._beat = lanes, channels_per_beat
        self._groups, self._drain = groups, drain
        # With fixed widths a Fire run at another width than its layer's is rejected (the
        # units' line buffers then rotate only for the layers' widths).
        self._fixed_widths = bool(fixed_widths)
        self._col_block = column_block(program, lanes, fixed_widths)
        rot_bits = max(1, exact_log2(lanes))
        max_ch = max(program.max("in_channels"), program.max("out_channels"))
        max_groups = (1 << 16) // lanes + 1
        self.units = [UnitSequencer(lanes=lanes, groups=groups, max_groups=max_groups,
                                    entries=len(u.entries), drain=drain, passes=passes,
                                    col_block=self._col_block)
                      for u, passes in zip(program.units, program.passes)]
        members = {
            "start": In(stream.Signature(start_layout())),
            "done": Out(1),
            "busy": Out(1),
            "desc": Out(descriptor_layout(program.units[0])),
            "tap_group": Out(data.ArrayLayout(range(groups), 9)),
            "tap_rot": Out(data.ArrayLayout(unsigned(rot_bits), 9)),
            "go": Out(1),
            "pixels": Out(16),
            "x_full": In(2), "x_release": Out(2),
            "o_full": In(2), "o_fill": Out(2),
            "drained": In(1),
            "bounds": Out(data.ArrayLayout(range(max_ch + 1), 2)),
        }
        for u, unit in enumerate(program.units):
            members[f"udesc{u}"] = Out(descriptor_layout(unit))
        wiring.Component.__init__(self, members)

    def elaborate(self, platform):
        m = Module()
        P = self._lanes
        n_entries = max(len(u.entries) for u in self._program.units)
        r = _Registers(P, n_entries, self._drain, self._col_block)
        r.reads_x = Signal(3)
        r.dual = Signal()
        r.running = Signal()
        r.writes_out = Signal(3)
        r.ubase = [[Signal(range(n_entries + 1), name=f"u{u}_base{s}") for s in range(3)]
                   for u in range(3)]
        r.ucount = [[Signal(range(n_entries + 1), name=f"u{u}_count{s}") for s in range(3)]
                    for u in range(3)]
        r.uphase = [[Signal(2, name=f"u{u}_phase{s}") for s in range(3)] for u in range(3)]
        r.pixels_above = Signal(17)
        self._r = r
        for u, unit in enumerate(self.units):
            m.submodules[f"unit{u}"] = unit
        m.d.comb += self.busy.eq(~self.start.ready)
        # A rejected start's done (the shared sequencer's REJECT register); RUN's overrides.
        m.d.comb += self.done.eq(r.rejecting)
        with m.FSM():
            self._accept_states(m, r)
            self._setup_states(m, r)
            with m.State("STEP"):
                m.d.sync += r.pixels_above.eq(self.pixels - r.width)
                m.next = "LAUNCH"
            with m.State("LAUNCH"):
                m.d.comb += [unit.run.eq(1) for unit in self.units]
                m.next = "RUN"
            with m.State("RUN"):
                # The slot joins count the units' written groups only from here on (until
                # the units restart, their counters still hold the previous run's).
                m.d.comb += r.running.eq(1)
                with m.If(self.units[0].finished & self.units[1].finished &
                          self.units[2].finished & self.drained):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
        self._unit_inputs(m, r)
        self._joins(m, r)
        return m

    def _latch(self, layer, r):
        """Statements that load ``layer``'s descriptors: the layer's and each unit's."""
        prog, L = self._program, self._beat
        index = prog.layers.index(layer)
        e = layer.out_channels
        stmts = [r.plain.eq(not layer.is_fire)]
        for u, unit in enumerate(prog.units):
            ul = unit.layers[index]
            descs = [self.desc, getattr(self, f"udesc{u}")] if u == 0 else \
                [getattr(self, f"udesc{u}")]
            for d in descs:
                stmts += [d.cin.eq(layer.in_channels), d.csq.eq(layer.squeeze_channels),
                          d.e1.eq(0), d.e.eq(e), d.cin_beats.eq(-(-layer.in_channels // L)),
                          d.e_beats.eq(-(-e // L))]
            d = getattr(self, f"udesc{u}")
            for s, conv in enumerate(ul.slots):
                if conv is None:
                    stmts += [r.ucount[u][s].eq(0)]
                    continue
                stmts += [r.ubase[u][s].eq(conv.entry_base), r.ucount[u][s].eq(conv.entry_count),
                          r.uphase[u][s].eq(conv.phase),
                          d.cbbase[s].eq(conv.codebook_base), d.bbase[s].eq(conv.bias_base),
                          d.shift[s].eq(conv.shift), d.dbase[s].eq(conv.dbase)]
            stmts += [r.reads_x[u].eq(ul.reads_x), r.writes_out[u].eq(ul.writes_out)]
            if u == 0:
                stmts += [r.dual.eq(ul.dual)]
            if u:
                stmts += [self.bounds[u - 1].eq(ul.out_lo)]
        return stmts

    def _unit_inputs(self, m, r):
        """Each unit's run parameters and its ``may_start`` (and the squeeze unit's
        ``may_start_b`` for its expand job in dual mode)."""
        D = self._groups
        # The join counters (see _joins) and their values a cycle later, when the slot flags
        # the registered pulses change have changed too.
        r.x_rel = Signal.like(r.groups, name="x_released")
        r.o_filled = Signal.like(r.groups, name="o_filled")
        x_rel, o_filled = (Signal.like(r.groups, name=f"{n}_seen") for n in ("x_rel", "o_fill"))
        m.d.sync += [x_rel.eq(r.x_rel), o_filled.eq(r.o_filled)]
        u0, u1, u2 = self.units

        def line_free(g):
            """Every unit reading the line buffer is done with the groups that read the slot
            group g overwrites: ``g < done + D - A`` for each (compares side by side, not
            through a minimum, to keep the path short)."""
            return ((g + r.reach < u1.done + D) & (g + r.reach < u2.done + D) &
                    (~r.dual | (g + r.reach < u0.done_b + D)))

        def x_ok(g):
            return self.x_full.bit_select(g[0], 1) & (x_rel + 1 >= g)

        def out_ok(g):
            return ~self.o_full.bit_select(g[0], 1) & (o_filled + 1 >= g)

        def squeezed(g):
            """The squeezed groups up to ``g + A`` are written (all of them at the map's end)."""
            return (u0.done >= g + r.reach + 1) | (u0.done >= r.groups)

        for u, unit in enumerate(self.units):
            g = unit.g
            m.d.comb += [
                unit.groups_in.eq(r.groups), unit.width.eq(r.width),
                unit.pixels_above.eq(r.pixels_above), unit.col_step.eq(r.col_step),
                unit.dual.eq(r.dual if u == 0 else 0), unit.lag.eq(r.reach + 1),
            ]
            m.d.comb += [unit.col_init[k].eq(c) for k, c in enumerate(r.col)]
            for s in range(3):
                m.d.comb += [unit.base[s].eq(r.ubase[u][s]), unit.count[s].eq(r.ucount[u][s]),
                             unit.phase[s].eq(r.uphase[u][s])]
            line_ok = line_free(g) if u == 0 else squeezed(g)
            writes = r.writes_out[u] & ~r.dual if u == 0 else r.writes_out[u]
            # Registered: the counters' adds and compares end in a flip-flop, not in the FSMs.
            m.d.sync += unit.may_start.eq((~r.reads_x[u] | x_ok(g)) & (~writes | out_ok(g)) &
                                          (r.plain | line_ok))
        m.d.sync += u0.may_start_b.eq(squeezed(u0.g_b) & out_ok(u0.g_b))

    def _joins(self, m, r):
        """Release an input slot / fill an output slot once every unit using it is done."""
        written = [Mux(r.dual, self.units[0].done_b, self.units[0].done),
                   self.units[1].done, self.units[2].done]
        for flag, count, pulse, dones in (
                (r.reads_x, r.x_rel, self.x_release, [unit.done for unit in self.units]),
                (r.writes_out, r.o_filled, self.o_fill, written)):
            # Every unit using the slot has written the group (side by side compares; an
            # earlier minimum of three was the ECP5 critical path).
            ready = Signal(name=f"{pulse.name}_ready")
            m.d.comb += ready.eq((~flag[0] | (dones[0] > count)) & (~flag[1] | (dones[1] > count)) &
                                 (~flag[2] | (dones[2] > count)))
            with m.If(r.running & ready):    # the pulse is registered, a cycle later
                m.d.sync += [pulse.eq(Mux(count[0], 0b10, 0b01)), count.eq(count + 1)]
            with m.Else():
                m.d.sync += pulse.eq(0)
            with m.If(self.go):
                m.d.sync += count.eq(0)
