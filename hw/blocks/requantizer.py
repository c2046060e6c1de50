"""Requantiser: 32-bit accumulator -> uint8 activation, exactly as ``golden.fixed.requantize``.

``y = (acc + (1 << (shift - 1))) >> shift`` (round half up; no rounding term when shift is 0),
then ReLU and saturation to 0..255.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Requantizer"]


class Requantizer(wiring.Component):
    """Shift, round half up, ReLU and saturate one accumulator.

    Latency 2 (the rounding add and saturation test, then the shift and clamp, each
    registered); one value per cycle, each with its own ``shift``.

    Parameters
    ----------
    acc_width : int
        Width of the signed accumulator.
    early_shift : bool
        ``shift`` is given one cycle before its ``acc`` (it is registered, and so are the
        rounding term and the saturation limit made from it: lanes sharing a shift then share
        registers, not a net from logic to every lane).

    Members
    -------
    acc : In(signed(acc_width))
    shift : In(unsigned(5))
        Right shift, 0..31.
    o : Out(unsigned(8))
    """

    latency = 2

    def __init__(self, acc_width=32, *, early_shift=False):
        if not isinstance(acc_width, int) or isinstance(acc_width, bool):
            raise TypeError(f"Accumulator width must be an integer, not {acc_width!r}")
        if acc_width < 9:
            raise ValueError(f"Accumulator width must be at least 9, not {acc_width!r}")
        self._acc_width = acc_width
        self._early = bool(early_shift)
        super().__init__({
            "acc": In(signed(acc_width)),
            "shift": In(unsigned(5)),
            "o": Out(unsigned(8)),
        })

    def elaborate(self, platform):
        m = Module()
        # Stage 1: the rounding add, and in parallel the saturation test against the sum,
        # rewritten as a test on ``acc``: acc + half >= 256 << shift  <=>  acc >= limit.
        # ``half`` and ``limit`` depend on ``shift`` only, so lanes sharing it share them.
        half = Signal(unsigned(32))
        limit = Signal(unsigned(41))
        given = Signal.like(self.shift)
        domain = m.d.sync if self._early else m.d.comb
        domain += [
            given.eq(self.shift),
            half.eq((1 << self.shift) >> 1),
            limit.eq(Mux(self.shift == 0, 256, (511 << self.shift) >> 1)),
        ]
        rounded = Signal(signed(self._acc_width + 1))  # one bit more: the add cannot overflow
        high = Signal()
        shift = Signal.like(self.shift)
        m.d.sync += [
            rounded.eq(self.acc + half),
            high.eq(self.acc >= limit),
            shift.eq(given),
        ]
        # Stage 2: only the 8 bits that survive the shift are selected.
        low = Signal(8)
        m.d.comb += low.eq((rounded >> shift)[:8])
        m.d.sync += self.o.eq(Mux(rounded < 0, 0, Mux(high, 255, low)))
        return m
