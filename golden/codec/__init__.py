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

The package: :mod:`~golden.codec.entries` (code widths, entry positions and fillers),
:mod:`~golden.codec.model` (layers, models, :func:`encode`), :mod:`~golden.codec.reader`
(:func:`decode`, :func:`load`), :mod:`~golden.codec.compress` (:func:`compress_layer`) and
:mod:`~golden.codec.cli`; every public name is importable from ``golden.codec``.
"""

from __future__ import annotations

from pathlib import Path

from .cli import main
from .compress import compress_layer
from .entries import (FILE_VALUE_BITS, MAX_CODE_BITS, MAX_GAP, MIN_CODE_BITS, REL_BITS,
                      check_code_bits, encode_positions, entry_positions)
from .model import CompressedLayer, CompressedModel, encode
from .reader import CodecError, decode, load

__all__ = [
    "CodecError", "CompressedLayer", "CompressedModel", "decode", "encode", "compress_layer",
    "load", "main", "SHARED_MODEL_PATH", "MIN_CODE_BITS", "MAX_CODE_BITS", "REL_BITS",
    "MAX_GAP", "FILE_VALUE_BITS", "entry_positions", "encode_positions", "check_code_bits",
]

#: The real model, in the sibling ``shared`` checkout next to the repository root.
SHARED_MODEL_PATH = (Path(__file__).resolve().parents[3] / "shared" / "models"
                     / "squeezenet_v1_0_deep_compression" / "compressed_SqueezeNet.net")
