"""Random Fire layers in the golden model's terms, shared by the block tests and the cocotb suite.

Everything here builds *inputs*; expected outputs always come from ``golden.fixed``.
"""

import numpy as np

from golden.codec import encode_positions
from golden.fixed import QConv
from golden.network import Conv


def sparse_stream(dense_codes):
    """(codes, rel) for a flat array of codes (0 = pruned), fillers every 16 as the file does."""
    positions = np.flatnonzero(dense_codes)
    return encode_positions(positions, np.asarray(dense_codes)[positions])


def random_qconv(rng, spec, *, density=0.4, code_bits=8, weight_bits=16, shift=None,
                 extreme=False, in_frac=0):
    """A QConv with random sparse codes, a random codebook and random biases."""
    n = spec.weight_count
    dense = np.where(rng.random(n) < density, rng.integers(1, 1 << code_bits, n), 0)
    codes, rel = sparse_stream(dense)
    lo, hi = -(1 << (weight_bits - 1)), (1 << (weight_bits - 1)) - 1
    if extreme:
        codebook = rng.choice([lo, hi], 1 << code_bits).astype(np.int64)
        bias = rng.choice([-(1 << 31), (1 << 31) - 1, 0], spec.out_channels).astype(np.int64)
    else:
        codebook = rng.integers(lo // 8, hi // 8, 1 << code_bits).astype(np.int64)
        bias = rng.integers(-(1 << 20), 1 << 20, spec.out_channels).astype(np.int64)
    codebook[0] = 0
    if shift is None:
        shift = int(rng.integers(6, 14))
    return QConv(spec=spec, codebook=codebook, codes=codes, rel=rel, bias=bias, shift=shift,
                 w_frac=shift, in_frac=in_frac, out_frac=0, weight_bits=weight_bits)


def random_fire(rng, name, cin, csq, e1, e3, **kwargs):
    """(squeeze, expand1x1, expand3x3) QConvs of a random Fire layer."""
    sq = random_qconv(rng, Conv(f"{name}/conv1x1_1", csq, cin, 1), **kwargs)
    ex1 = random_qconv(rng, Conv(f"{name}/conv1x1_2", e1, csq, 1), **kwargs)
    ex3 = random_qconv(rng, Conv(f"{name}/conv3x3_2", e3, csq, 3, pad=1), **kwargs)
    return sq, ex1, ex3
