"""Requantiser: 32-bit accumulator -> uint8 activation, exactly as ``golden.fixed.requantize``.

``y = (acc + (1 << (shift - 1))) >> shift`` (round half up; no rounding term when shift is 0),
then ReLU and saturation to 0..255.

A program's shifts are known when the hardware is built (they are in its descriptors), and a
real one uses few (SqueezeNet v1.0: 13..17). Given them (``shifts``), the requantiser drops the
accumulator bits below the smallest shift's rounding bit (the rounding term cannot carry out of
them, and the shift discards them) and selects the output byte from only those shifts' positions.
"""

from numbers import Integral

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed, unsigned
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
    shifts : iterable of int, optional
        The shifts it will be given (default: all, 0..31). Any other shift gives an
        unspecified byte.

    Members
    -------
    acc : In(signed(acc_width))
    shift : In(unsigned(5))
        Right shift, 0..31.
    o : Out(unsigned(8))
    """

    latency = 2

    def __init__(self, acc_width=32, *, early_shift=False, shifts=None):
        if not isinstance(acc_width, int) or isinstance(acc_width, bool):
            raise TypeError(f"Accumulator width must be an integer, not {acc_width!r}")
        if acc_width < 9:
            raise ValueError(f"Accumulator width must be at least 9, not {acc_width!r}")
        shifts = list(range(32) if shifts is None else shifts)
        if not shifts or not all(isinstance(s, Integral) and not isinstance(s, bool)
                                 and 0 <= s <= 31 for s in shifts):
            raise ValueError(f"Shifts must be integers from 0 to 31, not {shifts!r}")
        self._shifts = sorted({int(s) for s in shifts})
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
        # rewritten as a test on ``acc``. ``half`` and the shift's one-hot code depend on
        # ``shift`` only, so lanes sharing it share them.
        half = Signal(unsigned(32))
        given = Signal.like(self.shift)
        is_shift = Signal(len(self._shifts))
        domain = m.d.sync if self._early else m.d.comb
        domain += [
            given.eq(self.shift),
            half.eq((1 << self.shift) >> 1),
            is_shift.eq(Cat(self.shift == s for s in self._shifts)),
        ]
        # Bits of acc below b0 (the smallest shift's rounding bit) cannot change the result:
        # half is a multiple of 2**b0, the saturation test reads bits from b0 up, and every
        # shift discards them.
        b0 = max(self._shifts[0] - 1, 0)
        top = Signal(signed(self._acc_width - b0 + 1))  # one bit more: the add cannot overflow
        high = Signal()
        choice = Signal(range(len(self._shifts)))
        m.d.sync += [
            top.eq((self.acc >> b0) + (half >> b0)),
            high.eq((is_shift & Cat(self._saturates(s) for s in self._shifts)).any()),
        ]
        if self._shifts == list(range(len(self._shifts))):
            m.d.sync += choice.eq(given)
        else:
            with m.Switch(given):
                for i, s in enumerate(self._shifts):
                    with m.Case(s):
                        m.d.sync += choice.eq(i)
        # Stage 2: only the 8 bits that survive the shift are selected, among the given shifts.
        low = Signal(8)
        m.d.comb += low.eq(Array((top >> (s - b0))[:8] for s in self._shifts)[choice])
        m.d.sync += self.o.eq(Mux(top < 0, 0, Mux(high, 255, low)))
        return m

    def _saturates(self, shift):
        """Whether ``acc + half >= 256 << shift`` (the result saturates), without a carry
        chain: for shift s > 0 that is ``acc >= 511 << (s - 1)``, i.e. acc is not negative and
        ``acc >> (s - 1)``, read as a number, is at least 511: a bit above its low 9 is set,
        or those 9 are all ones (for s = 0, ``acc >= 256``: a bit from 8 up is set). A
        comparator against a shift-dependent limit was 11 CCU2C a lane on ECP5, and the
        41-bit limit went to every lane."""
        w = self._acc_width
        sign = self.acc[w - 1]
        ext = Cat(self.acc, sign.replicate(9))        # bits above w - 1: copies of the sign
        if shift == 0:
            return ~sign & ext[8:w - 1].any()
        lo = shift - 1
        above = ext[lo + 9:w - 1].any() if lo + 9 < w - 1 else 0
        return ~sign & (above | ext[lo:lo + 9].all())
