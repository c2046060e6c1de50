"""Entry pipeline of the Fire engine: one sparse entry per cycle, from weight-store word to
requantised results written for all P lanes.

Stages, for an entry issued in cycle 0 (signals are named ``_cN`` after the cycle N in which
they hold this entry's value; the weight store reads in 5 cycles):

| cycle | work |
|---|---|
| c0 | issue: the sequencer puts the weight-store address out |
| c1-c5 | the entry word from the banked store (address, bank outputs and bank select registered) |
| c5-c6 | decode: ``(code, rel)`` -> ``(out, in, tap)`` (two short recurrences) |
| c7 | tap lookup, destination channel, per-lane padding flags |
| c8 | codebook, bias, input-buffer and line-buffer addresses (see below) |
| c9-c13 | read data registered |
| c14 | each lane's activation selected (own pixel: squeeze, plain; neighbour: expand), registered |
| c15 | multiply |
| c16 | accumulate; a new output channel or a flush hands the finished sum on |
| c17-c18 | requantise (round, then shift, ReLU, saturate) |
| c19 | write: squeezed pixels to the line buffer, layer outputs to the output buffer |

The shared engine reads its input buffer in c12 and its line buffer in c10 or c11 (by rotation):
their addresses wait in registers, not their 8P-bit words (the dataflow units read both in c8
and register the data).

Every block-RAM output is registered before any logic, and each decoder recurrence is one short
add, and the activation select has its own stage (on ECP5 it was the critical path into the
multipliers), for clock rates of 100 MHz and more. The squeezed pixels live in the pipeline's own
:class:`~hw.fire.line_buffer.LineBuffer`.
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hw.blocks.entry_decoder import EntryDecoder
from hw.blocks.requantizer import Requantizer
from hw.blocks.signals import delay, zero_extend
from hw.blocks.weight_store import WeightStore
from hw.fire.line_buffer import LineBuffer, tap_rotations
from hw.fire.sequencer import descriptor_layout

__all__ = ["EntryPipeline"]

#: The cycle an entry's tap, destination and padding are decided in (c7 in the table above).
_C7 = WeightStore.latency + EntryDecoder.latency


class EntryPipeline(wiring.Component):
    """Decode, multiply on P lanes, accumulate, requantise and write one entry per cycle.

    Throughput one entry per cycle. Latency :attr:`latency` (19): a flush token issued in
    cycle 0 has its results written in cycle 19, so the sequencer waits that long after a flush
    before it hands a buffer slot on.

    Parameters
    ----------
    program : EngineProgram
    lanes : int
        P (1, 2, 4 or a multiple of 8).
    groups : int
        D, groups held by the line buffer.
    in_slot, sq_slot, out_slot : int
        Words per group of the input buffer, the line buffer and the output buffer (powers
        of two).
    acc_width : int
        Accumulator width.
    carry_context : bool
        The dataflow datapath's units: the group numbers, the border flags and the pass
        travel with every entry (the unit's sequencer moves on to the next group without
        waiting for the pipeline to drain), and the line buffer is outside (``lb_*`` ports).
    unit_lanes : int
        With ``carry_context``: multipliers, ``lanes`` or a divisor of it; the unit covers the
        group's lanes in ``lanes / unit_lanes`` passes (``issue_pass``), writing one block of
        the word at a time (``o_en``, ``lb_w_en`` have a bit per block).
    fixed_widths : bool
        The line buffer (without ``carry_context``) rotates only for the program's Fire layer
        widths; the sequencer must reject runs of other widths.
    line_buffer_ram : str
        What the line buffer (without ``carry_context``) is built from: ``"block"`` or
        ``"distributed"`` (:class:`~hw.fire.line_buffer.LineBuffer`'s ``ram``).

    Members
    -------
    entry : In(unsigned(entry_width)); weight : In(signed(weight_bits)); bias : In(signed(32))
        Weight-store data, WeightStore.latency after each address.
    codebook_addr, bias_addr : Out
    issue_valid, issue_flush, issue_phase, issue_restart : In
        From the sequencer, cycle c0.
    desc : In(descriptor_layout(program))
    tap_group, tap_rot, top_ok, bot_ok, left_ok, right_ok, sq_group, ex_group : In
        From the sequencer (see :class:`~hw.fire.sequencer.Sequencer`); steady while a
        convolution's entries are in flight.
    x_addr : Out(range(2 * in_slot)); x_data : In(unsigned(8 * lanes))
        The input loader's read port (latency 1).
    o_addr : Out(range(2 * out_slot)); o_data : Out(unsigned(8 * lanes)); o_en : Out(1)
        The output drainer's write port.
    """

    latency = 2 * WeightStore.latency + EntryDecoder.latency + 5 + Requantizer.latency

    def __init__(self, program, *, lanes, groups, in_slot, sq_slot, out_slot, acc_width=32,
                 carry_context=False, unit_lanes=None, fixed_widths=False,
                 line_buffer_ram="block"):
        self._program = program
        self._line_buffer_ram = line_buffer_ram
        self._fixed_widths = bool(fixed_widths)
        self._lanes, self._groups = lanes, groups
        self._unit = lanes if unit_lanes is None else unit_lanes
        if self._unit < 1 or lanes % self._unit or (self._unit != lanes and not carry_context):
            raise ValueError(f"Unit lanes must divide the lane count (and need a carried "
                             f"context), not {unit_lanes!r}")
        blocks = lanes // self._unit
        self._in_slot, self._sq_slot, self._out_slot = in_slot, sq_slot, out_slot
        self._acc_width = acc_width
        self._carry = carry_context
        rot_bits = max(1, ceil_log2(lanes))
        lb_ports = {} if not carry_context else {
            "lb_r_group": Out(range(groups)), "lb_r_rot": Out(range(lanes)),
            "lb_r_chan": Out(range(sq_slot)), "lb_r_mask": Out(unsigned(lanes)),
            "lb_r_data": In(unsigned(8 * lanes)),
            "lb_w_en": Out(blocks), "lb_w_group": Out(range(groups)),
            "issue_pass": In(range(max(2, blocks))),
            "lb_w_chan": Out(range(sq_slot)), "lb_w_data": Out(unsigned(8 * lanes)),
        }
        super().__init__({**lb_ports,
            "entry": In(unsigned(program.entry_width)),
            "codebook_addr": Out(range(max(2, len(program.codebooks)))),
            "weight": In(signed(program.weight_bits)),
            "bias_addr": Out(range(max(2, len(program.biases)))),
            "bias": In(signed(32)),
            "issue_valid": In(1), "issue_flush": In(1), "issue_phase": In(2),
            "issue_restart": In(1),
            "desc": In(descriptor_layout(program)),
            "tap_group": In(data.ArrayLayout(range(groups), 9)),
            "tap_rot": In(data.ArrayLayout(unsigned(rot_bits), 9)),
            "top_ok": In(lanes), "bot_ok": In(lanes), "left_ok": In(lanes), "right_ok": In(lanes),
            "sq_group": In(range(groups)), "ex_group": In(range(groups)),
            "x_addr": Out(range(2 * in_slot)), "x_data": In(unsigned(8 * lanes)),
            "o_addr": Out(range(2 * out_slot)), "o_data": Out(unsigned(8 * lanes)),
            "o_en": Out(blocks),
        })

    def elaborate(self, platform):
        m = Module()
        P = self._lanes
        if self._carry:
            lbuf = SimpleNamespace(**{n: getattr(self, f"lb_{n}") for n in (
                "r_group", "r_rot", "r_chan", "r_mask", "r_data", "w_en", "w_group", "w_chan",
                "w_data")})
        else:
            # Squeezed pixels: read in c8, rotated and padded, with the weight store's latency
            # plus the select stage, so they meet the codebook read in c14.
            m.submodules.line_buffer = lbuf = LineBuffer(**self.line_buffer_parameters())
        c8 = self._decode(m)
        c14 = self._read(m, lbuf, c8)
        q_c18, q_v_c18, q_dst_c18, q_ph_c18 = self._compute(m, c14)
        # c19 (names are one cycle early, from before the select stage): write squeezed pixels
        # or Fire outputs.
        # A unit of fewer lanes than the group writes its pass's block of the word.
        blocks = P // self._unit
        word = Cat(*([Cat(*q_c18)] * blocks))
        block = Signal(blocks, name="block_c19")
        if blocks > 1:
            pass_c19 = delay(m, self.issue_pass, self.latency, "pass_c19")
            m.d.comb += block.eq(Cat(*(pass_c19 == b for b in range(blocks))))
        else:
            m.d.comb += block.eq(1)
        m.d.comb += [
            lbuf.w_chan.eq(zero_extend(q_dst_c18, ceil_log2(self._sq_slot))),
            lbuf.w_group.eq(self._at(m, self.sq_group, self.latency, "sq_group_c19")),
            lbuf.w_data.eq(word), lbuf.w_en.eq(Mux(q_v_c18 & (q_ph_c18 == 0), block, 0)),
            self.o_addr.eq(Cat(zero_extend(q_dst_c18, ceil_log2(self._out_slot)),
                               self._at(m, self.ex_group[0], self.latency, "ex_slot_c19"))),
            self.o_data.eq(word),
            self.o_en.eq(Mux(q_v_c18 & (q_ph_c18 != 0), block, 0)),
        ]
        return m

    def line_buffer_parameters(self):
        """Keyword arguments of the :class:`LineBuffer` this pipeline reads (latency
        ``WeightStore.latency + 1``: the read in c8 meets the codebook read in c14), with
        the general rotation (runs may have any width; see :mod:`hw.fire.line_buffer`), or
        with ``fixed_widths`` the rotation for the Fire layers' own widths only."""
        params = {"lanes": self._lanes, "groups": self._groups, "channels": self._sq_slot,
                  "read_latency": WeightStore.latency + 1,
                  # the shared engine's own buffer: written only while squeezing, long after
                  # an expand's last read (the dataflow units' squeeze writes while they read)
                  "late_read": not self._carry, "ram": self._line_buffer_ram}
        if self._fixed_widths:
            params["rotations"] = tap_rotations(self._program.fire_widths or [1], self._lanes)
        return params

    def _at(self, m, signal, cycles, name):
        """``signal`` as issued ``cycles`` ago (``carry_context``), else as it is now (the
        shared engine's sequencer holds it steady while a convolution is in flight)."""
        return delay(m, signal, cycles, name) if self._carry else signal

    def _decode(self, m):
        """c0-c7: decode the entry, look its tap up; returns the c8 registers as a dict."""
        P, d = self._lanes, self.desc
        max_ch = max(self._program.max("in_channels"), self._program.max("out_channels"))
        v_c0 = self.issue_valid
        v_c5, ph_c5, rs_c5 = (delay(m, s, WeightStore.latency, n) for s, n in
                              ((v_c0, "v_c5"), (self.issue_phase, "ph_c5"),
                               (self.issue_restart, "rs_c5")))
        m.submodules.decoder = dec = EntryDecoder(self._program.code_bits, max_ch)
        m.d.comb += [
            dec.entry.eq(self.entry),
            dec.valid.eq(v_c5),
            dec.restart.eq(rs_c5),
            dec.kernel3.eq(ph_c5 == 2),
            dec.in_channels.eq(Mux(ph_c5[0] == ph_c5[1], d.cin, d.csq)),  # phase 0 or 3
        ]
        ph_c7 = delay(m, ph_c5, EntryDecoder.latency, "ph_c7")
        fl_c7 = delay(m, self.issue_flush, WeightStore.latency + EntryDecoder.latency, "fl_c7")

        # c7: the tap's group offset and lane rotation, the destination channel and the
        # per-lane padding, decided once per entry for all lanes.
        tap_group = Signal.like(self.ex_group)
        tap_rot = Signal(range(P))
        ky = Signal(2)
        kx = Signal(2)
        with m.Switch(dec.o_tap):
            for tap in range(9):
                with m.Case(tap):
                    m.d.comb += [tap_group.eq(self.tap_group[tap]), tap_rot.eq(self.tap_rot[tap]),
                                 ky.eq(tap // 3), kx.eq(tap % 3)]
        dst = Signal(range(2 * max_ch + 1))
        m.d.comb += dst.eq(dec.o_out + Mux(ph_c7 == 0, d.dbase[0],
                                           Mux(ph_c7 == 1, d.dbase[1], d.dbase[2])))
        tap_ok = Signal(P)
        ok = {n: self._at(m, getattr(self, n), _C7, f"{n}_c7")
              for n in ("top_ok", "bot_ok", "left_ok", "right_ok")}
        for k in range(P):
            m.d.comb += tap_ok[k].eq(
                ((ky != 0) | ok["top_ok"][k]) & ((ky != 2) | ok["bot_ok"][k]) &
                ((kx != 0) | ok["left_ok"][k]) & ((kx != 2) | ok["right_ok"][k]))
        c8 = {"group": Signal.like(self.ex_group, name="lo_group_c8"),
              "slot": self._at(m, self.sq_group[0], _C7 + 1, "sq_slot_c8")}
        m.d.sync += c8["group"].eq(self._at(m, self.ex_group, _C7, "ex_group_c7") + tap_group)
        for s, n in ((dec.o_c, "chan"), (dec.o_code, "code"), (dec.o_out, "out"),
                     (dec.o_valid, "v"), (dec.o_first, "first"), (ph_c7, "ph"), (fl_c7, "fl"),
                     (dst, "dst"), (tap_rot, "rot"), (tap_ok, "ok")):
            c8[n] = delay(m, s, 1, f"{n}_c8")
        return c8

    def _read(self, m, lbuf, c8):
        """c8-c13: memory addresses and registered reads; returns the c14 values as a dict."""
        P, d = self._lanes, self.desc
        by_phase = (lambda arr, ph:
                    Mux(ph == 0, arr[0], Mux(ph == 1, arr[1], arr[2])))
        m.d.comb += [
            lbuf.r_chan.eq(zero_extend(c8["chan"], ceil_log2(self._sq_slot))),
            lbuf.r_group.eq(c8["group"]), lbuf.r_rot.eq(c8["rot"]), lbuf.r_mask.eq(c8["ok"]),
            self.codebook_addr.eq(by_phase(d.cbbase, c8["ph"]) + c8["code"]),
            self.bias_addr.eq(by_phase(d.bbase, c8["ph"]) + c8["out"]),
        ]
        x_addr = Cat(zero_extend(c8["chan"], ceil_log2(self._in_slot)), c8["slot"])
        c13 = {n: delay(m, c8[n], WeightStore.latency, f"{n}_c13")
               for n in ("v", "first", "ph", "fl", "dst")}
        c13["w"], c13["b"] = self.weight, self.bias
        c14 = {n: delay(m, v, 1, f"{n}_c14") for n, v in c13.items()}
        # The input buffer's words meet the line buffer's in c14; each lane takes its own
        # pixel (squeeze) or its neighbour (expand). The shared engine reads them in c12 (its
        # address waits in registers, not its 8P-bit words: it releases an input slot only
        # after the drain) and registers them twice, once beside the RAM (its output register
        # where the pass in hw/flow/outreg.py can move it) and once by the lanes; the dataflow
        # units read in c9 and register the words.
        if self._carry:
            m.d.comb += self.x_addr.eq(x_addr)
            x_c14 = delay(m, self.x_data, WeightStore.latency, "x_c14")
        else:
            m.d.comb += self.x_addr.eq(delay(m, x_addr, WeightStore.latency - 2, "x_addr_c11"))
            x_c14 = delay(m, self.x_data, 2, "x_c14")
        # Squeeze or a plain layer: a register of its own (it drives 8 multiplexers a lane).
        from_x = delay(m, c13["ph"][0] == c13["ph"][1], 1, "from_x_c14")
        x_lanes, l_lanes = x_c14, lbuf.r_data
        if self._unit != P:     # this pass's block of the group's lanes
            pass_c14 = delay(m, self.issue_pass, _C7 + 2 + WeightStore.latency, "pass_c14")
            # This pass's block of the group's lanes, a case per block.
            x_lanes, l_lanes = Signal(8 * self._unit), Signal(8 * self._unit)
            width = 8 * self._unit
            with m.Switch(pass_c14):
                for b in range(P // self._unit):
                    with m.Case(b):
                        m.d.comb += [x_lanes.eq(x_c14[b * width:(b + 1) * width]),
                                     l_lanes.eq(lbuf.r_data[b * width:(b + 1) * width])]
        c14["act"] = [Mux(from_x, x_lanes[8 * k:8 * k + 8], l_lanes[8 * k:8 * k + 8])
                      for k in range(self._unit)]
        return c14

    def _compute(self, m, c14):
        """c14-c18: register the selected activations, multiply, accumulate, requantise;
        returns the c19 results and tags (named one cycle early: ``_c15`` below holds c16's
        values, and so on)."""
        P, acc_w, d = self._unit, self._acc_width, self.desc
        wb = self._program.weight_bits
        # The select stage: the activation mux ends in a register, not in the multiplier.
        c14 = {**{n: delay(m, v, 1, f"{n}_sel") for n, v in c14.items() if n != "act"},
               "act": [delay(m, a, 1, f"act{k}_sel") for k, a in enumerate(c14["act"])]}
        prod_c15 = [Signal(signed(8 + wb + 1), name=f"prod{k}_c15") for k in range(P)]
        for k in range(P):
            m.d.sync += prod_c15[k].eq(c14["act"][k] * c14["w"])
        c15 = {n: delay(m, c14[n], 1, f"{n}_c15") for n in ("b", "v", "first", "dst", "ph", "fl")}

        # c15: accumulate; a new channel or a flush hands the old sum on (res, in c16).
        acc = [Signal(signed(acc_w), name=f"acc{k}") for k in range(P)]
        acc_valid = Signal()
        acc_dst = Signal.like(c15["dst"])
        acc_ph = Signal(2)
        res_c16 = [Signal(signed(acc_w), name=f"res{k}_c16") for k in range(P)]
        res_v_c16 = Signal()
        res_dst_c16 = Signal.like(c15["dst"])
        res_ph_c16 = Signal(2)
        # finish = acc_valid & ((v & first) | fl) of c15, a register of its own computed a
        # cycle early (it enables every lane's result register).
        finish = Signal()
        valid_next = Mux(c15["v"] & c15["first"], 1, Mux(~c15["v"] & c15["fl"], 0, acc_valid))
        m.d.sync += finish.eq(valid_next & ((c14["v"] & c14["first"]) | c14["fl"]))
        m.d.sync += res_v_c16.eq(finish)
        with m.If(finish):
            m.d.sync += [res_dst_c16.eq(acc_dst), res_ph_c16.eq(acc_ph)]
            m.d.sync += [r.eq(a) for r, a in zip(res_c16, acc)]
        with m.If(c15["v"]):
            # One adder per lane, its addend chosen before it: the bias for a new channel,
            # else the sum so far (two adders and a select after them was 2 x 16 CCU2C a
            # lane on ECP5, a quarter of the 64-lane design's carry cells).
            m.d.sync += [a.eq(Mux(c15["first"], c15["b"], a) + p) for a, p in zip(acc, prod_c15)]
            with m.If(c15["first"]):
                m.d.sync += [acc_valid.eq(1), acc_dst.eq(c15["dst"]), acc_ph.eq(c15["ph"])]
        with m.Elif(c15["fl"]):
            m.d.sync += acc_valid.eq(0)

        # c16-c17: requantise, one requantiser per lane; each takes its shift a cycle ahead
        # (the phase res will hold), so its rounding constants are registers. They are built
        # for the program's shifts only.
        ph_next = Mux(finish, acc_ph, res_ph_c16)
        shift = Mux(ph_next == 0, d.shift[0], Mux(ph_next == 1, d.shift[1], d.shift[2]))
        q_c18 = []
        for k in range(P):
            rq = Requantizer(acc_w, early_shift=True, shifts=self._program.shifts)
            m.submodules[f"requant{k}"] = rq
            m.d.comb += [rq.acc.eq(res_c16[k]), rq.shift.eq(shift)]
            q_c18.append(rq.o)
        tags = (delay(m, s, Requantizer.latency, n) for s, n in
                ((res_v_c16, "q_v_c18"), (res_dst_c16, "q_dst_c18"), (res_ph_c16, "q_ph_c18")))
        return (q_c18, *tags)
