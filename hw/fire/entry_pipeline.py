"""Entry pipeline of the Fire engine: one sparse entry per cycle, from weight-store word to
requantised results written for all P lanes.

Stages, for an entry issued in cycle 0 (signals are named ``_cN`` after the cycle N in which
they hold this entry's value):

| cycle | work |
|---|---|
| c0 | issue: the sequencer puts the weight-store address out |
| c1-c4 | the entry word from the banked store (address, bank outputs and bank select registered) |
| c4-c5 | decode: ``(code, rel)`` -> ``(out, in, tap)`` (two short recurrences) |
| c6 | tap lookup, destination channel, per-lane padding flags |
| c7 | codebook, bias, input-buffer and line-buffer addresses |
| c8-c11 | read data registered |
| c12 | each lane's activation selected (own pixel: squeeze, plain; neighbour: expand), registered |
| c13 | multiply |
| c14 | accumulate; a new output channel or a flush hands the finished sum on |
| c15-c16 | requantise (round, then shift, ReLU, saturate) |
| c17 | write: squeezed pixels to the line buffer, layer outputs to the output buffer |

Every block-RAM output is registered before any logic, and each decoder recurrence is one short
add, and the activation select has its own stage (on ECP5 it was the critical path into the
multipliers), for clock rates of 100 MHz and more. The squeezed pixels live in the pipeline's own
:class:`~hw.fire.line_buffer.LineBuffer`.
"""

from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from hw.blocks.entry_decoder import EntryDecoder
from hw.blocks.requantizer import Requantizer
from hw.blocks.signals import delay, zero_extend
from hw.blocks.weight_store import WeightStore
from hw.fire.line_buffer import LineBuffer
from hw.fire.sequencer import descriptor_layout

__all__ = ["EntryPipeline"]

#: The cycle an entry's tap, destination and padding are decided in (c6 in the table above).
_C6 = WeightStore.latency + EntryDecoder.latency


class EntryPipeline(wiring.Component):
    """Decode, multiply on P lanes, accumulate, requantise and write one entry per cycle.

    Throughput one entry per cycle. Latency :attr:`latency` (17): a flush token issued in
    cycle 0 has its results written in cycle 17, so the sequencer waits that long after a flush
    before it hands a buffer slot on.

    Parameters
    ----------
    program : EngineProgram
    lanes : int
        P, a power of two.
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
                 carry_context=False, unit_lanes=None):
        self._program = program
        self._lanes, self._groups = lanes, groups
        self._unit = lanes if unit_lanes is None else unit_lanes
        if self._unit < 1 or lanes % self._unit or (self._unit != lanes and not carry_context):
            raise ValueError(f"Unit lanes must divide the lane count (and need a carried "
                             f"context), not {unit_lanes!r}")
        blocks = lanes // self._unit
        self._in_slot, self._sq_slot, self._out_slot = in_slot, sq_slot, out_slot
        self._acc_width = acc_width
        self._carry = carry_context
        rot_bits = max(1, exact_log2(lanes))
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
            # Squeezed pixels: read in c7, rotated and padded, with the weight store's latency
            # plus the select stage, so they meet the codebook read in c12.
            m.submodules.line_buffer = lbuf = LineBuffer(**self.line_buffer_parameters())
        c7 = self._decode(m)
        c12 = self._read(m, lbuf, c7)
        q_c16, q_v_c16, q_dst_c16, q_ph_c16 = self._compute(m, c12)
        # c17 (names keep the 16 of before the select stage): write squeezed pixels or Fire
        # outputs.
        # A unit of fewer lanes than the group writes its pass's block of the word.
        blocks = P // self._unit
        word = Cat(*([Cat(*q_c16)] * blocks))
        block = Signal(blocks, name="block_c17")
        if blocks > 1:
            pass_c17 = delay(m, self.issue_pass, self.latency, "pass_c17")
            m.d.comb += block.eq(Cat(*(pass_c17 == b for b in range(blocks))))
        else:
            m.d.comb += block.eq(1)
        m.d.comb += [
            lbuf.w_chan.eq(zero_extend(q_dst_c16, ceil_log2(self._sq_slot))),
            lbuf.w_group.eq(self._at(m, self.sq_group, self.latency, "sq_group_c17")),
            lbuf.w_data.eq(word), lbuf.w_en.eq(Mux(q_v_c16 & (q_ph_c16 == 0), block, 0)),
            self.o_addr.eq(Cat(zero_extend(q_dst_c16, ceil_log2(self._out_slot)),
                               self._at(m, self.ex_group[0], self.latency, "ex_slot_c17"))),
            self.o_data.eq(word),
            self.o_en.eq(Mux(q_v_c16 & (q_ph_c16 != 0), block, 0)),
        ]
        return m

    def line_buffer_parameters(self):
        """Keyword arguments of the :class:`LineBuffer` this pipeline reads (latency
        ``WeightStore.latency + 1``: the read in c7 meets the codebook read in c12)."""
        return {"lanes": self._lanes, "groups": self._groups, "channels": self._sq_slot,
                "read_latency": WeightStore.latency + 1}

    def _at(self, m, signal, cycles, name):
        """``signal`` as issued ``cycles`` ago (``carry_context``), else as it is now (the
        shared engine's sequencer holds it steady while a convolution is in flight)."""
        return delay(m, signal, cycles, name) if self._carry else signal

    def _decode(self, m):
        """c0-c6: decode the entry, look its tap up; returns the c7 registers as a dict."""
        P, d = self._lanes, self.desc
        max_ch = max(self._program.max("in_channels"), self._program.max("out_channels"))
        v_c0 = self.issue_valid
        v_c4, ph_c4, rs_c4 = (delay(m, s, WeightStore.latency, n) for s, n in
                              ((v_c0, "v_c4"), (self.issue_phase, "ph_c4"),
                               (self.issue_restart, "rs_c4")))
        m.submodules.decoder = dec = EntryDecoder(self._program.code_bits, max_ch)
        m.d.comb += [
            dec.entry.eq(self.entry),
            dec.valid.eq(v_c4),
            dec.restart.eq(rs_c4),
            dec.kernel3.eq(ph_c4 == 2),
            dec.in_channels.eq(Mux(ph_c4[0] == ph_c4[1], d.cin, d.csq)),  # phase 0 or 3
        ]
        ph_c6 = delay(m, ph_c4, EntryDecoder.latency, "ph_c6")
        fl_c6 = delay(m, self.issue_flush, WeightStore.latency + EntryDecoder.latency, "fl_c6")

        # c6: the tap's group offset and lane rotation, the destination channel and the
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
        m.d.comb += dst.eq(dec.o_out + Mux(ph_c6 == 0, d.dbase[0],
                                           Mux(ph_c6 == 1, d.dbase[1], d.dbase[2])))
        tap_ok = Signal(P)
        ok = {n: self._at(m, getattr(self, n), _C6, f"{n}_c6")
              for n in ("top_ok", "bot_ok", "left_ok", "right_ok")}
        for k in range(P):
            m.d.comb += tap_ok[k].eq(
                ((ky != 0) | ok["top_ok"][k]) & ((ky != 2) | ok["bot_ok"][k]) &
                ((kx != 0) | ok["left_ok"][k]) & ((kx != 2) | ok["right_ok"][k]))
        c7 = {"group": Signal.like(self.ex_group, name="lo_group_c7"),
              "slot": self._at(m, self.sq_group[0], _C6 + 1, "sq_slot_c7")}
        m.d.sync += c7["group"].eq(self._at(m, self.ex_group, _C6, "ex_group_c6") + tap_group)
        for s, n in ((dec.o_c, "chan"), (dec.o_code, "code"), (dec.o_out, "out"),
                     (dec.o_valid, "v"), (dec.o_first, "first"), (ph_c6, "ph"), (fl_c6, "fl"),
                     (dst, "dst"), (tap_rot, "rot"), (tap_ok, "ok")):
            c7[n] = delay(m, s, 1, f"{n}_c7")
        return c7

    def _read(self, m, lbuf, c7):
        """c7-c11: memory addresses and registered reads; returns the c12 values as a dict."""
        P, d = self._lanes, self.desc
        by_phase = (lambda arr, ph:
                    Mux(ph == 0, arr[0], Mux(ph == 1, arr[1], arr[2])))
        m.d.comb += [
            lbuf.r_chan.eq(zero_extend(c7["chan"], ceil_log2(self._sq_slot))),
            lbuf.r_group.eq(c7["group"]), lbuf.r_rot.eq(c7["rot"]), lbuf.r_mask.eq(c7["ok"]),
            self.codebook_addr.eq(by_phase(d.cbbase, c7["ph"]) + c7["code"]),
            self.bias_addr.eq(by_phase(d.bbase, c7["ph"]) + c7["out"]),
            self.x_addr.eq(Cat(zero_extend(c7["chan"], ceil_log2(self._in_slot)),
                               c7["slot"])),
        ]
        c11 = {n: delay(m, c7[n], WeightStore.latency, f"{n}_c11")
               for n in ("v", "first", "ph", "fl", "dst")}
        c11["w"], c11["b"] = self.weight, self.bias
        c12 = {n: delay(m, v, 1, f"{n}_c12") for n, v in c11.items()}
        # The input buffer's words (read in c8) are registered until they meet the line
        # buffer's in c12; each lane takes its own pixel (squeeze) or its neighbour (expand).
        x_c12 = delay(m, self.x_data, WeightStore.latency, "x_c12")
        from_x = c12["ph"][0] == c12["ph"][1]     # squeeze or a plain layer
        x_lanes, l_lanes = x_c12, lbuf.r_data
        if self._unit != P:     # this pass's block of the group's lanes
            pass_c12 = delay(m, self.issue_pass, _C6 + 2 + WeightStore.latency, "pass_c12")
            # This pass's block of the group's lanes, a case per block.
            x_lanes, l_lanes = Signal(8 * self._unit), Signal(8 * self._unit)
            width = 8 * self._unit
            with m.Switch(pass_c12):
                for b in range(P // self._unit):
                    with m.Case(b):
                        m.d.comb += [x_lanes.eq(x_c12[b * width:(b + 1) * width]),
                                     l_lanes.eq(lbuf.r_data[b * width:(b + 1) * width])]
        c12["act"] = [Mux(from_x, x_lanes[8 * k:8 * k + 8], l_lanes[8 * k:8 * k + 8])
                      for k in range(self._unit)]
        return c12

    def _compute(self, m, c12):
        """c12-c16: register the selected activations, multiply, accumulate, requantise;
        returns the c17 results and tags (named one cycle early: ``_c13`` below holds c14's
        values, and so on)."""
        P, acc_w, d = self._unit, self._acc_width, self.desc
        wb = self._program.weight_bits
        # The select stage: the activation mux ends in a register, not in the multiplier.
        c12 = {**{n: delay(m, v, 1, f"{n}_sel") for n, v in c12.items() if n != "act"},
               "act": [delay(m, a, 1, f"act{k}_sel") for k, a in enumerate(c12["act"])]}
        prod_c13 = [Signal(signed(8 + wb + 1), name=f"prod{k}_c13") for k in range(P)]
        for k in range(P):
            m.d.sync += prod_c13[k].eq(c12["act"][k] * c12["w"])
        c13 = {n: delay(m, c12[n], 1, f"{n}_c13") for n in ("b", "v", "first", "dst", "ph", "fl")}

        # c13: accumulate; a new channel or a flush hands the old sum on (res, in c14).
        acc = [Signal(signed(acc_w), name=f"acc{k}") for k in range(P)]
        acc_valid = Signal()
        acc_dst = Signal.like(c13["dst"])
        acc_ph = Signal(2)
        res_c14 = [Signal(signed(acc_w), name=f"res{k}_c14") for k in range(P)]
        res_v_c14 = Signal()
        res_dst_c14 = Signal.like(c13["dst"])
        res_ph_c14 = Signal(2)
        finish = Signal()
        m.d.comb += finish.eq(acc_valid & ((c13["v"] & c13["first"]) | c13["fl"]))
        m.d.sync += res_v_c14.eq(finish)
        with m.If(finish):
            m.d.sync += [res_dst_c14.eq(acc_dst), res_ph_c14.eq(acc_ph)]
            m.d.sync += [r.eq(a) for r, a in zip(res_c14, acc)]
        with m.If(c13["v"]):
            with m.If(c13["first"]):
                m.d.sync += [a.eq(c13["b"] + p) for a, p in zip(acc, prod_c13)]
                m.d.sync += [acc_valid.eq(1), acc_dst.eq(c13["dst"]), acc_ph.eq(c13["ph"])]
            with m.Else():
                m.d.sync += [a.eq(a + p) for a, p in zip(acc, prod_c13)]
        with m.Elif(c13["fl"]):
            m.d.sync += acc_valid.eq(0)

        # c14-c15: requantise, one requantiser per lane.
        shift = Mux(res_ph_c14 == 0, d.shift[0], Mux(res_ph_c14 == 1, d.shift[1], d.shift[2]))
        q_c16 = []
        for k in range(P):
            rq = Requantizer(acc_w)
            m.submodules[f"requant{k}"] = rq
            m.d.comb += [rq.acc.eq(res_c14[k]), rq.shift.eq(shift)]
            q_c16.append(rq.o)
        tags = (delay(m, s, Requantizer.latency, n) for s, n in
                ((res_v_c14, "q_v_c16"), (res_dst_c14, "q_dst_c16"), (res_ph_c14, "q_ph_c16")))
        return (q_c16, *tags)
