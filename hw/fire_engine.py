"""The Fire engine: one set of pixel lanes runs squeeze, expand 1x1 and expand 3x3 of a Fire layer.

Design (see also ``../shared/DESIGN-NOTES.md``, "pixel lanes, broadcast weights"):

- ``lanes`` (P, a power of two) multipliers each own one pixel of a *group* of P consecutive
  raster pixels. Every cycle one sparse entry is read from the weight store, decoded once
  (:class:`~hw.entry_decoder.EntryDecoder`), its code looked up in the codebook, and the weight
  broadcast to all lanes; lane k multiplies it by its own pixel's activation at the entry's
  ``(channel, tap)``. Zero weights are never visited, all lanes do identical work, and the
  weight store needs a single narrow read per cycle.
- The same lanes run squeeze, expand 1x1 and expand 3x3 one after another, so the changing
  squeeze/expand balance of the Fire layers costs nothing.
- Step ``t`` squeezes group ``t`` and then expands group ``t - A`` with ``A = ceil((W+1)/P)``:
  by then every squeezed neighbour a 3x3 window of that group needs exists. Squeezed pixels live
  in a circular buffer of ``D`` groups (``D`` a power of two >= 2A+1), split by group parity into
  two memories, so the two groups a shifted 3x3 read touches are read in one cycle each; a
  barrel rotation by ``offset mod P`` then hands every lane its neighbour, and per-lane border
  flags give the zero padding.
- An input loader fills a double-buffered group buffer from the ``i`` stream (one channel per
  cycle) while the lanes compute; an output drainer empties a double-buffered result buffer to
  the ``o`` stream (one channel per cycle). Each channel result is requantised per lane.

Pipeline of one entry, issued in cycle n: n weight-store read; n+1 decode; n+2 codebook, bias
and activation reads; n+3 rotate and pad; n+4 multiply; n+5 accumulate; n+6 requantise;
n+7 write. Cycle counts of a whole layer are predicted exactly by :mod:`hw.cycle_model`.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from .entry_decoder import EntryDecoder
from .program import EngineProgram
from .requantizer import Requantizer

__all__ = ["FireEngine", "check_parameters", "start_layout", "beat_layout"]


def start_layout():
    """Payload of the ``start`` stream: which Fire layer, and the height/width of this run."""
    return data.StructLayout({"layer": unsigned(4), "height": unsigned(8), "width": unsigned(8)})


def beat_layout(channels_per_beat):
    """Payload of the activation streams: ``channels_per_beat`` uint8 channels + framing."""
    return data.StructLayout({
        "data": data.ArrayLayout(unsigned(8), channels_per_beat),
        "first": 1,
        "last": 1,
    })


def _pow2(n):
    return 1 << ceil_log2(max(1, n))


def _bits(value, width):
    """``value`` zero-extended or truncated to exactly ``width`` bits (an address field)."""
    return Cat(value, Const(0, width))[:width]


def check_parameters(*, lanes, channels_per_beat, acc_width=32):
    """Raise ``TypeError``/``ValueError`` unless these are valid :class:`FireEngine` parameters."""
    if not isinstance(lanes, int) or isinstance(lanes, bool):
        raise TypeError(f"Lane count must be an integer, not {lanes!r}")
    if not 1 <= lanes <= 1024 or lanes & (lanes - 1):
        raise ValueError(f"Lane count must be a power of two from 1 to 1024, not {lanes!r}")
    if not isinstance(channels_per_beat, int) or isinstance(channels_per_beat, bool):
        raise TypeError(f"Channels per beat must be an integer, not {channels_per_beat!r}")
    if not 1 <= channels_per_beat <= 64:
        raise ValueError(f"Channels per beat must be from 1 to 64, not {channels_per_beat!r}")
    if not isinstance(acc_width, int) or not 24 <= acc_width <= 48:
        raise ValueError(f"Accumulator width must be an integer from 24 to 48, "
                         f"not {acc_width!r}")


class FireEngine(wiring.Component):
    """Run any Fire layer of an :class:`~hw.program.EngineProgram`, bit-exact with
    ``golden.fixed.fire``.

    Parameters
    ----------
    program : EngineProgram
        Layers, descriptors and weight-store contents.
    lanes : int
        Pixel lanes (= multipliers), a power of two from 1 to 1024.
    channels_per_beat : int
        Channels per beat of the ``i`` and ``o`` streams (L), 1 to 64.
    acc_width : int
        Accumulator width (the golden model wraps at 32 bits).

    Members
    -------
    start : In(stream.Signature(start_layout()))
        One transfer starts a run. ``height``/``width`` may be smaller than the layer's own
        (cropped windows); ``width`` must not exceed the widest layer of the program. An
        unknown layer index or a zero height/width is accepted and ignored: ``done`` pulses
        the next cycle and nothing is read or written.
    i : In(stream.Signature(beat_layout(L)))
        Input activations in raster order; each pixel's ``in_channels`` in ``ceil(Cin/L)``
        beats, zero padded. One channel is stored per cycle (a beat every L cycles).
        ``first``/``last`` are not needed and are ignored.
    o : Out(stream.Signature(beat_layout(L)))
        Output pixels in raster order, expand 1x1 channels first, ``ceil(E/L)`` beats each,
        ``first``/``last`` on the first/last beat of the run.
    done : Out(1)
        One-cycle pulse after the last output beat was transferred.
    busy : Out(1)

    Raises
    ------
    TypeError, ValueError
        On a parameter of the wrong type or value.
    """

    DRAIN = 7  # cycles from a flush token's issue until its results are written

    def __init__(self, program, *, lanes=8, channels_per_beat=8, acc_width=32):
        if not isinstance(program, EngineProgram):
            raise TypeError(f"Program must be an EngineProgram, not {program!r}")
        check_parameters(lanes=lanes, channels_per_beat=channels_per_beat,
                         acc_width=acc_width)
        if len(program.fires) > 16:
            raise ValueError(f"The engine holds at most 16 Fire layers, not {len(program.fires)}")
        for fire in program.fires:
            if fire.height * fire.width > 65535 or fire.width > 255 or fire.height > 255:
                raise ValueError(f"{fire.name}: {fire.height}x{fire.width} is larger than the "
                                 f"engine's 255x255 (65,535 pixel) limit")
        self._program = program
        self._lanes = lanes
        self._beat = channels_per_beat
        self._acc_width = acc_width
        L = channels_per_beat
        self._cin_slot = _pow2(max(-(-f.in_channels // L) * L for f in program.fires))
        self._csq_slot = _pow2(program.max("squeeze_channels"))
        self._e_slot = _pow2(max(-(-f.out_channels // L) * L for f in program.fires))
        width_max = program.max("width")
        self._reach = -(-(width_max + 1) // lanes)          # A for the widest layer
        self._s_groups = max(2, _pow2(2 * self._reach + 1))  # D
        super().__init__({
            "start": In(stream.Signature(start_layout())),
            "i": In(stream.Signature(beat_layout(L))),
            "o": Out(stream.Signature(beat_layout(L))),
            "done": Out(1),
            "busy": Out(1),
        })

    @property
    def program(self):
        return self._program

    @property
    def lanes(self):
        return self._lanes

    @property
    def channels_per_beat(self):
        return self._beat

    @property
    def squeeze_groups(self):
        """Groups of P squeezed pixels the circular squeeze buffer holds (D)."""
        return self._s_groups

    @property
    def buffer_shapes(self):
        """``{name: (width_bits, depth)}`` of the activation buffers, for the BRAM planner."""
        P = self._lanes
        return {
            "input_buffer": (8 * P, 2 * self._cin_slot),
            "squeeze_buffer_even": (8 * P, self._s_groups // 2 * self._csq_slot),
            "squeeze_buffer_odd": (8 * P, self._s_groups // 2 * self._csq_slot),
            "output_buffer": (8 * P, 2 * self._e_slot),
        }

    def elaborate(self, platform):
        m = Module()
        prog = self._program
        P, L = self._lanes, self._beat
        log_p = exact_log2(P)
        D = self._s_groups
        wb = prog.weight_bits
        cin_slot, csq_slot, e_slot = self._cin_slot, self._csq_slot, self._e_slot
        max_ch = max(max(f.in_channels, f.out_channels) for f in prog.fires)

        # ---- memories -----------------------------------------------------------------------
        m.submodules.entry_mem = entry_mem = Memory(
            shape=unsigned(prog.entry_width), depth=len(prog.entries),
            init=[int(v) for v in prog.entries])
        m.submodules.codebook_mem = cb_mem = Memory(
            shape=signed(wb), depth=len(prog.codebooks), init=[int(v) for v in prog.codebooks])
        m.submodules.bias_mem = bias_mem = Memory(
            shape=signed(32), depth=len(prog.biases), init=[int(v) for v in prog.biases])
        m.submodules.x_mem = x_mem = Memory(shape=unsigned(8 * P), depth=2 * cin_slot, init=[])
        s_mems = []
        for parity in range(2):
            s_mem = Memory(shape=unsigned(8 * P), depth=D // 2 * csq_slot, init=[])
            m.submodules[f"s_mem{parity}"] = s_mem
            s_mems.append(s_mem)
        m.submodules.o_mem = o_mem = Memory(shape=unsigned(8 * P), depth=2 * e_slot, init=[])

        entry_rd = entry_mem.read_port()
        cb_rd = cb_mem.read_port()
        bias_rd = bias_mem.read_port()
        x_rd = x_mem.read_port()
        x_wr = x_mem.write_port(granularity=8)
        s_rd = [s.read_port() for s in s_mems]
        s_wr = [s.write_port() for s in s_mems]
        o_rd = o_mem.read_port()
        o_wr = o_mem.write_port()

        # ---- descriptor registers -----------------------------------------------------------
        n_entries = max(1, len(prog.entries))
        d_height = Signal(8)
        d_width = Signal(8)
        d_cin = Signal(range(max_ch + 1))
        d_csq = Signal(range(max_ch + 1))
        d_e1 = Signal(range(max_ch + 1))
        d_e = Signal(range(2 * max_ch + 1))
        d_cin_beats = Signal(range(max_ch + 1))
        d_e_beats = Signal(range(2 * max_ch + 1))
        d_base = [Signal(range(n_entries + 1), name=f"d_base{j}") for j in range(3)]
        d_count = [Signal(range(n_entries + 1), name=f"d_count{j}") for j in range(3)]
        d_cbbase = [Signal(range(len(prog.codebooks) + 1), name=f"d_cbbase{j}") for j in range(3)]
        d_bbase = [Signal(range(len(prog.biases) + 1), name=f"d_bbase{j}") for j in range(3)]
        d_shift = [Signal(5, name=f"d_shift{j}") for j in range(3)]

        hw_pixels = Signal(16)
        groups = Signal(range((1 << 16) // P + 2))
        reach = Signal(range(256 // P + 3))
        step = Signal(range((1 << 16) // P + 256 // P + 4))
        egroup = Signal.like(step)  # the group being expanded, step - reach
        m.d.comb += egroup.eq(step - reach)

        # Loader / sequencer / drainer handshakes.
        x_full = Signal(2)
        x_release = Signal(2)
        x_fill = Signal(2)
        o_full = Signal(2)
        o_fill = Signal(2)
        o_release = Signal(2)
        m.d.sync += [
            x_full.eq((x_full | x_fill) & ~x_release),
            o_full.eq((o_full | o_fill) & ~o_release),
        ]
        run_go = Signal()      # pulse: loader and drainer start
        drained = Signal()     # drainer has emitted the whole run

        # Per-lane column, and border flags of the group being expanded.
        col = [Signal(range(max(P, 256)), name=f"col{k}") for k in range(P)]
        col_step = Signal(range(P + 1))  # P mod W after INIT
        top_ok = Signal(P)
        bot_ok = Signal(P)
        left_ok = Signal(P)
        right_ok = Signal(P)

        # ---- issue stage (cycle n) ----------------------------------------------------------
        issue = Signal()
        issue_phase = Signal(2)
        issue_restart = Signal()
        issue_flush = Signal()
        j = Signal(range(n_entries + 1))
        wait = Signal(range(self.DRAIN + 1))
        cur_base = Mux(issue_phase == 0, d_base[0], Mux(issue_phase == 1, d_base[1], d_base[2]))
        m.d.comb += entry_rd.addr.eq(cur_base + j)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.start.ready.eq(1)
                with m.If(self.start.valid):
                    layer = self.start.payload.layer
                    m.d.sync += [d_height.eq(self.start.payload.height),
                                 d_width.eq(self.start.payload.width)]
                    with m.Switch(layer):
                        for index, fire in enumerate(prog.fires):
                            with m.Case(index):
                                e = fire.out_channels
                                m.d.sync += [
                                    d_cin.eq(fire.in_channels),
                                    d_csq.eq(fire.squeeze_channels),
                                    d_e1.eq(fire.expand1x1.out_channels),
                                    d_e.eq(e),
                                    d_cin_beats.eq(-(-fire.in_channels // L)),
                                    d_e_beats.eq(-(-e // L)),
                                ]
                                for k, conv in enumerate(fire.convs):
                                    m.d.sync += [
                                        d_base[k].eq(conv.entry_base),
                                        d_count[k].eq(conv.entry_count),
                                        d_cbbase[k].eq(conv.codebook_base),
                                        d_bbase[k].eq(conv.bias_base),
                                        d_shift[k].eq(conv.shift),
                                    ]
                    with m.If((layer < len(prog.fires)) & (self.start.payload.height != 0) &
                              (self.start.payload.width != 0)):
                        m.next = "LATCH"
                    with m.Else():
                        m.next = "REJECT"
            with m.State("REJECT"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"
            with m.State("LATCH"):
                m.d.sync += [hw_pixels.eq(d_height * d_width), col_step.eq(P)]
                m.d.sync += [c.eq(k) for k, c in enumerate(col)]
                m.next = "INIT"
            with m.State("INIT"):
                # k mod W for every lane and P mod W by repeated subtraction, floor(P/W) cycles.
                m.d.sync += [
                    groups.eq((hw_pixels + (P - 1)) >> log_p),
                    reach.eq((d_width + P) >> log_p),
                    step.eq(0),
                ]
                with m.If(col_step >= d_width):
                    m.d.sync += col_step.eq(col_step - d_width)
                    for c in col:
                        with m.If(c >= d_width):
                            m.d.sync += c.eq(c - d_width)
                with m.Else():
                    m.d.comb += run_go.eq(1)
                    m.next = "STEP"
            with m.State("STEP"):
                with m.If(step < groups):
                    m.next = "SQ_WAIT"
                with m.Else():
                    m.next = "EXP_CHECK"
            with m.State("SQ_WAIT"):
                m.d.sync += [j.eq(0), issue_phase.eq(0)]
                with m.If(x_full.bit_select(step[0], 1)):
                    m.next = "SQ_ISSUE"
            with m.State("SQ_ISSUE"):
                m.d.comb += [issue.eq(1), issue_restart.eq(j == 0)]
                m.d.sync += j.eq(j + 1)
                with m.If(j + 1 == d_count[0]):
                    m.next = "SQ_FLUSH"
            with m.State("SQ_FLUSH"):
                m.d.comb += [issue.eq(1), issue_flush.eq(1)]
                m.d.sync += wait.eq(self.DRAIN - 1)
                m.next = "SQ_DRAIN"
            with m.State("SQ_DRAIN"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.d.comb += x_release.eq(Mux(step[0], 0b10, 0b01))
                    m.next = "EXP_CHECK"
            with m.State("EXP_CHECK"):
                with m.If(step >= reach):
                    m.next = "EXP_WAIT"
                with m.Else():
                    m.next = "NEXT"
            with m.State("EXP_WAIT"):
                m.d.sync += [j.eq(0), issue_phase.eq(1)]
                with m.If(~o_full.bit_select(egroup[0], 1)):
                    m.next = "EXP_SETUP"
            with m.State("EXP_SETUP"):
                for k in range(P):
                    pixel = Cat(Const(k, log_p), egroup)
                    m.d.sync += [
                        top_ok[k].eq(pixel >= d_width),
                        bot_ok[k].eq(pixel + d_width < hw_pixels),
                        left_ok[k].eq(col[k] != 0),
                        right_ok[k].eq(col[k] + 1 != d_width),
                    ]
                    advanced = col[k] + col_step
                    m.d.sync += col[k].eq(Mux(advanced >= d_width, advanced - d_width, advanced))
                m.next = "E1_ISSUE"
            with m.State("E1_ISSUE"):
                m.d.comb += [issue.eq(1), issue_restart.eq(j == 0)]
                m.d.sync += j.eq(j + 1)
                with m.If(j + 1 == d_count[1]):
                    m.d.sync += [j.eq(0), issue_phase.eq(2)]
                    m.next = "E3_ISSUE"
            with m.State("E3_ISSUE"):
                m.d.comb += [issue.eq(1), issue_restart.eq(j == 0)]
                m.d.sync += j.eq(j + 1)
                with m.If(j + 1 == d_count[2]):
                    m.next = "EXP_FLUSH"
            with m.State("EXP_FLUSH"):
                m.d.comb += [issue.eq(1), issue_flush.eq(1)]
                m.d.sync += wait.eq(self.DRAIN - 1)
                m.next = "EXP_DRAIN"
            with m.State("EXP_DRAIN"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.d.comb += o_fill.eq(Mux(egroup[0], 0b10, 0b01))
                    m.next = "NEXT"
            with m.State("NEXT"):
                m.d.sync += step.eq(step + 1)
                with m.If(step + 1 == groups + reach):
                    m.next = "FINISH"
                with m.Else():
                    m.next = "STEP"
            with m.State("FINISH"):
                with m.If(drained):
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
            m.d.comb += self.busy.eq(~self.start.ready)

        # ---- stage 1: entry word arrives, decode --------------------------------------------
        v1 = Signal()
        ph1 = Signal(2)
        rs1 = Signal()
        fl1 = Signal()
        m.d.sync += [v1.eq(issue & ~issue_flush), ph1.eq(issue_phase), rs1.eq(issue_restart),
                     fl1.eq(issue & issue_flush)]
        m.submodules.decoder = dec = EntryDecoder(prog.code_bits, max_ch)
        m.d.comb += [
            dec.entry.eq(entry_rd.data),
            dec.valid.eq(v1),
            dec.restart.eq(rs1),
            dec.kernel3.eq(ph1 == 2),
            dec.in_channels.eq(Mux(ph1 == 0, d_cin, d_csq)),
        ]
        # stage 2 sees the decoder's registered outputs; carry phase/flush alongside.
        ph2 = Signal(2)
        fl2 = Signal()
        m.d.sync += [ph2.eq(ph1), fl2.eq(fl1)]

        # ---- stage 2: codebook, bias and activation reads -----------------------------------
        m.d.comb += [
            cb_rd.addr.eq(Mux(ph2 == 0, d_cbbase[0], Mux(ph2 == 1, d_cbbase[1], d_cbbase[2]))
                          + dec.o_code),
            bias_rd.addr.eq(Mux(ph2 == 0, d_bbase[0], Mux(ph2 == 1, d_bbase[1], d_bbase[2]))
                            + dec.o_out),
            x_rd.addr.eq(Cat(_bits(dec.o_c, ceil_log2(cin_slot)), step[0])),
        ]
        ky = Signal(2)
        kx = Signal(2)
        with m.Switch(dec.o_tap):
            for tap in range(9):
                with m.Case(tap):
                    m.d.comb += [ky.eq(tap // 3), kx.eq(tap % 3)]
        offset = Signal(signed(18))
        m.d.comb += offset.eq(Mux(ky == 0, -d_width, Mux(ky == 2, d_width, 0)) + kx - 1)
        lo_group = Signal(range(D))
        hi_group = Signal(range(D))
        m.d.comb += [
            lo_group.eq(egroup + (offset >> log_p)),
            hi_group.eq(lo_group + 1),
        ]
        csq_bits = ceil_log2(csq_slot)
        chan = _bits(dec.o_c, csq_bits)
        for parity in range(2):
            own = Mux(lo_group[0] == parity, lo_group, hi_group)
            m.d.comb += s_rd[parity].addr.eq(Cat(chan, own[1:]))
        dst2 = Signal(range(2 * max_ch + 1))
        first2 = Signal()
        v2 = Signal()
        rot2 = Signal(range(P))
        lo_odd2 = Signal()
        ky2 = Signal(2)
        kx2 = Signal(2)
        ph3 = Signal(2)
        fl3 = Signal()
        m.d.sync += [
            v2.eq(dec.o_valid), first2.eq(dec.o_first), ph3.eq(ph2), fl3.eq(fl2),
            dst2.eq(Mux(ph2 == 2, dec.o_out + d_e1, dec.o_out)),
            rot2.eq(offset[:log_p] if log_p else 0), lo_odd2.eq(lo_group[0]),
            ky2.eq(ky), kx2.eq(kx),
        ]

        # ---- stage 3: rotate, pad, select ---------------------------------------------------
        lo_data = Mux(lo_odd2, s_rd[1].data, s_rd[0].data)
        hi_data = Mux(lo_odd2, s_rd[0].data, s_rd[1].data)
        window = Cat(lo_data, hi_data)
        rotated = Signal(8 * P)
        m.d.comb += rotated.eq(window.bit_select(Cat(Const(0, 3), rot2), 8 * P))
        act3 = [Signal(8, name=f"act{k}") for k in range(P)]
        for k in range(P):
            ok = ((ky2 != 0) | top_ok[k]) & ((ky2 != 2) | bot_ok[k]) & \
                 ((kx2 != 0) | left_ok[k]) & ((kx2 != 2) | right_ok[k])
            m.d.sync += act3[k].eq(Mux(ph3 == 0, x_rd.data[8 * k:8 * k + 8],
                                       Mux(ok, rotated[8 * k:8 * k + 8], 0)))
        w3 = Signal(signed(wb))
        b3 = Signal(signed(32))
        v3 = Signal()
        first3 = Signal()
        dst3 = Signal.like(dst2)
        ph4 = Signal(2)
        fl4 = Signal()
        m.d.sync += [w3.eq(cb_rd.data), b3.eq(bias_rd.data), v3.eq(v2), first3.eq(first2),
                     dst3.eq(dst2), ph4.eq(ph3), fl4.eq(fl3)]

        # ---- stage 4: multiply --------------------------------------------------------------
        prod4 = [Signal(signed(8 + wb + 1), name=f"prod{k}") for k in range(P)]
        for k in range(P):
            m.d.sync += prod4[k].eq(act3[k] * w3)
        b4 = Signal(signed(32))
        v4 = Signal()
        first4 = Signal()
        dst4 = Signal.like(dst2)
        ph5 = Signal(2)
        fl5 = Signal()
        m.d.sync += [b4.eq(b3), v4.eq(v3), first4.eq(first3), dst4.eq(dst3), ph5.eq(ph4),
                     fl5.eq(fl4)]

        # ---- stage 5: accumulate; a new channel or a flush hands the old sum on --------------
        acc_w = self._acc_width
        acc = [Signal(signed(acc_w), name=f"acc{k}") for k in range(P)]
        acc_valid = Signal()
        acc_dst = Signal.like(dst2)
        acc_ph = Signal(2)
        res = [Signal(signed(acc_w), name=f"res{k}") for k in range(P)]
        res_v = Signal()
        res_dst = Signal.like(dst2)
        res_ph = Signal(2)
        finish = Signal()
        m.d.comb += finish.eq(acc_valid & ((v4 & first4) | fl5))
        m.d.sync += res_v.eq(finish)
        with m.If(finish):
            m.d.sync += [res_dst.eq(acc_dst), res_ph.eq(acc_ph)]
            m.d.sync += [r.eq(a) for r, a in zip(res, acc)]
        with m.If(v4):
            with m.If(first4):
                m.d.sync += [a.eq(b4 + p) for a, p in zip(acc, prod4)]
                m.d.sync += [acc_valid.eq(1), acc_dst.eq(dst4), acc_ph.eq(ph5)]
            with m.Else():
                m.d.sync += [a.eq(a + p) for a, p in zip(acc, prod4)]
        with m.Elif(fl5):
            m.d.sync += acc_valid.eq(0)

        # ---- stage 6: requantise ------------------------------------------------------------
        shift6 = Mux(res_ph == 0, d_shift[0], Mux(res_ph == 1, d_shift[1], d_shift[2]))
        q7 = [Signal(8, name=f"q{k}") for k in range(P)]
        for k in range(P):
            rq = Requantizer(acc_w)
            m.submodules[f"requant{k}"] = rq
            m.d.comb += [rq.acc.eq(res[k]), rq.shift.eq(shift6)]
            m.d.sync += q7[k].eq(rq.o)
        q_v = Signal()
        q_dst = Signal.like(dst2)
        q_ph = Signal(2)
        m.d.sync += [q_v.eq(res_v), q_dst.eq(res_dst), q_ph.eq(res_ph)]

        # ---- stage 7: write squeezed pixels or Fire outputs ---------------------------------
        s_slot = step[:ceil_log2(D)]
        for parity in range(2):
            m.d.comb += [
                s_wr[parity].addr.eq(Cat(_bits(q_dst, csq_bits), s_slot[1:])),
                s_wr[parity].data.eq(Cat(*q7)),
                s_wr[parity].en.eq(q_v & (q_ph == 0) & (s_slot[0] == parity)),
            ]
        e_bits = ceil_log2(e_slot)
        m.d.comb += [
            o_wr.addr.eq(Cat(_bits(q_dst, e_bits), egroup[0])),
            o_wr.data.eq(Cat(*q7)),
            o_wr.en.eq(q_v & (q_ph != 0)),
        ]

        # ---- input loader: one channel per cycle into the group buffer ----------------------
        ld_active = Signal()
        ld_group = Signal.like(groups)
        ld_lane = Signal(range(P))
        ld_pixel = Signal(16)
        ld_beat = Signal.like(d_cin_beats)
        ld_byte = Signal(range(L))
        ld_hold = Signal(8 * L)
        slot_free = ~x_full.bit_select(ld_group[0], 1)
        accept = Signal()
        m.d.comb += [
            self.i.ready.eq(ld_active & (ld_byte == 0) & slot_free),
            accept.eq(self.i.valid & self.i.ready),
        ]
        byte = Mux(ld_byte == 0, self.i.payload.data.as_value()[:8],
                   ld_hold.word_select(ld_byte, 8))
        cin_bits = ceil_log2(cin_slot)
        chan_addr = Signal(range(cin_slot))
        m.d.comb += chan_addr.eq(ld_beat * L + ld_byte)
        writing = accept | (ld_byte != 0)
        m.d.comb += [
            x_wr.addr.eq(Cat(_bits(chan_addr, cin_bits), ld_group[0])),
            x_wr.data.eq(Cat(*([byte] * P))),
            x_wr.en.eq(Mux(writing, 1 << ld_lane, 0)),
        ]
        with m.If(accept):
            m.d.sync += ld_hold.eq(self.i.payload.data)
        with m.If(writing):
            m.d.sync += ld_byte.eq(Mux(ld_byte == L - 1, 0, ld_byte + 1))
            with m.If(ld_byte == L - 1):
                m.d.sync += ld_beat.eq(ld_beat + 1)
                with m.If(ld_beat + 1 == d_cin_beats):
                    m.d.sync += [ld_beat.eq(0), ld_lane.eq(ld_lane + 1),
                                 ld_pixel.eq(ld_pixel + 1)]
                    with m.If((ld_lane == P - 1) | (ld_pixel + 1 == hw_pixels)):
                        m.d.comb += x_fill.eq(Mux(ld_group[0], 0b10, 0b01))
                        m.d.sync += [ld_group.eq(ld_group + 1), ld_lane.eq(0)]
                        with m.If(ld_pixel + 1 == hw_pixels):
                            m.d.sync += ld_active.eq(0)
        with m.If(run_go):
            m.d.sync += [ld_active.eq(1), ld_group.eq(0), ld_lane.eq(0), ld_pixel.eq(0),
                         ld_beat.eq(0), ld_byte.eq(0)]

        # ---- output drainer: one channel per cycle out of the result buffer -----------------
        dr_active = Signal()
        dr_group = Signal.like(groups)
        dr_lane = Signal(range(P))
        dr_pixel = Signal(16)
        dr_chan = Signal(range(2 * max_ch + L + 1))
        rd_v = Signal()      # o_rd.data holds a byte not yet taken
        rd_lane = Signal(range(P))
        rd_pad = Signal()
        rd_first = Signal()
        rd_last = Signal()
        a_data = Signal(8 * L)
        a_count = Signal(range(L + 1))
        a_first = Signal()
        a_last = Signal()
        b_valid = Signal()
        move = Signal()
        take = Signal()
        m.d.comb += [
            move.eq((a_count == L) & (~b_valid | self.o.ready)),
            take.eq(rd_v & ((a_count < L) | move)),
            o_rd.en.eq(~rd_v | take),
        ]
        ready_slot = o_full.bit_select(dr_group[0], 1)
        dr_issue = Signal()
        m.d.comb += dr_issue.eq(dr_active & ready_slot & o_rd.en)
        m.d.comb += o_rd.addr.eq(Cat(_bits(dr_chan, e_bits), dr_group[0]))
        last_chan = dr_chan + 1 == d_e_beats * L
        last_pixel = dr_pixel + 1 == hw_pixels
        with m.If(o_rd.en):
            m.d.sync += rd_v.eq(dr_issue)
        with m.If(dr_issue):
            m.d.sync += [
                rd_lane.eq(dr_lane), rd_pad.eq(dr_chan >= d_e),
                rd_first.eq((dr_pixel == 0) & (dr_chan == 0)),
                rd_last.eq(last_pixel & last_chan),
                dr_chan.eq(dr_chan + 1),
            ]
            with m.If(last_chan):
                m.d.sync += [dr_chan.eq(0), dr_lane.eq(dr_lane + 1), dr_pixel.eq(dr_pixel + 1)]
                with m.If((dr_lane == P - 1) | last_pixel):
                    m.d.comb += o_release.eq(Mux(dr_group[0], 0b10, 0b01))
                    m.d.sync += [dr_group.eq(dr_group + 1), dr_lane.eq(0)]
                    with m.If(last_pixel):
                        m.d.sync += dr_active.eq(0)
        with m.If(run_go):
            m.d.sync += [dr_active.eq(1), dr_group.eq(0), dr_lane.eq(0), dr_pixel.eq(0),
                         dr_chan.eq(0)]
        picked = Mux(rd_pad, 0, o_rd.data.word_select(rd_lane, 8))
        with m.If(take):
            m.d.sync += a_data.eq(Cat(a_data[8:], picked) if L > 1 else picked)
            with m.If((a_count == 0) | move):
                m.d.sync += a_first.eq(rd_first)
            m.d.sync += a_last.eq(rd_last)
        with m.If(move):
            m.d.sync += a_count.eq(take)
        with m.Elif(take):
            m.d.sync += a_count.eq(a_count + 1)
        with m.If(move):
            m.d.sync += [b_valid.eq(1), self.o.payload.data.eq(a_data),
                         self.o.payload.first.eq(a_first), self.o.payload.last.eq(a_last)]
        with m.Elif(self.o.ready):
            m.d.sync += b_valid.eq(0)
        m.d.comb += [
            self.o.valid.eq(b_valid),
            drained.eq(~dr_active & ~rd_v & (a_count == 0) & ~b_valid),
        ]
        return m
