"""Sparse-entry decoder: turns the stored ``(code, rel)`` entries into weight coordinates.

The Deep Compression format stores each non-zero weight (and each filler) as a codebook index
and a 4-bit gap to the previous entry: ``pos_0 = rel_0``, ``pos_j = pos_{j-1} + rel_j + 1`` in
the flattened ``(out, in, kh, kw)`` tensor. The decoder keeps the previous position as
``(o, c, tap)`` and adds the gap incrementally, so no division is ever done:

- 1x1 kernels: ``c += gap``; past ``in_channels`` the channel wraps and ``o`` moves on;
- 3x3 kernels: ``tap += gap`` (a gap is at most 16, so it carries into ``c`` at most twice).

Because :func:`hw.fire.program.hardware_entries` guarantees at least one entry per output channel,
an entry moves ``o`` by 0 or 1, and such a move marks the entry as the ``first`` of a channel.

The two recurrences are split over two pipeline stages so that each loop is one short add:
stage A carries ``tap`` and produces the carry into ``c``; stage B carries ``(o, c)``, with
``c + carry - in_channels`` prepared in stage A so that the wrap test is a sign bit.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from golden.codec import check_code_bits

__all__ = ["EntryDecoder"]


class EntryDecoder(wiring.Component):
    """Decode one sparse entry per cycle.

    Latency 2 (two register stages), throughput one entry per cycle.

    Parameters
    ----------
    code_bits : int
        Width of a codebook index (4..8).
    max_channels : int
        Largest ``in_channels`` and ``out_channels`` of any layer decoded.

    Members
    -------
    entry : In(unsigned(code_bits + 4))
        ``code | rel << code_bits``, valid with ``valid``.
    valid : In(1)
    restart : In(1)
        The entry is the first of a convolution: its position is ``rel`` itself.
    kernel3 : In(1)
        The convolution is 3x3 (else 1x1). Must be steady while a convolution is decoded.
    in_channels : In(range(max_channels + 1))
        Steady while a convolution is decoded.
    o_valid, o_first : Out(1)
        ``o_first``: this entry starts output channel ``o_out``.
    o_out, o_c : Out(range(max_channels))
    o_tap : Out(range(9))
        ``ky * 3 + kx`` of a 3x3 kernel; 4 (the centre) for 1x1 kernels.
    o_code : Out(unsigned(code_bits))
    """

    latency = 2

    def __init__(self, code_bits=8, max_channels=1024):
        code_bits = check_code_bits(code_bits)
        if not isinstance(max_channels, int) or isinstance(max_channels, bool):
            raise TypeError(f"Channel count must be an integer, not {max_channels!r}")
        if max_channels < 1:
            raise ValueError(f"Channel count must be positive, not {max_channels!r}")
        self._code_bits = code_bits
        self._max_channels = max_channels
        super().__init__({
            "entry": In(unsigned(code_bits + 4)),
            "valid": In(1),
            "restart": In(1),
            "kernel3": In(1),
            "in_channels": In(range(max_channels + 1)),
            "o_valid": Out(1),
            "o_first": Out(1),
            "o_out": Out(range(max_channels)),
            "o_c": Out(range(max_channels)),
            "o_tap": Out(range(9)),
            "o_code": Out(unsigned(code_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        cb = self._code_bits
        cw = ceil_log2(self._max_channels + 17) + 1

        # ---- stage A: the tap recurrence --------------------------------------------------
        # The loop is one short add and a table: the register ``tap1`` holds ``tap + 1`` (a
        # constant of the table), so ``tap_sum = tap + rel + 1`` is one add of 4-bit values;
        # ``(carry, next_tap)`` of a 3x3 kernel is a 25-entry table of ``tap_sum``, and
        # ``carry - in_channels`` a choice among three subtractions done beside the loop.
        tap1 = Signal(range(10), init=1)
        rel = self.entry[cb:cb + 4]
        gap = Signal(range(17))
        m.d.comb += gap.eq(rel + ~self.restart)
        tap_sum = Signal(range(25))
        m.d.comb += tap_sum.eq(Mux(self.restart, rel, tap1 + rel))
        carry3 = Signal(range(3))
        next_tap3 = Signal(range(9))
        with m.Switch(tap_sum):
            for value in range(25):
                with m.Case(value):
                    m.d.comb += [carry3.eq(value // 9), next_tap3.eq(value % 9)]
        carry = Mux(self.kernel3, carry3, gap)
        next_tap = Mux(self.kernel3, next_tap3, 4)
        with m.If(self.valid):
            m.d.sync += tap1.eq(next_tap + 1)
        minus = [Signal(signed(cw), name=f"minus_in{k}") for k in range(3)]
        m.d.comb += [v.eq(k - self.in_channels) for k, v in enumerate(minus)]
        carry_wrapped = Mux(self.kernel3,
                            Mux(carry3 == 2, minus[2], Mux(carry3 == 1, minus[1], minus[0])),
                            gap - self.in_channels)

        a_valid = Signal()
        a_restart = Signal()
        a_carry = Signal(range(17))
        a_carry_wrapped = Signal(signed(cw))   # carry - in_channels
        a_tap = Signal(range(9))
        a_code = Signal(unsigned(cb))
        m.d.sync += [
            a_valid.eq(self.valid), a_restart.eq(self.restart), a_carry.eq(carry),
            a_carry_wrapped.eq(carry_wrapped), a_tap.eq(next_tap),
            a_code.eq(self.entry[:cb]),
        ]

        # ---- stage B: the (o, c) recurrence ------------------------------------------------
        out_ch = Signal.like(self.o_out)
        chan = Signal.like(self.o_c)
        base_c = Mux(a_restart, 0, chan)
        base_o = Mux(a_restart, 0, out_ch)
        kept = Signal(unsigned(cw))
        wrapped = Signal(signed(cw + 1))
        m.d.comb += [kept.eq(base_c + a_carry), wrapped.eq(base_c + a_carry_wrapped)]
        wrap = Signal()
        m.d.comb += wrap.eq(wrapped >= 0)
        next_c = Mux(wrap, wrapped, kept)
        next_o = Mux(wrap, base_o + 1, base_o)
        with m.If(a_valid):
            m.d.sync += [out_ch.eq(next_o), chan.eq(next_c)]
        m.d.sync += [
            self.o_valid.eq(a_valid),
            self.o_first.eq(a_restart | wrap),
            self.o_out.eq(next_o),
            self.o_c.eq(next_c),
            self.o_tap.eq(a_tap),
            self.o_code.eq(a_code),
        ]
        return m
