"""Which lanes of a pixel group have an image row above and below them, and a column left and
right of them.

Lane k of group g holds pixel ``g*P + k`` of a raster map ``W`` pixels wide; it has a row above
when ``g*P + k >= W`` and a row below when ``g*P + k < pixels_above`` (the map's pixels minus
one row). Written per lane these are 2P comparisons of the full pixel index, a carry chain each
(by count about 1,150 carry cells at 64 lanes on the ECP5, not measured alone). Here both sides
subtract the group's first pixel once, ``t = W - g*P`` and ``u = pixels_above - g*P``, and each
lane compares the low ``log2 P`` bits of t or u with its own constant k: ``k >= t`` is
``t <= 0``, or ``0 < t < P`` and ``k >= t mod P``. For P not a power of two (a multiple of 8)
the same with ``ceil(log2 P)`` bits, ``g*P`` as a sum of shifted copies and ``t < P`` a
comparison.

Columns: lane k's column is ``(c + k) mod W`` for the group's first column c; kept for every
lane, that is a modulo-W counter each (about 40 LUTs). :func:`column_flags` takes a block of
B lanes that share one counter (their first column b, ``0 <= b < W``): when ``B <= W`` the
block's columns wrap at most once, at lane ``t = W - b``, so lane j has no column left iff
``j == t`` or ``j == b == 0``, and none right iff ``j + 1 == t``: one subtraction per block and
constant compares per lane.

Combinational (latency 0): the callers register the flags.
"""

from amaranth.hdl import Cat, Const, Signal, signed
from amaranth.utils import ceil_log2, exact_log2

from hw.blocks.const_div import times_constant

__all__ = ["row_flags", "column_flags"]


def row_flags(m, group, lanes, width, pixels_above):
    """``(top, bottom)``: lists of P one-bit values, lane k's row above and row below.

    Parameters
    ----------
    m : Module
        Gets the two subtractions (``comb``).
    group : Value
        g, the group number.
    lanes : int
        P (a power of two, or any other count: then ``g*P`` is a sum of shifted copies of g
        and the tests against P are comparisons).
    width, pixels_above : Value
        W and the index of the first pixel of the last row.
    """
    log_p = ceil_log2(lanes)
    pow2 = lanes == 1 << log_p
    first = Cat(Const(0, log_p), group) if pow2 else times_constant(group, lanes)
    bits = max(len(first), len(width), len(pixels_above)) + 2
    t = Signal(signed(bits), name="row_above_from")   # lanes k >= t have a row above
    u = Signal(signed(bits), name="row_below_until")  # lanes k < u have a row below
    m.d.comb += [t.eq(width - first), u.eq(pixels_above - first)]
    # After the two subtractions, only LUTs: the tests against 0 and P are the sign and OR
    # reductions, and each lane's ``t mod P <= k`` a lookup of a constant by ``t mod P``
    # (written as comparisons, Yosys gave each its own carry chain, in series with the
    # subtraction's: the ECP5 default's critical path, 2026-12-04).
    t_all = _at_most_zero(t)                         # every lane
    t_some = t[-1] | ~t[log_p:].any() if pow2 else t < lanes  # t < P: lanes from t on
    u_none = _at_most_zero(u)                                  # no lane
    u_all = ~u[-1] & u[log_p:].any() if pow2 else u >= lanes   # u >= P: every lane
    t_low, u_low = t[:log_p], u[:log_p]
    top = [t_all | (t_some & _table(lambda v: v <= k, 1 << log_p).bit_select(t_low, 1))
           for k in range(lanes)]
    bottom = [u_all | (~u_none & _table(lambda v: v > k, 1 << log_p).bit_select(u_low, 1))
              for k in range(lanes)]
    return top, bottom


def _at_most_zero(value):
    """``value <= 0`` for a signed value, as its sign or no bit set."""
    return value[-1] | ~value.any()


def _table(predicate, size):
    """A constant whose bit v is ``predicate(v)``, for v in 0..size-1."""
    return Const(sum(1 << v for v in range(size) if predicate(v)), size)


def column_flags(m, first, block, width):
    """``(left, right)``: lists of B one-bit values, lane j of a block of B lanes whose first
    lane is in column ``first`` (``0 <= first < W``) has a column left / right of it. The
    caller must ensure ``B <= W`` (the columns wrap at most once in the block).

    Parameters
    ----------
    m : Module
        Gets the subtraction (``comb``).
    first : Value
        b, the block's first column.
    block : int
        B, a power of two.
    width : Value
        W.
    """
    log_b = exact_log2(block)
    t = Signal(len(width) + 1, name="column_wraps_at")  # 1 <= t <= W: lane t is column 0
    m.d.comb += t.eq(width - first)
    inside = (t >> log_b) == 0                           # t < B: the wrap is in the block
    low = t[:log_b]
    at = [inside & (low == j) for j in range(block)] + [t == block]
    left = [~(at[j] | ((first == 0) if j == 0 else 0)) for j in range(block)]
    right = [~at[j + 1] for j in range(block)]
    return left, right
