"""The Fire engine: one set of pixel lanes runs squeeze, expand 1x1 and expand 3x3 of a Fire layer.

Design (see also ``../shared/DESIGN-NOTES.md``, "pixel lanes, broadcast weights"):

- ``lanes`` (P, a power of two) multipliers each own one pixel of a *group* of P consecutive
  raster pixels. Every cycle one sparse entry is read from the weight store, decoded once
  (:class:`~hw.blocks.entry_decoder.EntryDecoder`), its code looked up in the codebook, and the weight
  broadcast to all lanes; lane k multiplies it by its own pixel's activation at the entry's
  ``(channel, tap)``. Zero weights are never visited, all lanes do identical work, and the
  weight store needs a single narrow read per cycle.
- The same lanes run squeeze, expand 1x1 and expand 3x3 one after another, so the changing
  squeeze/expand balance of the Fire layers costs nothing.
- Step ``t`` squeezes group ``t`` and then expands group ``t - A`` with ``A = ceil((W+1)/P)``:
  by then every squeezed neighbour a 3x3 window of that group needs exists. Squeezed pixels live
  in a :class:`~hw.fire.line_buffer.LineBuffer` of ``D`` groups (``D`` a power of two >= 2A+1) that
  hands every lane its 3x3 neighbour in one read; per-lane border flags give the zero padding.
- An input loader fills a double-buffered group buffer from the ``i`` stream (one channel per
  cycle) while the lanes compute; an output drainer empties a double-buffered result buffer to
  the ``o`` stream (one channel per cycle). Each channel result is requantised per lane.

Pipeline of one entry, issued in cycle n: n weight-store address; n+1..n+4 address
registered, bank outputs registered, bank selected; n+4, n+5 decode; n+6 tap lookup and padding
flags; n+7 codebook, bias and activation reads; n+8..n+11 read data registered; n+11 select,
rotate and pad; n+12 multiply; n+13 accumulate; n+14, n+15 requantise; n+16 write. Every block RAM
output is registered before any logic, and each decoder recurrence is one short add, for
clock rates of 100 MHz and more. Cycle counts of a whole layer are predicted exactly by
:mod:`hw.fire.cycle_model`.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from hw.blocks.entry_decoder import EntryDecoder
from hw.blocks.layouts import beat_layout, start_layout
from hw.blocks.signals import zero_extend
from hw.fire.line_buffer import LineBuffer
from hw.fire.program import EngineProgram
from hw.blocks.requantizer import Requantizer
from hw.blocks.weight_store import DEFAULT_BANK_DEPTH, WeightStore

__all__ = ["FireEngine", "check_parameters"]


def _pow2(n):
    return 1 << ceil_log2(max(1, n))


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
    """Run any Fire layer of an :class:`~hw.fire.program.EngineProgram`, bit-exact with
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

    OUT_FIFO_DEPTH = 4
    # Cycles from a flush token's issue until its results are written: entry read, decode,
    # tap lookup, codebook/activation read, select, multiply, accumulate, requantise.
    DRAIN = 2 * WeightStore.latency + EntryDecoder.latency + 4 + Requantizer.latency

    def __init__(self, program, *, lanes=8, channels_per_beat=8, acc_width=32,
                 bank_depth=DEFAULT_BANK_DEPTH):
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
        self.weight_store = WeightStore(program, bank_depth=bank_depth)
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
        m.submodules.weight_store = store = self.weight_store
        m.submodules.x_mem = x_mem = Memory(shape=unsigned(8 * P), depth=2 * cin_slot, init=[])
        # Squeezed pixels: read at the address stage, rotated and padded, with the weight
        # store's latency plus the select stage.
        m.submodules.line_buffer = lbuf = LineBuffer(lanes=P, groups=D, channels=csq_slot,
                                                     read_latency=WeightStore.latency + 1)
        m.submodules.o_mem = o_mem = Memory(shape=unsigned(8 * P), depth=2 * e_slot, init=[])

        x_rd = x_mem.read_port()
        x_wr = x_mem.write_port(granularity=8)
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
        rows_left = Signal(8)
        # Per run: for each 3x3 tap, the group offset (mod D) and lane rotation of its pixel.
        tap_groups = [Signal(range(D), name=f"tap_group{t}") for t in range(9)]
        tap_rots = [Signal(range(P), name=f"tap_rot{t}") for t in range(9)]
        groups = Signal(range((1 << 16) // P + 2))
        reach = Signal(range(256 // P + 3))
        step = Signal(range((1 << 16) // P + 256 // P + 4))
        egroup = Signal.like(step)  # the group being expanded, step - reach (set in STEP)
        hw_above = Signal(17)       # pixels minus one row: a pixel below it has a row below

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
        m.d.comb += store.entry_addr.eq(cur_base + j)

        def issue_state(name, count, then, after=()):
            """Issue one entry per cycle, ``count`` in all, then go to ``then``."""
            with m.State(name):
                m.d.comb += [issue.eq(1), issue_restart.eq(j == 0)]
                m.d.sync += j.eq(j + 1)
                with m.If(j + 1 == count):
                    m.d.sync += after
                    m.next = then

        def flush_states(prefix, release, then):
            """Issue the flush token, wait until its results are written, then ``release``."""
            with m.State(f"{prefix}_FLUSH"):
                m.d.comb += [issue.eq(1), issue_flush.eq(1)]
                m.d.sync += wait.eq(self.DRAIN - 1)
                m.next = f"{prefix}_DRAIN"
            with m.State(f"{prefix}_DRAIN"):
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.d.comb += release
                    m.next = then

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
                m.d.sync += [hw_pixels.eq(0), rows_left.eq(d_height), col_step.eq(P)]
                for tap in range(9):
                    ky, kx = divmod(tap, 3)
                    off = Signal(signed(18), name=f"tap_offset{tap}")
                    row = {0: -d_width, 1: 0, 2: d_width}[ky]
                    m.d.comb += off.eq(row + (kx - 1))
                    m.d.sync += [tap_groups[tap].eq(off >> log_p),
                                 tap_rots[tap].eq(off[:log_p] if log_p else 0)]
                m.d.sync += [c.eq(k) for k, c in enumerate(col)]
                m.next = "INIT"
            with m.State("INIT"):
                # H*W by repeated addition (H cycles; no multiplier, so the DSP count is the lane
                # count), and k mod W for every lane and P mod W by repeated subtraction
                # (floor(P/W) cycles), side by side.
                m.d.sync += [
                    groups.eq((hw_pixels + (P - 1)) >> log_p),
                    reach.eq((d_width + P) >> log_p),
                    step.eq(0),
                ]
                with m.If(rows_left != 0):
                    m.d.sync += [hw_pixels.eq(hw_pixels + d_width), rows_left.eq(rows_left - 1)]
                with m.If(col_step >= d_width):
                    m.d.sync += col_step.eq(col_step - d_width)
                    for c in col:
                        with m.If(c >= d_width):
                            m.d.sync += c.eq(c - d_width)
                with m.If((rows_left == 0) & (col_step < d_width)):
                    m.d.comb += run_go.eq(1)
                    m.next = "STEP"
            with m.State("STEP"):
                m.d.sync += [egroup.eq(step - reach), hw_above.eq(hw_pixels - d_width)]
                with m.If(step < groups):
                    m.next = "SQ_WAIT"
                with m.Else():
                    m.next = "EXP_CHECK"
            with m.State("SQ_WAIT"):
                m.d.sync += [j.eq(0), issue_phase.eq(0)]
                with m.If(x_full.bit_select(step[0], 1)):
                    m.next = "SQ_ISSUE"
            issue_state("SQ_ISSUE", d_count[0], "SQ_FLUSH")
            flush_states("SQ", x_release.eq(Mux(step[0], 0b10, 0b01)), "EXP_CHECK")
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
                        bot_ok[k].eq(pixel < hw_above),
                        left_ok[k].eq(col[k] != 0),
                        right_ok[k].eq(col[k] + 1 != d_width),
                    ]
                    advanced = col[k] + col_step
                    m.d.sync += col[k].eq(Mux(advanced >= d_width, advanced - d_width, advanced))
                m.next = "E1_ISSUE"
            issue_state("E1_ISSUE", d_count[1], "E3_ISSUE", [j.eq(0), issue_phase.eq(2)])
            issue_state("E3_ISSUE", d_count[2], "EXP_FLUSH")
            flush_states("EXP", o_fill.eq(Mux(egroup[0], 0b10, 0b01)), "NEXT")
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

        # ---- the entry pipeline -------------------------------------------------------------
        # c0 issue (weight-store address) | c1-c4 entry word from the banked store |
        # c4-c5 decode (two short recurrences) | c6 tap lookup, padding | c7 codebook/bias/
        # activation addresses | c8-c11 read data registered | c11 select, rotate, pad |
        # c12 multiply | c13 accumulate | c14 round | c15 shift, ReLU, saturate | c16 write.
        def delay(value, cycles, name):
            """``value`` as seen ``cycles`` cycles later."""
            for n in range(cycles):
                reg = Signal.like(value, name=f"{name}_d{n + 1}")
                m.d.sync += reg.eq(value)
                value = reg
            return value

        v_is = issue & ~issue_flush
        fl_is = issue & issue_flush
        entry2 = store.entry
        v2, ph2, rs2 = (delay(s, WeightStore.latency, n) for s, n in
                        ((v_is, "v"), (issue_phase, "ph"), (issue_restart, "rs")))

        # c4-c5: decode.
        m.submodules.decoder = dec = EntryDecoder(prog.code_bits, max_ch)
        m.d.comb += [
            dec.entry.eq(entry2),
            dec.valid.eq(v2),
            dec.restart.eq(rs2),
            dec.kernel3.eq(ph2 == 2),
            dec.in_channels.eq(Mux(ph2 == 0, d_cin, d_csq)),
        ]
        ph4 = delay(ph2, EntryDecoder.latency, "ph")
        fl4 = delay(fl_is, WeightStore.latency + EntryDecoder.latency, "fl")

        # c6: prepare. Look up the tap's group offset and lane rotation, the destination
        # channel and the per-lane padding, and register them.
        tap_group = Signal(range(D))
        tap_rot = Signal(range(P))
        ky = Signal(2)
        kx = Signal(2)
        with m.Switch(dec.o_tap):
            for tap in range(9):
                with m.Case(tap):
                    m.d.comb += [tap_group.eq(tap_groups[tap]), tap_rot.eq(tap_rots[tap]),
                                 ky.eq(tap // 3), kx.eq(tap % 3)]
        dst = Signal(range(2 * max_ch + 1))
        m.d.comb += dst.eq(Mux(ph4 == 2, dec.o_out + d_e1, dec.o_out))
        # Per-lane "this tap is inside the image", decided once per entry for all lanes.
        tap_ok = Signal(P)
        for k in range(P):
            m.d.comb += tap_ok[k].eq(((ky != 0) | top_ok[k]) & ((ky != 2) | bot_ok[k]) &
                                     ((kx != 0) | left_ok[k]) & ((kx != 2) | right_ok[k]))
        lo_group = Signal(range(D))
        m.d.sync += lo_group.eq(egroup + tap_group)
        chan5, code5, out5, v5, first5, ph5, fl5, dst5, rot5, ok5 = (
            delay(s, 1, n) for s, n in (
                (dec.o_c, "chan"), (dec.o_code, "code"), (dec.o_out, "out"), (dec.o_valid, "v"),
                (dec.o_first, "first"), (ph4, "ph"), (fl4, "fl"), (dst, "dst"),
                (tap_rot, "rot"), (tap_ok, "ok")))

        # c7: addresses.
        csq_bits = ceil_log2(csq_slot)
        m.d.comb += [
            lbuf.r_chan.eq(zero_extend(chan5, csq_bits)), lbuf.r_group.eq(lo_group),
            lbuf.r_rot.eq(rot5), lbuf.r_mask.eq(ok5),
            store.codebook_addr.eq(
                Mux(ph5 == 0, d_cbbase[0], Mux(ph5 == 1, d_cbbase[1], d_cbbase[2])) + code5),
            store.bias_addr.eq(
                Mux(ph5 == 0, d_bbase[0], Mux(ph5 == 1, d_bbase[1], d_bbase[2])) + out5),
            x_rd.addr.eq(Cat(zero_extend(chan5, ceil_log2(cin_slot)), step[0])),
        ]
        v6, first6, ph6, fl6, dst6 = (
            delay(s, WeightStore.latency, n) for s, n in (
                (v5, "v"), (first5, "first"), (ph5, "ph"), (fl5, "fl"), (dst5, "dst")))

        # c8-c11: block RAM outputs, registered; the line buffer rotates and pads its own.
        # The input buffer's words are registered until they meet the line buffer's.
        x7 = delay(x_rd.data, WeightStore.latency, "x")
        w6 = store.weight
        b6 = store.bias
        w7, b7, v7, first7, dst7, ph7, fl7 = (
            delay(s, 1, n) for s, n in ((w6, "w"), (b6, "b"), (v6, "v"), (first6, "first"),
                                        (dst6, "dst"), (ph6, "ph"), (fl6, "fl")))
        # Each lane's activation: its own pixel (squeeze) or its neighbour (expand).
        act7 = [Mux(ph7 == 0, x7[8 * k:8 * k + 8], lbuf.r_data[8 * k:8 * k + 8])
                for k in range(P)]

        # c12: multiply.
        prod8 = [Signal(signed(8 + wb + 1), name=f"prod{k}") for k in range(P)]
        for k in range(P):
            m.d.sync += prod8[k].eq(act7[k] * w7)
        b8, v8, first8, dst8, ph8, fl8 = (
            delay(s, 1, n) for s, n in ((b7, "b"), (v7, "v"), (first7, "first"),
                                        (dst7, "dst"), (ph7, "ph"), (fl7, "fl")))

        # c13: accumulate; a new channel or a flush hands the old sum on.
        acc_w = self._acc_width
        acc = [Signal(signed(acc_w), name=f"acc{k}") for k in range(P)]
        acc_valid = Signal()
        acc_dst = Signal.like(dst)
        acc_ph = Signal(2)
        res = [Signal(signed(acc_w), name=f"res{k}") for k in range(P)]
        res_v = Signal()
        res_dst = Signal.like(dst)
        res_ph = Signal(2)
        finish = Signal()
        m.d.comb += finish.eq(acc_valid & ((v8 & first8) | fl8))
        m.d.sync += res_v.eq(finish)
        with m.If(finish):
            m.d.sync += [res_dst.eq(acc_dst), res_ph.eq(acc_ph)]
            m.d.sync += [r.eq(a) for r, a in zip(res, acc)]
        with m.If(v8):
            with m.If(first8):
                m.d.sync += [a.eq(b8 + p) for a, p in zip(acc, prod8)]
                m.d.sync += [acc_valid.eq(1), acc_dst.eq(dst8), acc_ph.eq(ph8)]
            with m.Else():
                m.d.sync += [a.eq(a + p) for a, p in zip(acc, prod8)]
        with m.Elif(fl8):
            m.d.sync += acc_valid.eq(0)

        # c14-c15: requantise.
        shift = Mux(res_ph == 0, d_shift[0], Mux(res_ph == 1, d_shift[1], d_shift[2]))
        q11 = [Signal(8, name=f"q{k}") for k in range(P)]
        for k in range(P):
            rq = Requantizer(acc_w)
            m.submodules[f"requant{k}"] = rq
            m.d.comb += [rq.acc.eq(res[k]), rq.shift.eq(shift)]
            m.d.comb += q11[k].eq(rq.o)
        q_v, q_dst, q_ph = (delay(s, Requantizer.latency, n)
                            for s, n in ((res_v, "q_v"), (res_dst, "q_dst"), (res_ph, "q_ph")))

        # c16: write squeezed pixels or Fire outputs.
        s_slot = step[:ceil_log2(D)]
        m.d.comb += [
            lbuf.w_chan.eq(zero_extend(q_dst, csq_bits)), lbuf.w_group.eq(s_slot),
            lbuf.w_data.eq(Cat(*q11)), lbuf.w_en.eq(q_v & (q_ph == 0)),
        ]
        e_bits = ceil_log2(e_slot)
        m.d.comb += [
            o_wr.addr.eq(Cat(zero_extend(q_dst, e_bits), egroup[0])),
            o_wr.data.eq(Cat(*q11)),
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
            x_wr.addr.eq(Cat(zero_extend(chan_addr, cin_bits), ld_group[0])),
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
        # Reads go through two registers (the RAM's output register, then the lane select) into
        # a small FIFO; a read is only issued when the FIFO has room for everything in flight,
        # so back-pressure never has to stop the read pipeline.
        dr_active = Signal()
        dr_group = Signal.like(groups)
        dr_lane = Signal(range(P))
        dr_pixel = Signal(16)
        dr_chan = Signal(range(2 * max_ch + L + 1))
        m.submodules.out_fifo = out_fifo = SyncFIFO(width=10, depth=self.OUT_FIFO_DEPTH)
        inflight = Signal(range(3))
        ready_slot = o_full.bit_select(dr_group[0], 1)
        dr_issue = Signal()
        m.d.comb += dr_issue.eq(dr_active & ready_slot &
                                (out_fifo.level + inflight < self.OUT_FIFO_DEPTH))
        m.d.comb += o_rd.addr.eq(Cat(zero_extend(dr_chan, e_bits), dr_group[0]))
        last_chan = dr_chan + 1 == d_e_beats * L
        last_pixel = dr_pixel + 1 == hw_pixels
        with m.If(dr_issue):
            m.d.sync += dr_chan.eq(dr_chan + 1)
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
        # What each read is for, delayed to meet its data.
        rd_v1, rd_lane1, rd_pad1, rd_first1, rd_last1 = (
            delay(s, 1, n) for s, n in (
                (dr_issue, "rd_v"), (dr_lane, "rd_lane"), (dr_chan >= d_e, "rd_pad"),
                ((dr_pixel == 0) & (dr_chan == 0), "rd_first"), (last_pixel & last_chan, "rd_last")))
        o_data2 = delay(o_rd.data, 1, "o_data")
        rd_v2, rd_lane2, rd_pad2, rd_first2, rd_last2 = (
            delay(s, 1, f"{n}2") for s, n in ((rd_v1, "rd_v"), (rd_lane1, "rd_lane"),
                                              (rd_pad1, "rd_pad"), (rd_first1, "rd_first"),
                                              (rd_last1, "rd_last")))
        m.d.sync += inflight.eq(inflight + dr_issue - rd_v2)
        picked = Mux(rd_pad2, 0, o_data2.word_select(rd_lane2, 8))
        m.d.comb += [
            out_fifo.w_en.eq(rd_v2),
            out_fifo.w_data.eq(Cat(picked, rd_first2, rd_last2)),
        ]
        # Pack bytes into beats: A assembles, B is the stream's output register.
        a_data = Signal(8 * L)
        a_count = Signal(range(L + 1))
        a_first = Signal()
        a_last = Signal()
        b_valid = Signal()
        move = Signal()
        take = Signal()
        m.d.comb += [
            move.eq((a_count == L) & (~b_valid | self.o.ready)),
            take.eq(out_fifo.r_rdy & ((a_count < L) | move)),
            out_fifo.r_en.eq(take),
        ]
        byte = out_fifo.r_data[:8]
        with m.If(take):
            m.d.sync += a_data.eq(Cat(a_data[8:], byte) if L > 1 else byte)
            with m.If((a_count == 0) | move):
                m.d.sync += a_first.eq(out_fifo.r_data[8])
            m.d.sync += a_last.eq(out_fifo.r_data[9])
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
            drained.eq(~dr_active & (inflight == 0) & ~out_fifo.r_rdy & (a_count == 0) &
                       ~b_valid),
        ]
        return m
