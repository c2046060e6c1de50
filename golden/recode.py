"""Recode a compressed model to narrower weight-sharing codes (8-bit -> 4..7-bit).

The SqueezeNet paper's Table 2 lists SqueezeNet + Deep Compression at 0.66 MB with 8-bit
weight sharing and 0.47 MB with 6-bit. The public file has 8-bit codes only; :func:`recode`
re-quantises it. Per layer, the non-zero codebook values in use are clustered, each weighted by
the number of entries that use it, into ``2**code_bits - 1`` clusters with 1-D weighted k-means
(:func:`weighted_kmeans_1d`); the new codebook is ``[0.0, sorted cluster centres]`` and every
entry's code becomes its value's cluster. Fillers keep code 0 and the relative indices are not
touched, so every entry stays where it was and a pruned weight stays exactly zero. Biases are
copied. A layer that uses no more distinct values than the new codebook holds keeps them exactly.

k-means details (all deterministic, NumPy only):

- Initialisation: linear in the value range (centres evenly spaced from the smallest to the
  largest value), as Deep Compression initialises its weight sharing: it keeps a centre near
  the rare large weights, which density-based (quantile) starts starve.
  ``init="quantile"`` uses weighted quantiles instead. On the real model and the 8
  calibration photographs (float32 logit SQNR against the 8-bit model), linear gives 26.4 /
  17.2 / 13.2 dB at 7 / 6 / 5 bits, quantile 21.7 / 13.6 / 11.0 dB.
- Lloyd iterations (assign to the nearest centre, ties to the lower one; move each centre to the
  weighted mean of its values) until no assignment changes.
- An empty cluster is re-seeded at the value with the largest weighted squared error (ties: the
  smallest value), which then forms a cluster of its own; with more distinct values than
  clusters such a value always exists, so the result has exactly ``k`` non-empty clusters.
- Clusters of sorted, distinct values are disjoint intervals, so the float32-rounded centres stay
  inside their intervals and are strictly increasing (distinct). A centre that rounds to 0.0 (a
  cluster straddling zero with mean exactly 0) becomes the smallest positive float32, still
  inside its interval, so no non-zero weight turns into code 0.

Codebook padding: a layer with fewer distinct values than ``2**code_bits - 1`` pads the codebook
with 0.0. The codec requires only entry 0 == 0.0 (:func:`golden.codec.compress_layer` ignores
extra zero entries), and zero padding does not move the fixed-point weight scale
(:func:`golden.calibrate.weight_frac` looks at the largest magnitude). Recoding to the input's
own width returns an identical copy (same bytes, so the stored fixed-point plans still match).

File size versus Table 2
------------------------
The real file holds 422,083 entries (415,921 non-zero weights plus 6,162 fillers), 26 codebooks
and 3,976 float32 biases: a 104-byte header, ``26 * 4 * 2**k`` bytes of codebooks, 15,904 of
biases, then the codes and relative indices. The codec writes 5..8-bit codes one per byte
(only 4-bit codes are packed two per byte), so from 8 down to 5 bits the file shrinks only by
the smaller codebooks: 675,763 bytes at 8 bits, 655,795 at 6, 439,768 at 4. Packed as the
hardware weight store holds them, an entry is ``k + 4`` bits (code plus relative index,
fillers included): at 8 bits 422,083 x 12 bits = 633,125 bytes, plus 42,528 of float32
codebooks and biases and the header, is 675,757 bytes = 0.676 MB (0.644 MiB; Table 2 says
0.66 MB); at 6 bits 422,083 x 10 bits = 527,604 bytes, plus 22,560 and the header, is 550,268
bytes = 0.550 MB (0.525 MiB). Table 2's 0.47 MB would be about 9.0 bits (9.5 if MiB) per
non-zero weight, less than the 6 code bits plus 4 index bits every entry here needs; reaching
it needs a stage this format does not have (e.g. Deep Compression's Huffman coding of codes
and indices), so it is not reproduced here. :func:`packed_bytes` gives the packed size.

Command line::

    python -m golden.recode [IN.net] OUT.net --code-bits 6 [--in-code-bits 8]
    python -m golden.recode [IN.net] --report [--json FILE]

``IN`` is a ``.net`` file, ``synthetic`` for the embedded synthetic model, or omitted for the real
model at :data:`golden.codec.SHARED_MODEL_PATH`. ``OUT`` is written whole (temporary file, then
rename); ``golden.codec.load(OUT, code_bits=6)`` reads it back. ``--report`` prints, for code
widths 8, 7, 6, 5 and 4: file size, packed weight-store size, and the fixed-point (16-bit
weights, each width's own calibrated plan) top-1 agreement, top-5 overlap and logit SQNR against
the float32 model at the input's own width, on :data:`golden.calibrate.CALIBRATION_IMAGES`
(about 10 s per width; progress on standard error). Bad input gives one ``error: ...`` line on
standard error and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from .codec import (MAX_CODE_BITS, MIN_CODE_BITS, REL_BITS, SHARED_MODEL_PATH, CodecError,
                    CompressedLayer, CompressedModel, check_code_bits, encode, load)

__all__ = ["INITS", "weighted_kmeans_1d", "recode_layer", "recode", "packed_bytes", "main"]

#: k-means initialisations :func:`weighted_kmeans_1d` knows.
INITS = ("linear", "quantile")

# Lloyd's algorithm on at most 255 distinct values converges in far fewer steps; the limit only
# guards against a cycle (which exact weighted means with lower-centre tie-breaks should not have).
_MAX_ITERATIONS = 10_000

_SMALLEST_POSITIVE = np.nextafter(np.float32(0), np.float32(1))


def _assign(values, centres):
    """Index of the nearest of the sorted ``centres`` for each sorted value (ties: lower)."""
    midpoints = (centres[1:] + centres[:-1]) / 2
    return np.searchsorted(midpoints, values, side="left")


def weighted_kmeans_1d(values, weights, k, init="linear"):
    """Cluster distinct 1-D values, each with a positive weight, into ``k`` clusters.

    Parameters
    ----------
    values : array_like of float
        Distinct values (any order).
    weights : array_like of float
        Positive weight of each value (here: how many entries use it).
    k : int
        Number of clusters, ``1 <= k < len(values)`` (with ``k >= len(values)`` every value is
        its own cluster).
    init : {"linear", "quantile"}
        Starting centres: evenly spaced over ``[min, max]``, or the weighted quantiles at
        ``(i + 0.5) / k``.

    Returns
    -------
    (centres, labels) : tuple of numpy.ndarray
        float64 centres, strictly increasing, the weighted mean of each (non-empty) cluster;
        int64 label of each value (same order as ``values``).

    Raises
    ------
    ValueError
        For values that are not distinct and finite, non-positive weights, ``k < 1`` or an
        unknown ``init``.
    """
    values = np.asarray(values, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    if values.ndim != 1 or values.shape != weights.shape or not len(values):
        raise ValueError(f"values {values.shape} and weights {weights.shape} must be non-empty "
                         f"1-D arrays of the same length")
    if not np.isfinite(values).all() or not np.isfinite(weights).all():
        raise ValueError("values and weights must be finite")
    if (weights <= 0).any():
        raise ValueError("weights must be positive")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"Cluster count must be a positive integer, not {k!r}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, not {init!r}")
    order = np.argsort(values, kind="stable")
    x, w = values[order], weights[order]
    if len(x) > 1 and (np.diff(x) == 0).any():
        raise ValueError("values must be distinct (sum the weights of repeated values)")
    labels = np.empty(len(x), dtype=np.int64)
    if k >= len(x):
        labels[order] = np.arange(len(x))
        return x.copy(), labels

    if init == "linear":
        centres = np.linspace(x[0], x[-1], k)
    else:
        cumulative = np.cumsum(w) - w / 2  # weighted mid-rank of each value
        centres = np.interp((np.arange(k) + 0.5) / k * w.sum(), cumulative, x)
    assign = None
    for _ in range(_MAX_ITERATIONS):
        new = _assign(x, centres)
        counts = np.bincount(new, minlength=k)
        while (counts == 0).any():
            # Re-seed the first empty cluster on the worst-served value; it then owns that value.
            error = w * (x - centres[new]) ** 2
            worst = int(np.argmax(error))  # first maximum = smallest value among ties
            centres[int(np.argmax(counts == 0))] = x[worst]
            centres = np.sort(centres)
            new = _assign(x, centres)
            counts = np.bincount(new, minlength=k)
        if assign is not None and np.array_equal(new, assign):
            break
        assign = new
        centres = (np.bincount(assign, weights=w * x, minlength=k)
                   / np.bincount(assign, weights=w, minlength=k))
    else:
        raise RuntimeError(f"weighted k-means did not converge in {_MAX_ITERATIONS} iterations")
    labels[order] = assign
    return centres, labels


def _float32_centres(centres):
    """float32 centres, strictly increasing and non-zero (see the module docstring)."""
    out = centres.astype(np.float32)
    out[out == 0] = _SMALLEST_POSITIVE
    if len(out) > 1 and not (np.diff(out) > 0).all():
        raise AssertionError("float32 cluster centres collided")  # impossible, see docstring
    return out


def recode_layer(layer, code_bits, init="linear"):
    """``layer`` with ``code_bits``-bit codes; see :func:`recode`."""
    size = 1 << code_bits
    codebook = np.asarray(layer.codebook, dtype=np.float32)
    codes = np.asarray(layer.codes).astype(np.int64)
    uses = np.bincount(codes, minlength=len(codebook))
    used = np.flatnonzero(uses)
    used = used[codebook[used] != 0]  # code 0, and any code whose value is 0.0, stay zero
    values, inverse = np.unique(codebook[used], return_inverse=True)
    weights = np.bincount(inverse, weights=uses[used], minlength=len(values))
    new_codebook = np.zeros(size, dtype=np.float32)
    old_to_new = np.zeros(len(codebook), dtype=np.uint8)
    if len(values):
        centres, labels = weighted_kmeans_1d(values, weights, size - 1, init)
        if len(values) <= size - 1:
            new_codebook[1:1 + len(values)] = values  # exact: no averaging needed
        else:
            new_codebook[1:] = _float32_centres(centres)
        old_to_new[used] = 1 + labels[inverse]
    return CompressedLayer(layer.spec, new_codebook, np.array(layer.bias, dtype=np.float32),
                           old_to_new[codes], np.array(layer.rel, dtype=np.uint8))


def recode(model, code_bits, init="linear"):
    """Re-quantise every layer of ``model`` to ``code_bits``-bit codes.

    Parameters
    ----------
    model : golden.codec.CompressedModel
    code_bits : int
        4..8. Equal to ``model.code_bits``: an identical copy.
    init : {"linear", "quantile"}
        k-means initialisation, see :func:`weighted_kmeans_1d`.

    Returns
    -------
    golden.codec.CompressedModel
        New arrays throughout; same network, biases and relative indices; each codebook
        ``[0.0, cluster centres (increasing)]``, padded with 0.0 when the layer has fewer
        distinct values.

    Raises
    ------
    TypeError
        If ``code_bits`` is not an integer.
    ValueError
        If ``code_bits`` is outside 4..8 or ``init`` is unknown.
    """
    code_bits = check_code_bits(code_bits)
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, not {init!r}")
    if code_bits == model.code_bits:
        layers = [CompressedLayer(l.spec, np.array(l.codebook, dtype=np.float32),
                                  np.array(l.bias, dtype=np.float32),
                                  np.array(l.codes, dtype=np.uint8),
                                  np.array(l.rel, dtype=np.uint8)) for l in model.layers]
    else:
        layers = [recode_layer(layer, code_bits, init) for layer in model.layers]
    return CompressedModel(model.network, layers, code_bits)


def packed_bytes(model):
    """Bytes of ``model`` with entries packed at ``code_bits + 4`` bits (the weight store's
    entry width), float32 codebooks and biases, and the 4-byte entry counts of the header."""
    entry_bits = model.entries * (model.code_bits + REL_BITS)
    values = sum(len(l.codebook) + len(l.bias) for l in model.layers)
    return 4 * len(model.layers) + -(-entry_bits // 8) + 4 * values


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not argparse's usage + message
        raise _UsageError(f"{message}; see python -m golden.recode --help")


def _parser():
    parser = _Parser(prog="python -m golden.recode",
                     description="Recode a Deep Compression .net model to fewer code bits.")
    parser.add_argument("paths", nargs="*", metavar="[IN] OUT",
                        help="input .net file, 'synthetic' for the embedded model, or omitted "
                             "for the real model; then the output file (not with --report)")
    parser.add_argument("--code-bits", type=int, help=f"output code width, {MIN_CODE_BITS}.."
                        f"{MAX_CODE_BITS}")
    parser.add_argument("--in-code-bits", type=int, default=8,
                        help="code width of the input file (default 8)")
    parser.add_argument("--init", choices=INITS, default="linear",
                        help="k-means initialisation (default linear)")
    parser.add_argument("--report", action="store_true",
                        help="print size and accuracy for code widths 8..4 instead of writing")
    parser.add_argument("--json", metavar="FILE", help="with --report: also write it as JSON")
    return parser


def _check_bits(value, option):
    if value is None or not MIN_CODE_BITS <= value <= MAX_CODE_BITS:
        given = "missing" if value is None else f"{value}"
        raise _UsageError(f"{option} {given}: pass {option} N with N from {MIN_CODE_BITS} to "
                          f"{MAX_CODE_BITS}")
    return value


def _load_input(source, code_bits):
    """(model, description) of the input argument; ``_UsageError`` naming the fix otherwise."""
    if source == "synthetic":
        return load(None, code_bits=code_bits), "embedded synthetic SqueezeNet v1.0"
    if source is None:
        if not SHARED_MODEL_PATH.is_file():
            raise _UsageError(f"no input given and the real model is not at {SHARED_MODEL_PATH}; "
                              f"pass IN.net or 'synthetic'")
        source = SHARED_MODEL_PATH
    try:
        return load(source, code_bits=code_bits), str(source)
    except (OSError, CodecError) as err:
        why = " ".join(str(err).split())
        raise _UsageError(f"cannot read input model: {why}; pass a SqueezeNet v1.0 .net file "
                          f"and its code width as --in-code-bits (now {code_bits}), or "
                          f"'synthetic'") from err


def _check_output(path, option):
    """``_UsageError`` unless ``path`` can become a file (checked before any slow work)."""
    path = Path(path)
    if path.is_dir():
        raise _UsageError(f"cannot write {option} {path}: it is a directory; pass a file name")
    if not path.parent.is_dir():
        raise _UsageError(f"cannot write {option} {path}: no directory {path.parent}; pass a "
                          f"file in an existing directory")
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise _UsageError(f"cannot write {option} {path}: permission denied; pass a file in a "
                          f"directory you can write")


def _write_whole(path, data, option):
    """Write ``data`` beside ``path`` under a temporary name, then rename it into place."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    except OSError as err:
        raise _UsageError(f"cannot write {option} {path}: {err.strerror or err}; pass a file in "
                          f"a directory you can write") from err
    finally:
        temp.unlink(missing_ok=True)


def _run(args):
    in_bits = _check_bits(args.in_code_bits, "--in-code-bits")
    if args.report:
        if len(args.paths) > 1:
            raise _UsageError(f"--report takes at most one path (the input), got "
                              f"{len(args.paths)}; drop OUT or drop --report")
        if args.code_bits is not None:
            raise _UsageError("--report covers code widths 8..4; drop --code-bits")
        if args.json:
            _check_output(args.json, "--json")
        model, source = _load_input(args.paths[0] if args.paths else None, in_bits)
        from .recode_report import format_report, report
        result = report(model, init=args.init)
        result["model"] = source
        text = format_report(result, source)
        sys.stdout.write(text)
        if args.json:
            _write_whole(args.json, (json.dumps(result, indent=2) + "\n").encode(), "--json")
        return 0
    if args.json:
        raise _UsageError("--json needs --report")
    if not args.paths or len(args.paths) > 2:
        raise _UsageError(f"expected [IN] OUT, got {len(args.paths)} paths; pass the output "
                          f".net file (and the input before it)")
    bits = _check_bits(args.code_bits, "--code-bits")
    source, out = (None, args.paths[0]) if len(args.paths) == 1 else args.paths
    _check_output(out, "output")
    model, description = _load_input(source, in_bits)
    data = encode(recode(model, bits, args.init))
    _write_whole(out, data, "output")
    print(f"wrote {out}: {description} recoded from {in_bits}-bit to {bits}-bit codes "
          f"({len(data):,} bytes; read it with golden.codec.load(PATH, "
          f"code_bits={bits}))", file=sys.stderr)
    return 0


def main(argv=None):
    """Command-line entry point; returns the exit status (0 ok, 2 bad arguments or input)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # --help
        return int(exit_.code or 0)
    except _UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        return _run(args)
    except _UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
