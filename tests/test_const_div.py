"""Division by a constant (shift, or multiply by a magic constant) against Python's divmod."""

import random

import pytest
from amaranth.hdl import Module, Signal, signed

from hw.blocks.const_div import divmod_constant
from tests.test_row_flags import _sample


def _check(divisor, low, high, values):
    m = Module()
    x = Signal(signed(max(low.bit_length(), high.bit_length()) + 1))
    q, r = divmod_constant(x, divisor, low, high)
    qs, rs = Signal(signed(len(x) + 1)), Signal(max(1, divisor.bit_length()))
    m.d.comb += [qs.eq(q), rs.eq(r)]
    got = _sample(m, (x,), (qs, rs), [(v,) for v in values])
    for v, (gq, gr) in zip(values, got):
        assert (gq, gr) == divmod(v, divisor), (divisor, v)


@pytest.mark.parametrize("divisor", [1, 8, 24, 40, 240, 1000])
def test_tap_offsets_every_value(divisor):
    """The sequencer's tap offsets: -256..256, signed."""
    _check(divisor, -256, 256, list(range(-256, 257)))


@pytest.mark.parametrize("divisor", [24, 240, 1016])
def test_pixel_counts_at_every_edge(divisor):
    """Group counts: 0..2**17 - 1, at every multiple of d and beside it, and at random."""
    high = (1 << 17) - 1
    values = sorted({v for q in range(0, high + 1, divisor) for v in (q - 1, q, q + 1)
                     if 0 <= v <= high} | {high} | set(random.Random(divisor).sample(
                         range(high + 1), 500)))
    _check(divisor, 0, high, values)


@pytest.mark.parametrize("divisor,low,high", [(0, 0, 1), (True, 0, 1), (3, 2, 1)])
def test_bad_parameters(divisor, low, high):
    with pytest.raises(ValueError):
        divmod_constant(Signal(4), divisor, low, high)
