"""Which lanes of a pixel group have an image row above and below them, and a column left and
right of them.

Lane k of group g holds pixel ``g*P + k`` of a raster map ``W`` pixels wide; it has a row above
when ``g*P + k >= W`` and a row below when ``g*P + k < pixels_above`` (the map's pixels minus
one row). Written per lane these are 2P comparisons of the full pixel index, a carry chain each
(by count about 1,150 carry cells at 64 lanes on the ECP5, not measured alone). Here both sides
subtract the group's first pixel once, ``t = W - g*P`` and ``u = pixels_above - g*P``, and each
lane compares the low ``log2 P`` bits of t or u with its own constant k: ``k >= t`` is
``t <= 0``, or ``0 < t < P`` and ``k >= t mod P``.

Columns: lane k's column is ``(c + k) mod W`` for the group's first column c; kept for every
lane, that is a modulo-W counter each (about 40 LUTs). :func:`column_flags` takes a block of
B lanes that share one counter (their first column b, ``0 <= b < W``): when ``B <= W`` the
block's columns wrap at most once, at lane ``t = W - b``, so lane j has no column left iff
``j == t`` or ``j == b == 0``, and none right iff ``j + 1 == t``: one subtraction per block and
constant compares per lane.

Combinational (latency 0): the callers register the flags.
"""

from amaranth.hdl import Cat, Const, Signal, signed
from amaranth.utils import exact_log2

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
        P, a power of two.
    width, pixels_above : Value
        W and the index of the first pixel of the last row.
    """
    log_p = exact_log2(lanes)
    first = Cat(Const(0, log_p), group)
    bits = max(len(first), len(width), len(pixels_above)) + 2
    t = Signal(signed(bits), name="row_above_from")   # lanes k >= t have a row above
    u = Signal(signed(bits), name="row_below_until")  # lanes k < u have a row below
    m.d.comb += [t.eq(width - first), u.eq(pixels_above - first)]
    t_all, t_some = t <= 0, t < lanes        # every lane / lanes from t mod P on
    u_none, u_all = u <= 0, u >= lanes       # no lane / every lane
    t_low, u_low = t[:log_p], u[:log_p]
    top = [t_all | (t_some & (t_low <= k)) for k in range(lanes)]
    bottom = [u_all | (~u_none & (u_low > k)) for k in range(lanes)]
    return top, bottom


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
