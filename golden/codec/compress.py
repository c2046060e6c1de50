"""Dense weights to sparse entries (:func:`compress_layer`), as Deep Compression stores them."""

from __future__ import annotations

import numpy as np

from .entries import check_code_bits, encode_positions
from .model import CompressedLayer

__all__ = ["compress_layer"]


def compress_layer(spec, dense_weights, bias, codebook, code_bits=8):
    """Store dense weights as sparse entries, bridging long gaps with fillers like the real file.

    Every non-zero weight becomes one entry whose code is the index of its value in
    ``codebook``. Between two consecutive non-zero weights ``g`` positions apart (the first one
    counting from position -1), ``(g - 1) // 16`` filler entries (nibble 15, code 0) sit every
    16 positions, and the weight's own nibble is ``(g - 1) % 16``. Zeros after the last
    non-zero weight are not stored. Decoding any layer of the real file and compressing its
    dense weights again gives the same codes and relative indices.

    Parameters
    ----------
    spec : Conv
    dense_weights : array_like
        Shape ``spec.weight_shape``; every non-zero value must be an entry of ``codebook``.
    bias : array_like
        Shape ``(spec.out_channels,)``.
    codebook : array_like
        Shape ``(2**code_bits,)``; entry 0 must be 0.0 and non-zero entries must be distinct
        (a repeated value would make its code ambiguous). Compared as float32.
    code_bits : int, optional
        4..8.

    Returns
    -------
    CompressedLayer

    Raises
    ------
    TypeError
        If ``code_bits`` is not an integer.
    ValueError
        Naming the layer, for a shape mismatch, a bad codebook, or a weight not in the codebook;
        for ``code_bits`` outside 4..8.
    """
    code_bits = check_code_bits(code_bits)
    name = spec.name
    codebook = np.array(codebook, dtype=np.float32)  # copy: the layer must own its codebook
    if codebook.shape != (1 << code_bits,):
        raise ValueError(f"layer {name!r}: codebook shape {codebook.shape}, expected "
                         f"({1 << code_bits},) for {code_bits}-bit codes")
    if not codebook[0] == 0:
        raise ValueError(f"layer {name!r}: codebook entry 0 is {float(codebook[0])!r}, not 0.0")
    bias = np.array(bias, dtype=np.float32)
    if bias.shape != (spec.out_channels,):
        raise ValueError(f"layer {name!r}: bias shape {bias.shape}, expected "
                         f"({spec.out_channels},)")
    weights = np.asarray(dense_weights, dtype=np.float32)
    if weights.shape != spec.weight_shape:
        raise ValueError(f"layer {name!r}: weight shape {weights.shape}, expected "
                         f"{spec.weight_shape}")

    # Look values up in the sorted non-zero part of the codebook (codes 1..); zero entries
    # beyond index 0 are never needed because zero weights are not stored.
    candidates = np.flatnonzero(codebook != 0)
    candidates = candidates[candidates > 0]
    order = candidates[np.argsort(codebook[candidates], kind="stable")]
    sorted_values = codebook[order]
    if len(sorted_values) > 1 and (sorted_values[1:] == sorted_values[:-1]).any():
        dup = sorted_values[1:][sorted_values[1:] == sorted_values[:-1]][0]
        raise ValueError(f"layer {name!r}: codebook value {float(dup)!r} appears more than "
                         f"once, so its code would be ambiguous")

    flat = weights.ravel()
    nz_pos = np.flatnonzero(flat != 0)
    values = flat[nz_pos]
    slot = np.searchsorted(sorted_values, values)
    slot_ok = slot < len(sorted_values)
    found = slot_ok.copy()
    found[slot_ok] = sorted_values[slot[slot_ok]] == values[slot_ok]
    if not found.all():
        k = int(np.argmin(found))
        where = np.unravel_index(int(nz_pos[k]), spec.weight_shape)
        raise ValueError(f"layer {name!r}: weight {float(values[k])!r} at (out, in, kh, kw) = "
                         f"{tuple(int(i) for i in where)} is not an entry of the codebook "
                         f"({int(np.count_nonzero(~found))} such weights)")
    codes, rel = encode_positions(nz_pos, order[slot])
    return CompressedLayer(spec, codebook, bias, codes, rel)
