"""Deep Compression ``.net`` codec: sparse, weight-shared convolution layers.

The format (see ``../shared/models/squeezenet_v1_0_deep_compression/README.md``) is, all values
little-endian:

1. a header of one ``uint32`` entry count ``N_i`` per convolution layer, in
   :func:`golden.network.conv_layers` order;
2. for each layer, four back-to-back blocks with no padding between them:

   - codebook: ``2**code_bits`` ``float32``; entry 0 is 0.0;
   - bias: ``out_channels`` ``float32``;
   - codes: ``N_i`` codebook indices, one byte each for 5..8-bit codes, or two per byte for
     4-bit codes (low nibble = even entry);
   - relative indices: ``(N_i + 1) // 2`` bytes, one nibble ``r_j`` per entry (low nibble =
     even entry); ``r_j`` is the gap minus one from the previous entry, so the flat
     row-major ``(out, in, kh, kw)`` position of entry ``j`` is ``cumsum(r + 1)[j] - 1``.

A gap longer than 16 cannot be expressed in one nibble, so it is bridged by *filler* entries
(nibble 15, code 0, hence weight 0.0) every 16 positions. The real file uses 8-bit codes;
widths 4..8 are supported because the hardware stores codes of a configurable width.

The file has no magic number, no layer count and no trailer, so a decoder can only validate it
against a network: every block size follows from the header and the network's layer shapes,
and the file must end exactly where the last layer ends.

Command line: ``python -m golden.codec info [PATH] [--code-bits 8] [--verify-roundtrip]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from golden.network import Conv, conv_layers, squeezenet_v1_0

__all__ = [
    "CodecError", "CompressedLayer", "CompressedModel", "decode", "encode", "compress_layer",
    "load", "main", "SHARED_MODEL_PATH", "MIN_CODE_BITS", "MAX_CODE_BITS", "REL_BITS",
    "MAX_GAP",
]

#: The real model, in the sibling ``shared`` checkout next to the repository root.
SHARED_MODEL_PATH = (Path(__file__).resolve().parent.parent.parent / "shared" / "models"
                     / "squeezenet_v1_0_deep_compression" / "compressed_SqueezeNet.net")

MIN_CODE_BITS = 4
MAX_CODE_BITS = 8
#: Width of one relative index; it is fixed by the format.
REL_BITS = 4
#: Largest distance between two consecutive entries that one nibble can express.
MAX_GAP = 1 << REL_BITS
#: Width of one codebook entry and of one bias in the file (float32).
FILE_VALUE_BITS = 32

# A codebook starts with 0.0; as a uint32 word that is +0.0 or -0.0. The layer-count diagnosis
# looks for this word to find where the header really ends.
_ZERO_FLOAT_WORDS = (0x00000000, 0x80000000)
# Entry counts above this are not entry counts but (float) codebook bytes; 2**26 entries would
# already be a 64 M-weight layer, far beyond any network this project targets.
_PLAUSIBLE_MAX_COUNT = 1 << 26
# How far the layer-count diagnosis scans for the end of the header (in words past the
# network's own header length); enough for networks with many more layers.
_HEADER_SCAN_EXTRA = 4096


class CodecError(ValueError):
    """A ``.net`` file that does not match the format or the network.

    The message is one line naming the layer and the byte offset; both are also kept as
    attributes (``layer`` is ``None`` when no layer applies, ``offset`` is ``None`` when no
    byte offset applies).
    """

    def __init__(self, message, *, layer=None, offset=None):
        super().__init__(message)
        self.layer = layer
        self.offset = offset


def _check_code_bits(code_bits):
    """Return ``code_bits`` as an int, or raise ValueError if the hardware cannot store it."""
    if (isinstance(code_bits, bool) or not isinstance(code_bits, (int, np.integer))
            or not MIN_CODE_BITS <= code_bits <= MAX_CODE_BITS):
        raise ValueError(f"code_bits must be an integer from {MIN_CODE_BITS} to {MAX_CODE_BITS},"
                         f" not {code_bits!r}")
    return int(code_bits)


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
        return np.cumsum(self.rel.astype(np.int64) + 1) - 1

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
        code_bits = _check_code_bits(code_bits)
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


def _layer_label(index, specs):
    return f"layer {specs[index].name!r} (#{index} of {len(specs)})"


def _diagnose_layer_count(buf, specs):
    """Raise CodecError if the header evidently holds a different number of counts than ``specs``.

    The format has no layer count, so a file for another network (or a network argument that
    does not match the file) would otherwise surface as a confusing codebook or size error.
    The header is taken to end at the first word that reads as the 0.0 opening a codebook,
    provided every word before it is a plausible entry count.
    """
    count = len(specs)
    words = np.frombuffer(buf, dtype="<u4", count=min(len(buf) // 4, count + _HEADER_SCAN_EXTRA))
    if len(words) > count and int(words[count]) in _ZERO_FLOAT_WORDS:
        return  # a codebook starts right after a header of the network's length
    zero = np.isin(words, _ZERO_FLOAT_WORDS)
    implausible = words > _PLAUSIBLE_MAX_COUNT
    first_zero = int(np.argmax(zero)) if zero.any() else None
    if first_zero is None or first_zero == 0:
        return
    if implausible[:first_zero].any():
        return  # the zero word lies beyond float data, so it says nothing about the header
    header_len = first_zero
    if header_len < count:
        weight_counts = np.array([spec.weight_count for spec in specs[:header_len]])
        if (words[:header_len] > weight_counts).any():
            return
        raise CodecError(
            f"{_layer_label(header_len, specs)}, byte offset {4 * header_len}: layer count "
            f"mismatch: the header holds {header_len} entry counts (a codebook starting with "
            f"0.0 follows at this offset) but the network has {count} conv layers, so this "
            f"layer has no entry in the file",
            layer=specs[header_len].name, offset=4 * header_len)
    raise CodecError(
        f"after the last layer {specs[-1].name!r} (#{count - 1} of {count}), byte offset "
        f"{4 * count}: layer count mismatch: the header holds {header_len} entry counts (a "
        f"codebook starting with 0.0 follows at byte offset {4 * header_len}) but the network "
        f"has only {count} conv layers",
        layer=specs[-1].name, offset=4 * count)


def decode(data, network=None, code_bits=8):
    """Parse a ``.net`` file.

    Parameters
    ----------
    data : bytes-like
        The whole file.
    network : tuple, optional
        Topology from :mod:`golden.network`; default ``squeezenet_v1_0()``. It fixes the
        number of layers and each layer's weight and bias sizes.
    code_bits : int, optional
        Code width the file was written with, 4..8 (the real file: 8).

    Returns
    -------
    CompressedModel
        Owns copies of all arrays (nothing refers back to ``data``).

    Raises
    ------
    CodecError
        If the file does not fit the format and the network; the message names the layer and
        the byte offset. Code-0 entries that are not fillers and a non-zero padding nibble are
        accepted (the latter is written back as 0, so such a file does not re-encode to the
        same bytes).
    ValueError
        If ``code_bits`` is outside 4..8 or the network has no convolution.
    """
    code_bits = _check_code_bits(code_bits)
    network = squeezenet_v1_0() if network is None else tuple(network)
    specs = conv_layers(network)
    if not specs:
        raise ValueError("the network has no convolution layers to decode")
    buf = bytes(data)
    size = len(buf)
    header_size = 4 * len(specs)

    if size < header_size:
        cut = size // 4
        raise CodecError(
            f"{_layer_label(cut, specs)}, byte offset {size}: file truncated in the header: "
            f"this layer's entry count needs bytes {4 * cut}..{4 * cut + 3}, the header needs "
            f"{header_size} bytes for {len(specs)} layers, the file has {size}",
            layer=specs[cut].name, offset=size)
    _diagnose_layer_count(buf, specs)
    counts = np.frombuffer(buf, dtype="<u4", count=len(specs)).astype(np.int64)

    code_limit = 1 << code_bits
    offset = header_size
    layers = []
    for index, spec in enumerate(specs):
        label = _layer_label(index, specs)

        def need(block, nbytes, start):
            if start + nbytes > size:
                raise CodecError(
                    f"{label}, byte offset {start}: file truncated in the {block} block: it "
                    f"needs {nbytes} bytes from here, only {size - start} remain",
                    layer=spec.name, offset=start)

        entries = int(counts[index])
        if entries > spec.weight_count:
            raise CodecError(
                f"{label}, byte offset {4 * index}: entry count {entries} in the header exceeds "
                f"the layer's {spec.weight_count} weights (every entry advances at least one "
                f"weight), so its entries would run past the layer",
                layer=spec.name, offset=4 * index)

        nbytes = 4 << code_bits
        need("codebook", nbytes, offset)
        codebook = np.frombuffer(buf, dtype="<f4", count=code_limit, offset=offset)
        codebook = codebook.astype(np.float32)
        if not codebook[0] == 0.0:  # written so that NaN is rejected too
            raise CodecError(
                f"{label}, byte offset {offset}: codebook entry 0 is {float(codebook[0])!r}, "
                f"not 0.0 (code 0 must mean weight 0 for the filler entries)",
                layer=spec.name, offset=offset)
        offset += nbytes

        nbytes = 4 * spec.out_channels
        need("bias", nbytes, offset)
        bias = np.frombuffer(buf, dtype="<f4", count=spec.out_channels, offset=offset)
        bias = bias.astype(np.float32)
        offset += nbytes

        nbytes = _code_bytes(entries, code_bits)
        need("codes", nbytes, offset)
        raw = np.frombuffer(buf, dtype=np.uint8, count=nbytes, offset=offset)
        if code_bits == 4:
            codes = _unpack_nibbles(raw, entries)  # a 4-bit nibble cannot exceed the codebook
        else:
            codes = raw.copy()
            bad = np.flatnonzero(codes >= code_limit)
            if len(bad):
                j = int(bad[0])
                raise CodecError(
                    f"{label}, byte offset {offset + j}: entry {j} has code {int(codes[j])}, "
                    f"outside the {code_limit}-entry codebook of {code_bits}-bit codes",
                    layer=spec.name, offset=offset + j)
        offset += nbytes

        nbytes = _nibble_bytes(entries)
        need("relative-index", nbytes, offset)
        rel = _unpack_nibbles(np.frombuffer(buf, dtype=np.uint8, count=nbytes, offset=offset),
                              entries)
        end = int(rel.sum(dtype=np.int64)) + entries  # one past the last entry's position
        if end > spec.weight_count:
            positions = np.cumsum(rel.astype(np.int64) + 1) - 1
            j = int(np.searchsorted(positions, spec.weight_count))
            raise CodecError(
                f"{label}, byte offset {offset + j // 2}: entries run past the layer's "
                f"{spec.weight_count} weights: entry {j} of {entries} lands on flat index "
                f"{int(positions[j])}",
                layer=spec.name, offset=offset + j // 2)
        offset += nbytes

        layers.append(CompressedLayer(spec, codebook, bias, codes, rel))

    if offset != size:
        raise CodecError(
            f"after the last layer {specs[-1].name!r} (#{len(specs) - 1} of {len(specs)}), "
            f"byte offset {offset}: {size - offset} trailing bytes (the {len(specs)} layers end "
            f"here, the file is {size} bytes)",
            layer=specs[-1].name, offset=offset)
    return CompressedModel(network, layers, code_bits)


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
    code_bits = _check_code_bits(model.code_bits)
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
    ValueError
        Naming the layer, for a shape mismatch, a bad codebook, or a weight not in the codebook.
    """
    code_bits = _check_code_bits(code_bits)
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
    nz_codes = order[slot].astype(np.uint8)

    gaps = np.diff(nz_pos, prepend=-1)
    fillers_before = (gaps - 1) // MAX_GAP
    total = len(nz_pos) + int(fillers_before.sum())
    # Fillers are nibble 15, code 0, so start from that and drop the real entries into place.
    codes = np.zeros(total, dtype=np.uint8)
    rel = np.full(total, MAX_GAP - 1, dtype=np.uint8)
    slots = np.arange(len(nz_pos)) + np.cumsum(fillers_before)
    codes[slots] = nz_codes
    rel[slots] = (gaps - 1) % MAX_GAP
    return CompressedLayer(spec, codebook, bias, codes, rel)


def load(path=None, code_bits=8):
    """Decode a ``.net`` file as SqueezeNet v1.0, or return the embedded synthetic model.

    Parameters
    ----------
    path : str or Path, optional
        ``None`` gives :func:`golden.synthetic.synthetic_squeezenet` with ``code_bits``
        (deterministic, no file needed); pass :data:`SHARED_MODEL_PATH` for the real weights.
    code_bits : int, optional

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CodecError
        If the file is malformed; the message starts with the path.
    """
    code_bits = _check_code_bits(code_bits)
    if path is None:
        from golden.synthetic import synthetic_squeezenet  # late: synthetic imports this module
        return synthetic_squeezenet(code_bits=code_bits)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"compressed model not found: {path}"
                                + (" (a directory)" if path.is_dir() else ""))
    data = path.read_bytes()
    try:
        return decode(data, code_bits=code_bits)
    except CodecError as err:
        raise CodecError(f"{path}: {err}", layer=err.layer, offset=err.offset) from err


def _block_at(model, offset):
    """Describe which block of which layer holds byte ``offset`` of ``encode(model)``."""
    position = 4 * len(model.layers)
    if offset < position:
        return f"header, entry count of layer {model.layers[offset // 4].name!r}"
    for layer in model.layers:
        for block, nbytes in (("codebook", 4 * len(layer.codebook)), ("bias", 4 * len(layer.bias)),
                              ("codes", _code_bytes(layer.entries, model.code_bits)),
                              ("relative-index", _nibble_bytes(layer.entries))):
            if offset < position + nbytes:
                return f"layer {layer.name!r}, {block} block"
            position += nbytes
    return "past the end of the re-encoded file"


def _first_difference(a, b):
    """Index of the first differing byte, or None if ``a == b``."""
    if a == b:
        return None
    common = min(len(a), len(b))
    diff = np.flatnonzero(np.frombuffer(a, np.uint8, common) != np.frombuffer(b, np.uint8, common))
    return int(diff[0]) if len(diff) else common


def _info(args, out):
    if args.path is None:
        from golden.synthetic import DEFAULT_SEED, synthetic_squeezenet_bytes
        data = synthetic_squeezenet_bytes(code_bits=args.code_bits)
        source = (f"embedded default model (no PATH given): synthetic SqueezeNet v1.0, "
                  f"seed {DEFAULT_SEED}, random weights with the real model's densities")
    else:
        path = Path(args.path)
        if not path.is_file():
            raise FileNotFoundError(f"compressed model not found: {path}")
        data = path.read_bytes()
        source = str(path)
    try:
        model = decode(data, code_bits=args.code_bits)
    except CodecError as err:
        raise CodecError(f"{source if args.path else 'embedded model'}: {err}") from err

    bits = model.code_bits
    print(f"model: {source}", file=out)
    print(f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}, {bits}-bit codes",
          file=out)
    header = (f"{'layer':<18} {'weight shape':<14} {'entries':>9} {'fillers':>8} "
              f"{'non-zero':>9} {'dense':>9} {'density':>7} {'storage bits':>13}")
    print(header, file=out)
    print("-" * len(header), file=out)
    for layer in model.layers:
        shape = "x".join(str(d) for d in layer.spec.weight_shape)
        print(f"{layer.name:<18} {shape:<14} {layer.entries:>9,} {layer.fillers:>8,} "
              f"{layer.nonzero:>9,} {layer.spec.weight_count:>9,} {layer.density:>7.3f} "
              f"{layer.storage_bits(bits):>13,}", file=out)
    print("-" * len(header), file=out)
    dense = sum(layer.spec.weight_count for layer in model.layers)
    print(f"{'total':<18} {'':<14} {model.entries:>9,} {model.fillers:>8,} {model.nonzero:>9,} "
          f"{dense:>9,} {model.nonzero / dense:>7.3f} {model.storage_bits():>13,}", file=out)
    entry_bits = model.entries * (bits + REL_BITS)
    print(f"storage bits = entries {entry_bits:,} ({model.entries:,} x ({bits} code + "
          f"{REL_BITS} index) = {entry_bits / 1e6:.2f} Mbit) + float32 codebooks and biases "
          f"{model.storage_bits() - entry_bits:,}", file=out)

    if args.verify_roundtrip:
        again = encode(model)
        at = _first_difference(data, again)
        if at is not None:
            print(f"roundtrip FAILED: first difference at byte offset {at} "
                  f"({_block_at(model, at)}); original {len(data)} bytes, re-encoded "
                  f"{len(again)} bytes", file=out)
            return 1
        print(f"roundtrip OK: re-encoding gives the identical {len(data)} bytes", file=out)
    return 0


def main(argv=None):
    """Command-line entry point; returns the exit status (0 ok, 1 roundtrip differs, 2 error)."""
    parser = argparse.ArgumentParser(prog="python -m golden.codec",
                                     description="Inspect Deep Compression .net files.")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="per-layer table of a .net file")
    info.add_argument("path", nargs="?", default=None,
                      help="the .net file (SqueezeNet v1.0 layout); omitted: the embedded "
                           "synthetic default model")
    info.add_argument("--code-bits", type=int, default=8, choices=range(MIN_CODE_BITS,
                                                                         MAX_CODE_BITS + 1),
                      metavar="{4..8}", help="code width of the file (default 8)")
    info.add_argument("--verify-roundtrip", action="store_true",
                      help="re-encode and exit 1 unless the bytes are identical")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits; a caller of main() wants a status instead
        return int(exit_.code or 0)
    try:
        return _info(args, sys.stdout)
    except BrokenPipeError:
        # The reader left (``| head``): not an error of the file. Point stdout at devnull so the
        # interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (CodecError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
