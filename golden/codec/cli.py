"""``python -m golden.codec info [PATH] [--code-bits 8] [--verify-roundtrip]``: a per-layer table
of a ``.net`` file, and a byte-exact re-encoding check."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

from .entries import MAX_CODE_BITS, MIN_CODE_BITS, REL_BITS, _code_bytes, _nibble_bytes
from .model import encode
from .reader import CodecError, decode

__all__ = ["main"]


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
