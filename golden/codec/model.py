"""Compressed layers and models, and their serialisation to ``.net`` bytes (:func:`encode`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from golden.network import Conv, conv_layers

from .entries import (FILE_VALUE_BITS, MAX_GAP, REL_BITS, _pack_nibbles, check_code_bits,
                      entry_positions)

__all__ = ["CompressedLayer", "CompressedModel", "encode"]


@dataclass(eq=False)
class CompressedLayer:
    """One convolution layer as stored in the file.

    Attributes
    ----------
    spec : Conv
        The layer's shape, from :mod:`golden.network`.
    codebook : numpy.ndarray
        float32, shape ``(2**code_bits,)``; entry 0 is 0.0.
    bias : numpy.ndarray
        float32, shape ``(spec.out_channels,)``.
    codes : numpy.ndarray
        uint8, shape ``(N,)``: codebook index of each entry (fillers have code 0).
    rel : numpy.ndarray
        uint8, shape ``(N,)``, values 0..15: each entry's distance from the previous entry
        minus one (the first entry counts from position -1).
    """

    spec: Conv
    codebook: np.ndarray
    bias: np.ndarray
    codes: np.ndarray
    rel: np.ndarray

    @property
    def name(self):
        return self.spec.name

    @property
    def positions(self):
        """int64 flat index of each entry into the row-major ``(out, in, kh, kw)`` weights."""
        return entry_positions(self.rel)

    def dense_weights(self):
        """float32 weights of shape ``spec.weight_shape``, zero where no entry is stored."""
        flat = np.zeros(self.spec.weight_count, dtype=np.float32)
        flat[self.positions] = np.asarray(self.codebook, dtype=np.float32)[self.codes]
        return flat.reshape(self.spec.weight_shape)

    @property
    def entries(self):
        """Stored entries N, fillers included (the layer's header count)."""
        return int(len(self.codes))

    @property
    def fillers(self):
        """Entries with code 0 (weight 0.0); in the real file all of them are gap fillers."""
        return int(np.count_nonzero(self.codes == 0))

    @property
    def nonzero(self):
        """Entries with a non-zero code, i.e. the non-zero weights."""
        return self.entries - self.fillers

    @property
    def density(self):
        """Fraction of the dense weights that are non-zero."""
        return self.nonzero / self.spec.weight_count

    def storage_bits(self, code_bits=None, value_bits=FILE_VALUE_BITS):
        """Bits needed to store this layer with ``code_bits``-bit codes.

        Counted: ``N * (code_bits + 4)`` for the entries (code plus relative index, fillers
        included), ``2**code_bits * value_bits`` for the codebook and
        ``out_channels * value_bits`` for the biases. Not counted: the 32-bit entry count of the
        header, and padding to whole bytes or memory words.

        Parameters
        ----------
        code_bits : int, optional
            Code width, 4..8; default the width of this layer's codebook.
        value_bits : int, optional
            Width of one codebook entry and one bias; default 32 (float32, as in the file),
            a hardware weight store would pass its fixed-point width.
        """
        if code_bits is None:
            code_bits = int(len(self.codebook)).bit_length() - 1
        code_bits = check_code_bits(code_bits)
        return (self.entries * (code_bits + REL_BITS) + (1 << code_bits) * value_bits
                + self.spec.out_channels * value_bits)


@dataclass(eq=False)
class CompressedModel:
    """A whole compressed network.

    Attributes
    ----------
    network : tuple
        Operations from :mod:`golden.network` (the topology the layers belong to).
    layers : list of CompressedLayer
        In file order, i.e. ``conv_layers(network)`` order.
    code_bits : int
        Code width, 4..8.
    """

    network: tuple
    layers: list
    code_bits: int = 8

    def layer(self, name):
        """The layer called ``name``; KeyError listing the known names otherwise."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        known = ", ".join(layer.name for layer in self.layers)
        raise KeyError(f"no layer named {name!r} in this model; layers are: {known}")

    @property
    def entries(self):
        return sum(layer.entries for layer in self.layers)

    @property
    def fillers(self):
        return sum(layer.fillers for layer in self.layers)

    @property
    def nonzero(self):
        return sum(layer.nonzero for layer in self.layers)

    def storage_bits(self, code_bits=None, value_bits=FILE_VALUE_BITS):
        """Sum of :meth:`CompressedLayer.storage_bits` over the layers."""
        bits = self.code_bits if code_bits is None else code_bits
        return sum(layer.storage_bits(bits, value_bits) for layer in self.layers)

    @property
    def sha256(self):
        """Hex SHA-256 of ``encode(self)``: identifies the weights whatever object holds them."""
        return hashlib.sha256(encode(self)).hexdigest()


def _validate_layer(layer, spec, code_bits):
    """ValueError naming the layer if ``layer`` cannot be written as ``code_bits``-bit codes."""
    name = spec.name
    if layer.spec != spec:
        raise ValueError(f"layer {layer.name!r}: spec {layer.spec} differs from the network's "
                         f"{spec}")
    codebook = np.asarray(layer.codebook)
    if codebook.shape != (1 << code_bits,):
        raise ValueError(f"layer {name!r}: codebook shape {codebook.shape}, expected "
                         f"({1 << code_bits},) for {code_bits}-bit codes")
    if not codebook[0] == 0:
        raise ValueError(f"layer {name!r}: codebook entry 0 is {codebook[0]!r}, not 0.0")
    if np.shape(layer.bias) != (spec.out_channels,):
        raise ValueError(f"layer {name!r}: bias shape {np.shape(layer.bias)}, expected "
                         f"({spec.out_channels},)")
    codes, rel = np.asarray(layer.codes), np.asarray(layer.rel)
    if codes.ndim != 1 or codes.shape != rel.shape:
        raise ValueError(f"layer {name!r}: codes {codes.shape} and rel {rel.shape} must be "
                         f"1-D arrays of the same length")
    if len(codes) and (codes.min() < 0 or codes.max() >= 1 << code_bits):
        raise ValueError(f"layer {name!r}: codes must be in 0..{(1 << code_bits) - 1}")
    if len(rel) and (rel.min() < 0 or rel.max() >= MAX_GAP):
        raise ValueError(f"layer {name!r}: relative indices must be in 0..{MAX_GAP - 1}")
    end = int(rel.astype(np.int64).sum()) + len(rel)
    if end > spec.weight_count:
        raise ValueError(f"layer {name!r}: entries reach flat index {end - 1}, past the layer's "
                         f"{spec.weight_count} weights")


def encode(model):
    """Serialise ``model`` to ``.net`` bytes (inverse of :func:`decode`).

    Raises
    ------
    ValueError
        Naming the layer, if a layer does not match the network or cannot be stored with
        ``model.code_bits``-bit codes.
    """
    code_bits = check_code_bits(model.code_bits)
    specs = conv_layers(model.network)
    if len(model.layers) != len(specs):
        raise ValueError(f"the model has {len(model.layers)} layers but its network has "
                         f"{len(specs)} conv layers")
    parts = [np.array([len(layer.codes) for layer in model.layers], dtype="<u4").tobytes()]
    for layer, spec in zip(model.layers, specs):
        _validate_layer(layer, spec, code_bits)
        parts.append(np.asarray(layer.codebook, dtype="<f4").tobytes())
        parts.append(np.asarray(layer.bias, dtype="<f4").tobytes())
        codes = np.asarray(layer.codes, dtype=np.uint8)
        parts.append((_pack_nibbles(codes) if code_bits == 4 else codes).tobytes())
        parts.append(_pack_nibbles(layer.rel).tobytes())
    return b"".join(parts)
