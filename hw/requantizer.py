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

    Latency 2 (the rounding add, then the shift and clamp, each registered); one value per
    cycle. ``shift`` must be steady for the two cycles.

    Parameters
    ----------
    acc_width : int
        Width of the signed accumulator.

    Members
    -------
    acc : In(signed(acc_width))
    shift : In(unsigned(5))
        Right shift, 0..31.
    o : Out(unsigned(8))
    """

    latency = 2

    def __init__(self, acc_width=32):
        if not isinstance(acc_width, int) or acc_width < 9:
            raise ValueError(f"Accumulator width must be an integer >= 9, not {acc_width!r}")
        self._acc_width = acc_width
        super().__init__({
            "acc": In(signed(acc_width)),
            "shift": In(unsigned(5)),
            "o": Out(unsigned(8)),
        })

    def elaborate(self, platform):
        m = Module()
        # One extra bit so that adding the rounding term cannot overflow.
        rounded = Signal(signed(self._acc_width + 1))
        m.d.sync += rounded.eq(self.acc + ((1 << self.shift) >> 1))
        shifted = Signal(signed(self._acc_width + 1))
        m.d.comb += shifted.eq(rounded >> self.shift)
        m.d.sync += self.o.eq(Mux(shifted < 0, 0, Mux(shifted > 255, 255, shifted[:8])))
        return m
