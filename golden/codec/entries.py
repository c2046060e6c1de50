"""The sparse entries of the ``.net`` format: code widths, positions, fillers, nibble packing.

An entry is a codebook index (``code``) and a 4-bit relative index (``rel``, the gap minus one
from the previous entry); :func:`entry_positions` and :func:`encode_positions` convert between
entries and flat weight positions, the one place the filler rule is written.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_CODE_BITS", "MAX_CODE_BITS", "REL_BITS", "MAX_GAP", "FILE_VALUE_BITS",
           "check_code_bits", "entry_positions", "encode_positions"]

MIN_CODE_BITS = 4
MAX_CODE_BITS = 8
#: Width of one relative index; it is fixed by the format.
REL_BITS = 4
#: Largest distance between two consecutive entries that one nibble can express.
MAX_GAP = 1 << REL_BITS
#: Width of one codebook entry and of one bias in the file (float32).
FILE_VALUE_BITS = 32


def check_code_bits(code_bits):
    """Return ``code_bits`` as an int.

    Raises
    ------
    TypeError
        If ``code_bits`` is not an integer.
    ValueError
        If the hardware cannot store codes of that width (outside 4..8).
    """
    if isinstance(code_bits, bool) or not isinstance(code_bits, (int, np.integer)):
        raise TypeError(f"Code width must be an integer from {MIN_CODE_BITS} to "
                        f"{MAX_CODE_BITS}, not {code_bits!r}")
    if not MIN_CODE_BITS <= code_bits <= MAX_CODE_BITS:
        raise ValueError(f"Code width must be an integer from {MIN_CODE_BITS} to "
                         f"{MAX_CODE_BITS}, not {code_bits!r}")
    return int(code_bits)



def entry_positions(rel):
    """Flat row-major ``(out, in, kh, kw)`` position of each sparse entry.

    Entry ``j`` lies ``rel[j] + 1`` positions after entry ``j - 1``, the first one counting from
    position -1: the positions are ``cumsum(rel + 1) - 1``.

    Parameters
    ----------
    rel : array_like of int
        Relative indices, 0..15.

    Returns
    -------
    numpy.ndarray
        int64, same length.
    """
    return np.cumsum(np.asarray(rel).astype(np.int64) + 1) - 1


def encode_positions(positions, codes):
    """Sparse entries of weights at ``positions``, long gaps bridged by fillers.

    Inverse of :func:`entry_positions`. Between two consecutive weights ``g`` positions apart
    (the first one counting from position -1), ``(g - 1) // 16`` filler entries (code 0, rel
    15) sit every 16 positions, and the weight's own relative index is ``(g - 1) % 16``, as in
    the Deep Compression file.

    Parameters
    ----------
    positions : array_like of int
        Strictly increasing, non-negative flat positions.
    codes : array_like of int
        Codebook index of the weight at each position.

    Returns
    -------
    (codes, rel) : tuple of uint8 arrays

    Raises
    ------
    ValueError
        If the arrays differ in length or the positions are not strictly increasing from 0.
    """
    positions = np.asarray(positions, dtype=np.int64)
    codes = np.asarray(codes, dtype=np.uint8)
    if positions.ndim != 1 or positions.shape != codes.shape:
        raise ValueError(f"positions {positions.shape} and codes {codes.shape} must be 1-D "
                         f"arrays of the same length")
    gaps = np.diff(positions, prepend=-1)
    if gaps.size and gaps.min() < 1:
        raise ValueError("positions must be non-negative and strictly increasing")
    fillers_before = (gaps - 1) // MAX_GAP
    total = len(positions) + int(fillers_before.sum())
    # Fillers are rel 15, code 0, so start from that and drop the real entries into place.
    out_codes = np.zeros(total, dtype=np.uint8)
    rel = np.full(total, MAX_GAP - 1, dtype=np.uint8)
    slots = np.arange(len(positions)) + np.cumsum(fillers_before)
    out_codes[slots] = codes
    rel[slots] = (gaps - 1) % MAX_GAP
    return out_codes, rel


def _nibble_bytes(count):
    """Bytes holding ``count`` 4-bit values (the README's ``(N - 1) // 2 + 1``, also for 0)."""
    return (count + 1) // 2


def _code_bytes(count, code_bits):
    return _nibble_bytes(count) if code_bits == 4 else count


def _unpack_nibbles(packed, count):
    """Low nibble first: value ``j`` is in byte ``j // 2``."""
    out = np.empty(2 * len(packed), dtype=np.uint8)
    out[0::2] = packed & 0x0F
    out[1::2] = packed >> 4
    return out[:count]


def _pack_nibbles(values):
    """Inverse of :func:`_unpack_nibbles`; an odd count gets a 0 high nibble as padding."""
    values = np.asarray(values, dtype=np.uint8)
    if len(values) % 2:
        values = np.append(values, np.uint8(0))
    return (values[0::2] | (values[1::2] << 4)).astype(np.uint8)
