"""Floor division and remainder of a value by a constant: a shift for a power of two, else one
multiplication by a constant.

The engines' lane count P need not be a power of two (multiples of 8 fill a part's multipliers,
e.g. 240), so group numbers, tap offsets and group counts are ``x // P`` and ``x mod P`` of
values with a known range. For a power of two that is a shift and a bit slice (no logic). Else,
for ``0 <= x < 2**n``, ``x // d == (x * M) >> s`` with ``s = n + ceil(log2 d)`` and
``M = ceil(2**s / d)``: ``M = (2**s + e) / d`` with ``0 <= e < d``, so ``x * M / 2**s`` exceeds
``x / d`` by ``x * e / (d * 2**s) < 2**n / 2**s <= 1 / d``, and the fractional part of ``x / d``
is at most ``(d - 1) / d``: the floor does not change. A signed range is first biased by a
multiple of d. The remainder is ``x - d * (x // d)``.

Combinational (latency 0): the callers register the results. The constant products are
written as sums of shifted copies (:func:`times_constant`), so that synthesis does not give them
a DSP block (the designs' DSP count stays the lane count). Cost: about as many adders as M has
set bits; the sequencers use it for values latched once per run.
"""

from amaranth.hdl import Value
from amaranth.utils import ceil_log2

__all__ = ["divmod_constant", "times_constant"]


def divmod_constant(value, divisor, low, high):
    """``(value // divisor, value mod divisor)`` as Amaranth values, for ``value`` in
    ``low..high`` (Python's floor division and non-negative remainder). Outside that range the
    results are undefined.

    Parameters
    ----------
    value : Value
        Signed or unsigned.
    divisor : int
        d, at least 1.
    low, high : int
        The range of ``value``.
    """
    if not isinstance(divisor, int) or isinstance(divisor, bool) or divisor < 1:
        raise ValueError(f"Divisor must be a positive integer, not {divisor!r}")
    if low > high:
        raise ValueError(f"Empty range {low}..{high}")
    value = Value.cast(value)
    k = ceil_log2(divisor)
    if divisor == 1 << k:
        return value >> k, (value[:k] if k else 0)
    bias = divisor * -(-max(0, -low) // divisor)       # a multiple of d making the range >= 0
    n = max(1, (high + bias).bit_length())
    x = (value + bias)[:n]                               # 0 <= x < 2**n, unsigned
    shift = n + k
    magic = -(-(1 << shift) // divisor)
    biased_quotient = times_constant(x, magic)[shift:]
    quotient = biased_quotient - bias // divisor if bias else biased_quotient
    remainder = (x - times_constant(biased_quotient, divisor))[:k]
    return quotient, remainder


def times_constant(value, constant):
    """``value * constant`` (unsigned, ``constant >= 0``) as a sum of shifted copies of
    ``value``, one per set bit of the constant."""
    value = Value.cast(value)
    terms = [value << i for i in range(constant.bit_length()) if constant >> i & 1]
    total = terms[0] if terms else value[:0]
    for term in terms[1:]:
        total = total + term
    return total
