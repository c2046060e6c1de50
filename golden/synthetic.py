"""Embedded default model: a synthetic compressed SqueezeNet (v1.0, or v1.1) that needs no
external file.

The real pretrained weights live outside the repository (``../shared``), but simulations, the
hardware generator and the tests need a full-size model everywhere. This one has the real
model's shapes and per-layer densities, random positions and codes, and one codebook per layer
scaled He-style (variance 1 / (density * fan_in)), so activations neither explode nor vanish
through the 26 layers.
It is built with :func:`golden.codec.compress_layer`, so it exercises the same format (fillers
included) as the real file. Its outputs mean nothing; it is test data.

Command line: ``python -m golden.synthetic OUT.net [--seed 2017] [--code-bits 8]``.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import sys
from pathlib import Path

import numpy as np

from golden.codec import (MAX_CODE_BITS, MIN_CODE_BITS, CompressedModel, check_code_bits,
                          compress_layer, decode, encode)
from golden.network import conv_layers, squeezenet

__all__ = ["DEFAULT_SEED", "REAL_DENSITIES", "VERSIONS", "synthetic_squeezenet",
           "synthetic_squeezenet_bytes", "synthetic_model", "synthetic_model_bytes", "main"]

#: The SqueezeNet versions a synthetic model can have.
VERSIONS = ("1.0", "1.1")

DEFAULT_SEED = 2017

#: Density (non-zero / dense weights) of each layer of the real model, in file order, as printed
#: in the table of ``../shared/models/squeezenet_v1_0_deep_compression/README.md``. A v1.1 model
#: (same layer names) gets the same densities.
REAL_DENSITIES = {
    "conv1": 0.985,
    "fire2/conv1x1_1": 0.995, "fire2/conv1x1_2": 0.996, "fire2/conv3x3_2": 0.330,
    "fire3/conv1x1_1": 0.995, "fire3/conv1x1_2": 0.999, "fire3/conv3x3_2": 0.330,
    "fire4/conv1x1_1": 0.997, "fire4/conv1x1_2": 0.994, "fire4/conv3x3_2": 0.330,
    "fire5/conv1x1_1": 0.996, "fire5/conv1x1_2": 0.993, "fire5/conv3x3_2": 0.330,
    "fire6/conv1x1_1": 0.990, "fire6/conv1x1_2": 0.499, "fire6/conv3x3_2": 0.329,
    "fire7/conv1x1_1": 0.499, "fire7/conv1x1_2": 0.991, "fire7/conv3x3_2": 0.330,
    "fire8/conv1x1_1": 0.992, "fire8/conv1x1_2": 0.500, "fire8/conv3x3_2": 0.299,
    "fire9/conv1x1_1": 0.500, "fire9/conv1x1_2": 0.995, "fire9/conv3x3_2": 0.300,
    "conv_final": 0.200,
}

# Bias spread; small next to the weighted sums so that the weights dominate every activation.
_BIAS_STD = 0.01
# Variance gain of the He-style scaling. He's factor 2 (which undoes ReLU's halving of the
# second moment) makes the RMS activation grow about 130x from conv1 to conv_final here, because
# the three max-pools and the positive mean of post-ReLU inputs add to it; with gain 1, measured
# on uniform inputs of RMS 72, every layer's output RMS stays between 10 and 120.
_GAIN = 1.0


def _codebook(rng, code_bits, std):
    """Entry 0 = 0.0, the rest distinct non-zero float32 values whose RMS is ``std``."""
    size = (1 << code_bits) - 1
    while True:  # a zero or a repeat is astronomically unlikely, but either would break the codec
        values = rng.normal(0.0, 1.0, size)
        values *= std / np.sqrt(np.mean(values ** 2))
        values = values.astype(np.float32)
        if np.all(values != 0) and len(np.unique(values)) == size:
            return np.concatenate([np.zeros(1, np.float32), values])


def synthetic_squeezenet_bytes(seed=DEFAULT_SEED, code_bits=8, version="1.0"):
    """``.net`` bytes of :func:`synthetic_squeezenet`.

    Cached: bytes are immutable, so sharing them between callers is safe (unlike the model's
    arrays), and every ``load(None)`` after the first costs only a decode.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"Seed must be an integer, not {seed!r}")
    # Normalised before the cache so that equal arguments spelled differently share one entry.
    squeezenet(version)       # checks it
    return _generate(int(seed), check_code_bits(code_bits), version)


@functools.lru_cache(maxsize=None)
def _generate(seed, code_bits, version):
    return _encode_synthetic(squeezenet(version), seed, code_bits)


def _encode_synthetic(network, seed, code_bits):
    """``.net`` bytes of random layers shaped like ``network`` at the real model's densities
    (looked up by layer name in :data:`REAL_DENSITIES`)."""
    rng = np.random.default_rng(seed)
    layers = []
    for spec in conv_layers(network):
        density = REAL_DENSITIES[spec.name]
        count = spec.weight_count
        nonzero = int(round(density * count))
        fan_in = spec.in_channels * spec.kernel * spec.kernel
        # He-style: the variance is inversely proportional to the number of weights that feed
        # each output, which after pruning is only ``density * fan_in``.
        std = np.sqrt(_GAIN / (fan_in * density))
        codebook = _codebook(rng, code_bits, std)
        bias = rng.normal(0.0, _BIAS_STD, spec.out_channels).astype(np.float32)
        positions = rng.choice(count, size=nonzero, replace=False)
        codes = rng.integers(1, 1 << code_bits, size=nonzero)
        weights = np.zeros(count, dtype=np.float32)
        weights[positions] = codebook[codes]
        layers.append(compress_layer(spec, weights.reshape(spec.weight_shape), bias, codebook,
                                     code_bits))
    return encode(CompressedModel(network, layers, code_bits))


def synthetic_model_bytes(network, seed=DEFAULT_SEED, code_bits=8):
    """``.net`` bytes of :func:`synthetic_model` (not cached: design-space networks are many
    and large)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"Seed must be an integer, not {seed!r}")
    missing = [spec.name for spec in conv_layers(network) if spec.name not in REAL_DENSITIES]
    if missing:
        raise ValueError(f"no real-model density for layer {', '.join(missing)}: a synthetic "
                         f"model needs SqueezeNet's layer names")
    return _encode_synthetic(tuple(network), int(seed), check_code_bits(code_bits))


def synthetic_model(network, seed=DEFAULT_SEED, code_bits=8):
    """A synthetic compressed model of any SqueezeNet-like ``network`` (for example one of
    :func:`golden.network.from_metaparameters`), each layer at the density the real model's
    layer of the same name has.

    For ``squeezenet("1.0")`` it is the same model as :func:`synthetic_squeezenet`.

    Parameters
    ----------
    network : tuple
        Operations from :mod:`golden.network`; its convolutions must carry SqueezeNet's layer
        names (``conv1``, ``fire2/conv1x1_1``, ..., ``conv_final``).
    seed : int, optional
    code_bits : int, optional
        Code width 4..8.

    Returns
    -------
    CompressedModel

    Raises
    ------
    TypeError
        For a seed that is not an integer.
    ValueError
        For a layer name without a real-model density, or a code width outside 4..8.
    """
    data = synthetic_model_bytes(network, seed, code_bits)
    return decode(data, tuple(network), code_bits)


def synthetic_squeezenet(seed=DEFAULT_SEED, code_bits=8, version="1.0"):
    """A deterministic synthetic compressed SqueezeNet (v1.0 unless ``version`` is "1.1").

    Parameters
    ----------
    seed : int, optional
        Seed of ``numpy.random.default_rng``; the same seed and ``code_bits`` always give the
        same bytes.
    code_bits : int, optional
        Code width 4..8; the codebooks have ``2**code_bits`` entries.
    version : str, optional
        "1.0" or "1.1" (:data:`VERSIONS`).

    Returns
    -------
    CompressedModel
        A fresh object each call (decoded from cached bytes), so callers may modify it.
    """
    data = synthetic_squeezenet_bytes(seed, code_bits, version)
    return decode(data, squeezenet(version), code_bits)


def main(argv=None):
    """Write the synthetic model as a ``.net`` file; returns the exit status (2 on error)."""
    parser = argparse.ArgumentParser(prog="python -m golden.synthetic",
                                     description="Write the embedded synthetic SqueezeNet "
                                                 "in the Deep Compression .net format.")
    parser.add_argument("out", help="output .net file")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--code-bits", type=int, default=8,
                        choices=range(MIN_CODE_BITS, MAX_CODE_BITS + 1), metavar="{4..8}")
    parser.add_argument("--version", choices=VERSIONS, default="1.0",
                        help="SqueezeNet version (default 1.0)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse exits; a caller of main() wants a status instead
        return int(exit_.code or 0)
    data = synthetic_squeezenet_bytes(args.seed, args.code_bits, args.version)
    try:
        Path(args.out).write_bytes(data)
    except OSError as err:
        print(f"error: cannot write {args.out}: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}, "
          f"seed {args.seed}, {args.code_bits}-bit codes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
