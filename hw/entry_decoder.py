"""Sparse-entry decoder: turns the stored ``(code, rel)`` entries into weight coordinates.

The Deep Compression format stores each non-zero weight (and each filler) as a codebook index
and a 4-bit gap to the previous entry: ``pos_0 = rel_0``, ``pos_j = pos_{j-1} + rel_j + 1`` in
the flattened ``(out, in, kh, kw)`` tensor. The decoder keeps the previous position as
``(o, c, tap)`` and adds the gap incrementally, so no division is ever done:

- 1x1 kernels: ``c += gap``; past ``in_channels`` the channel wraps and ``o`` moves on;
- 3x3 kernels: ``tap += gap`` (a gap is at most 16, so it carries into ``c`` at most twice).

Because :func:`hw.program.hardware_entries` guarantees at least one entry per output channel,
an entry moves ``o`` by 0 or 1, and such a move marks the entry as the ``first`` of a channel.
"""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["EntryDecoder"]


class EntryDecoder(wiring.Component):
    """Decode one sparse entry per cycle.

    Latency 1 (outputs registered), throughput one entry per cycle.

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
        The convolution is 3x3 (else 1x1).
    in_channels : In(range(max_channels + 1))
    o_valid, o_first : Out(1)
        ``o_first``: this entry starts output channel ``o_out``.
    o_out, o_c : Out(range(max_channels))
    o_tap : Out(range(9))
        ``ky * 3 + kx`` of a 3x3 kernel; 4 (the centre) for 1x1 kernels.
    o_code : Out(unsigned(code_bits))
    """

    def __init__(self, code_bits=8, max_channels=1024):
        if not isinstance(code_bits, int) or not 4 <= code_bits <= 8:
            raise ValueError(f"Code width must be an integer from 4 to 8, not {code_bits!r}")
        if not isinstance(max_channels, int) or max_channels < 1:
            raise ValueError(f"Channel count must be a positive integer, not {max_channels!r}")
        self._code_bits = code_bits
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

    latency = 1

    def elaborate(self, platform):
        m = Module()
        cb = self._code_bits
        out_ch = Signal.like(self.o_out)
        chan = Signal.like(self.o_c)
        tap = Signal(range(9))

        rel = self.entry[cb:cb + 4]
        gap = Signal(range(17))
        m.d.comb += gap.eq(rel + ~self.restart)
        base_o = Mux(self.restart, 0, out_ch)
        base_c = Mux(self.restart, 0, chan)
        base_tap = Mux(self.restart, 0, tap)

        tap_sum = Signal(range(25))
        m.d.comb += tap_sum.eq(base_tap + gap)
        carry = Signal(range(17))
        next_tap = Signal(range(9))
        with m.If(self.kernel3):
            with m.If(tap_sum >= 18):
                m.d.comb += [carry.eq(2), next_tap.eq(tap_sum - 18)]
            with m.Elif(tap_sum >= 9):
                m.d.comb += [carry.eq(1), next_tap.eq(tap_sum - 9)]
            with m.Else():
                m.d.comb += [carry.eq(0), next_tap.eq(tap_sum)]
        with m.Else():
            m.d.comb += [carry.eq(gap), next_tap.eq(4)]

        c_sum = Signal(unsigned(len(chan) + 2))
        m.d.comb += c_sum.eq(base_c + carry)
        wrap = Signal()
        m.d.comb += wrap.eq(c_sum >= self.in_channels)
        next_c = Mux(wrap, c_sum - self.in_channels, c_sum)
        next_o = base_o + wrap

        with m.If(self.valid):
            m.d.sync += [out_ch.eq(next_o), chan.eq(next_c), tap.eq(next_tap)]
        m.d.sync += [
            self.o_valid.eq(self.valid),
            self.o_first.eq(self.restart | wrap),
            self.o_out.eq(next_o),
            self.o_c.eq(next_c),
            self.o_tap.eq(next_tap),
            self.o_code.eq(self.entry[:cb]),
        ]
        return m
