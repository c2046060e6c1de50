"""Reading ``.net`` files: :func:`decode` validates every block against the network and says
which layer and byte offset is wrong; :func:`load` reads a file or gives the synthetic model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from golden.network import conv_layers, squeezenet, squeezenet_v1_0

from .entries import _code_bytes, _nibble_bytes, _unpack_nibbles, check_code_bits, entry_positions
from .model import CompressedLayer, CompressedModel

__all__ = ["CodecError", "decode", "load"]

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
    TypeError
        If ``code_bits`` is not an integer.
    ValueError
        If ``code_bits`` is outside 4..8 or the network has no convolution.
    """
    code_bits = check_code_bits(code_bits)
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

    offset = header_size
    layers = []
    for index in range(len(specs)):
        layer, offset = _decode_layer(buf, offset, index, specs, int(counts[index]), code_bits)
        layers.append(layer)

    if offset != size:
        raise CodecError(
            f"after the last layer {specs[-1].name!r} (#{len(specs) - 1} of {len(specs)}), "
            f"byte offset {offset}: {size - offset} trailing bytes (the {len(specs)} layers end "
            f"here, the file is {size} bytes)",
            layer=specs[-1].name, offset=offset)
    return CompressedModel(network, layers, code_bits)


def _decode_layer(buf, offset, index, specs, entries, code_bits):
    """(CompressedLayer, offset after it) of layer ``index`` at byte ``offset``."""
    spec = specs[index]
    size = len(buf)
    code_limit = 1 << code_bits
    label = _layer_label(index, specs)

    def need(block, nbytes, start):
        if start + nbytes > size:
            raise CodecError(
                f"{label}, byte offset {start}: file truncated in the {block} block: it "
                f"needs {nbytes} bytes from here, only {size - start} remain",
                layer=spec.name, offset=start)

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
        positions = entry_positions(rel)
        j = int(np.searchsorted(positions, spec.weight_count))
        raise CodecError(
            f"{label}, byte offset {offset + j // 2}: entries run past the layer's "
            f"{spec.weight_count} weights: entry {j} of {entries} lands on flat index "
            f"{int(positions[j])}",
            layer=spec.name, offset=offset + j // 2)
    offset += nbytes

    return CompressedLayer(spec, codebook, bias, codes, rel), offset


def load(path=None, code_bits=8, version="1.0"):
    """Decode a ``.net`` file as SqueezeNet v1.0 (or v1.1), or return the embedded synthetic
    model of that version.

    Parameters
    ----------
    path : str or Path, optional
        ``None`` gives :func:`golden.synthetic.synthetic_squeezenet` with ``code_bits``
        (deterministic, no file needed); pass :data:`SHARED_MODEL_PATH` for the real weights.
    code_bits : int, optional
    version : str, optional
        "1.0" (the Deep Compression file's network) or "1.1".

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    CodecError
        If the file is malformed; the message starts with the path.
    """
    code_bits = check_code_bits(code_bits)
    if path is None:
        from golden.synthetic import synthetic_squeezenet  # late: synthetic imports this module
        return synthetic_squeezenet(code_bits=code_bits, version=version)
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"compressed model not found: {path}"
                                + (" (a directory)" if path.is_dir() else ""))
    data = path.read_bytes()
    try:
        return decode(data, squeezenet(version), code_bits=code_bits)
    except CodecError as err:
        raise CodecError(f"{path}: {err}", layer=err.layer, offset=err.offset) from err
