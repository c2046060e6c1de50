"""Tests of golden.fixed (the bit-exact datapath contract) and golden.calibrate.

Every integer operation is checked against an independent plain-Python implementation written
from the contract (Python ints, explicit loops, ``Fraction`` for rounding), on seeded random
tensors of several shapes and at the saturation extremes. The whole quantised network is
checked end to end on a tiny network built with the codec, and layer by layer at sampled
positions on the real model. Over 400 lines because each operation of the contract has its own
independent reference implementation here; the subject is one (the fixed-point contract).
"""

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from golden import calibrate as calibrate_mod
from golden import codec
from golden.codec import encode_positions
from golden.calibrate import activation_frac, calibrate, load_plan, weight_frac
from golden.fixed import (QConv, QuantPlan, conv1x1, conv3x3, conv7x7s2, conv_acc, fire,
                          global_sum, input_fracs, maxpool3x3s2, quantize, quantize_bias,
                          quantize_codebook, requantize, wrap_int32)
from golden.network import Conv, Fire, GlobalAvgPool, MaxPool, conv_layers
from golden.preprocess import BGR_MEAN, load_image, preprocess

REAL = codec.SHARED_MODEL_PATH
needs_real = pytest.mark.skipif(not REAL.exists(),
                                reason=f"real model not found at {REAL}: ../shared is absent")

INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1


# ----------------------------------------------------------------------------- references
# Written from the contract only, with Python ints: no numpy arithmetic, no code under test.


def ref_wrap(value):
    return ((value + 2 ** 31) % 2 ** 32) - 2 ** 31


def ref_requantize_one(acc, shift):
    # Round half up is floor(acc / 2**shift + 1/2), in exact rationals.
    y = math.floor(Fraction(int(acc), 2 ** shift) + Fraction(1, 2))
    return min(max(y, 0), 255)


def ref_conv_acc(x, w, bias, stride, pad):
    x, w = x.tolist(), w.tolist()
    bias = [int(b) for b in bias]
    channels, height, width = len(x), len(x[0]), len(x[0][0])
    out_channels, kernel = len(w), len(w[0][0])
    out_h = (height + 2 * pad - kernel) // stride + 1
    out_w = (width + 2 * pad - kernel) // stride + 1
    out = [[[0] * out_w for _ in range(out_h)] for _ in range(out_channels)]
    for o in range(out_channels):
        for oy in range(out_h):
            for ox in range(out_w):
                total = bias[o]
                for c in range(channels):
                    for ky in range(kernel):
                        for kx in range(kernel):
                            iy, ix = oy * stride + ky - pad, ox * stride + kx - pad
                            if 0 <= iy < height and 0 <= ix < width:
                                total += x[c][iy][ix] * w[o][c][ky][kx]
                out[o][oy][ox] = ref_wrap(total)
    return out


def ref_conv(x, w, bias, stride, pad, shift):
    acc = ref_conv_acc(x, w, bias, stride, pad)
    return np.array([[[ref_requantize_one(a, shift) for a in row] for row in plane]
                     for plane in acc], dtype=np.uint8)


def ref_decode(codebook, codes, rel, shape):
    """Dense weights by walking the entries one by one (gap = nibble + 1)."""
    dense = [0] * int(np.prod(shape))
    position = -1
    for code, r in zip(codes.tolist(), rel.tolist()):
        position += r + 1
        dense[position] = int(codebook[code])
    return np.array(dense, dtype=np.int64).reshape(shape)


def ref_maxpool(x):
    channels, height, width = x.shape
    out_h = math.ceil((height - 3) / 2) + 1
    out_w = math.ceil((width - 3) / 2) + 1
    out = np.zeros((channels, out_h, out_w), np.uint8)
    for c in range(channels):
        for oy in range(out_h):
            for ox in range(out_w):
                out[c, oy, ox] = max(int(x[c, y, xx])
                                     for y in range(2 * oy, min(2 * oy + 3, height))
                                     for xx in range(2 * ox, min(2 * ox + 3, width)))
    return out


def sparse_entries(rng, shape, density, code_bits=8):
    """(codes, rel) of a random sparse layer, fillers bridging gaps over 16 like the file."""
    n = int(np.prod(shape))
    dense = np.where(rng.random(n) < density, rng.integers(1, 2 ** code_bits, n), 0)
    positions = np.flatnonzero(dense)
    return encode_positions(positions, dense[positions])


def random_qconv(rng, spec, weight_bits=16, shift=8, density=0.6, extreme=False, out_frac=0):
    codes, rel = sparse_entries(rng, spec.weight_shape, density)
    half = 2 ** (weight_bits - 1)
    if extreme:
        codebook = rng.choice([-half, half - 1], 256).astype(np.int64)
        bias = rng.choice([INT32_MIN, INT32_MAX, 0], spec.out_channels).astype(np.int64)
    else:
        codebook = rng.integers(-half, half, 256).astype(np.int64)
        bias = rng.integers(-2 ** 24, 2 ** 24, spec.out_channels).astype(np.int64)
    codebook[0] = 0
    return QConv(spec=spec, codebook=codebook, codes=codes, rel=rel, bias=bias, shift=shift,
                 w_frac=shift + out_frac, in_frac=0, out_frac=out_frac, weight_bits=weight_bits)


# ----------------------------------------------------------------------------- single ops


def test_wrap_int32_hand_values():
    values = [0, INT32_MAX, INT32_MAX + 1, INT32_MIN, INT32_MIN - 1, 2 ** 32 + 5, -2 ** 33 - 7]
    np.testing.assert_array_equal(
        wrap_int32(values), [0, INT32_MAX, INT32_MIN, INT32_MIN, INT32_MAX, 5, -7])


def test_requantize_hand_values():
    # shift 0: ReLU and saturation only.
    np.testing.assert_array_equal(requantize(np.array([-1, 0, 1, 255, 256, INT32_MAX]), 0),
                                  [0, 0, 1, 255, 255, 255])
    # shift 1: halves round up (0.5 -> 1, 1.5 -> 2, -0.5 -> 0, -1.5 -> -1 -> ReLU 0).
    np.testing.assert_array_equal(requantize(np.array([1, 3, -1, -3, 510, 511]), 1),
                                  [1, 2, 0, 0, 255, 255])
    # shift 31: only |acc| >= 2**30 survives, and it rounds to 1.
    np.testing.assert_array_equal(
        requantize(np.array([2 ** 30 - 1, 2 ** 30, INT32_MAX, INT32_MIN]), 31), [0, 1, 1, 0])


@pytest.mark.parametrize("shift", [0, 1, 5, 12, 20, 30, 31])
def test_requantize_matches_reference(shift):
    rng = np.random.default_rng(shift)
    acc = rng.integers(INT32_MIN, INT32_MAX, 2000, endpoint=True).astype(np.int32)
    # Values near the rounding boundaries and the saturation limit of this shift.
    edges = np.array([k * 2 ** shift + d for k in (-1, 0, 1, 254, 255, 256)
                      for d in (-1, 0, 1, 2 ** max(shift - 1, 0))], dtype=np.int64)
    acc = np.concatenate([acc, np.clip(edges, INT32_MIN, INT32_MAX), [INT32_MIN, INT32_MAX]])
    expected = [ref_requantize_one(a, shift) for a in acc.tolist()]
    got = requantize(acc, shift)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("shift", [-1, 32])
def test_requantize_rejects_bad_shift(shift):
    with pytest.raises(ValueError, match="shift must be between 0 and 31"):
        requantize(np.zeros(3, np.int32), shift)


def test_requantize_rejects_unwrapped_and_float():
    with pytest.raises(ValueError, match="within int32"):
        requantize(np.array([2 ** 31]), 4)
    with pytest.raises(TypeError, match="integers"):
        requantize(np.array([1.0]), 4)
    with pytest.raises(TypeError, match="shift must be an integer"):
        requantize(np.array([1]), 2.0)


CONV_SHAPES = [
    # (C, H, W, O, kernel, stride, pad)
    (3, 5, 6, 4, 1, 1, 0),
    (5, 4, 4, 3, 1, 1, 1),
    (4, 6, 5, 5, 3, 1, 1),
    (2, 7, 7, 3, 3, 2, 0),
    (3, 13, 12, 2, 7, 2, 0),
    (1, 3, 3, 2, 3, 1, 1),
]


@pytest.mark.parametrize("shape", CONV_SHAPES)
def test_conv_acc_matches_reference(shape):
    channels, height, width, out_channels, kernel, stride, pad = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.integers(0, 256, (channels, height, width)).astype(np.uint8)
    w = rng.integers(-2 ** 15, 2 ** 15, (out_channels, channels, kernel, kernel))
    bias = rng.integers(-2 ** 24, 2 ** 24, out_channels)
    got = conv_acc(x, w, bias, stride, pad)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, ref_conv_acc(x, w, bias, stride, pad))


def test_conv_acc_wraps_like_a_32_bit_accumulator():
    # All-255 inputs against max-magnitude 18-bit weights: 255 * 2**17 * 72 ~ 2.4e9 > 2**31.
    rng = np.random.default_rng(7)
    x = np.full((8, 5, 5), 255, np.uint8)
    w = rng.choice([-2 ** 17, 2 ** 17 - 1], (4, 8, 3, 3))
    w[0] = 2 ** 17 - 1  # output channel 0: every product positive, the sum must overflow
    w[1] = -2 ** 17  # channel 1: every product negative
    bias = np.array([INT32_MAX, INT32_MIN, 0, 12345])
    exact_centre_0 = 255 * (2 ** 17 - 1) * 72 + INT32_MAX
    assert exact_centre_0 > INT32_MAX  # the case really wraps
    got = conv_acc(x, w, bias, 1, 1)
    np.testing.assert_array_equal(got, ref_conv_acc(x, w, bias, 1, 1))
    assert int(got[0, 2, 2]) == ref_wrap(exact_centre_0)


def test_conv_acc_exact_beyond_float64_range():
    # Products this large leave float64's exact range, so the integer path must take over.
    rng = np.random.default_rng(3)
    x = rng.integers(2 ** 30, 2 ** 31, (3, 4, 4), dtype=np.int64)
    w = rng.integers(-2 ** 20, 2 ** 20, (2, 3, 3, 3))
    bias = np.array([5, -5])
    np.testing.assert_array_equal(conv_acc(x, w, bias, 1, 1), ref_conv_acc(x, w, bias, 1, 1))


def test_conv_acc_rejects_bad_operands():
    x = np.zeros((3, 4, 4), np.uint8)
    with pytest.raises(ValueError, match="input channels"):
        conv_acc(x, np.zeros((2, 4, 1, 1), int), np.zeros(2, int))
    with pytest.raises(TypeError, match="weights must be integers"):
        conv_acc(x, np.zeros((2, 3, 1, 1)), np.zeros(2, int))
    with pytest.raises(ValueError, match="bias must be within int32"):
        conv_acc(x, np.zeros((2, 3, 1, 1), int), np.array([0, 2 ** 31]))


@pytest.mark.parametrize("seed", range(3))
def test_qconv_weights_follow_the_entries(seed):
    rng = np.random.default_rng(seed)
    spec = Conv("t", 5, 7, 3, pad=1)
    q = random_qconv(rng, spec, density=0.15 + 0.3 * seed)
    np.testing.assert_array_equal(q.weights, ref_decode(q.codebook, q.codes, q.rel,
                                                        spec.weight_shape))
    assert q.weights.dtype == np.int64


def test_qconv_checks_its_shift():
    rng = np.random.default_rng(0)
    q = random_qconv(rng, Conv("t", 2, 2, 1))
    with pytest.raises(ValueError, match="shift 8 != in_frac"):
        QConv(spec=q.spec, codebook=q.codebook, codes=q.codes, rel=q.rel, bias=q.bias, shift=8,
              w_frac=3, in_frac=0, out_frac=0, weight_bits=16)


@pytest.mark.parametrize("op, spec, size", [
    (conv1x1, Conv("a", 6, 5, 1), 6),
    (conv1x1, Conv("conv_final", 7, 4, 1, pad=1), 5),
    (conv3x3, Conv("b", 4, 6, 3, pad=1), 6),
    (conv7x7s2, Conv("c", 3, 3, 7, stride=2), 15),
])
@pytest.mark.parametrize("shift", [0, 9, 31])
def test_conv_ops_match_reference(op, spec, size, shift):
    rng = np.random.default_rng(shift + size)
    x = rng.integers(0, 256, (spec.in_channels, size, size)).astype(np.uint8)
    q = random_qconv(rng, spec, shift=shift)
    expected = ref_conv(x, ref_decode(q.codebook, q.codes, q.rel, spec.weight_shape), q.bias,
                        spec.stride, spec.pad, shift)
    np.testing.assert_array_equal(op(x, q), expected)


@pytest.mark.parametrize("op, spec", [
    (conv1x1, Conv("a", 6, 8, 1)),
    (conv3x3, Conv("b", 4, 8, 3, pad=1)),
    (conv7x7s2, Conv("c", 3, 8, 7, stride=2)),
])
@pytest.mark.parametrize("shift", [0, 31])
def test_conv_ops_at_saturation_extremes(op, spec, shift):
    # All-255 inputs, codebooks of only the most negative / most positive 16-bit values and
    # int32-extreme biases: accumulators wrap, and outputs hit both 0 and 255.
    rng = np.random.default_rng(11 + shift)
    x = np.full((spec.in_channels, 9, 9), 255, np.uint8)
    q = random_qconv(rng, spec, shift=shift, density=0.9, extreme=True)
    expected = ref_conv(x, ref_decode(q.codebook, q.codes, q.rel, spec.weight_shape), q.bias,
                        spec.stride, spec.pad, shift)
    got = op(x, q)
    np.testing.assert_array_equal(got, expected)


def test_conv_ops_check_geometry():
    rng = np.random.default_rng(0)
    q = random_qconv(rng, Conv("b", 4, 8, 3, pad=1))
    with pytest.raises(ValueError, match="not 1x1/1"):
        conv1x1(np.zeros((8, 4, 4), np.uint8), q)
    with pytest.raises(ValueError, match="expects 8 input channels"):
        conv3x3(np.zeros((7, 4, 4), np.uint8), q)


@pytest.mark.parametrize("cin, size, s, e1, e3", [(6, 5, 3, 4, 5), (4, 7, 2, 3, 2),
                                                  (8, 3, 4, 2, 6)])
def test_fire_matches_composed_reference(cin, size, s, e1, e3):
    rng = np.random.default_rng(cin * size)
    x = rng.integers(0, 256, (cin, size, size)).astype(np.uint8)
    squeeze = random_qconv(rng, Conv("f/conv1x1_1", s, cin, 1), shift=12)
    ex1 = random_qconv(rng, Conv("f/conv1x1_2", e1, s, 1), shift=10, out_frac=-1)
    ex3 = random_qconv(rng, Conv("f/conv3x3_2", e3, s, 3, pad=1), shift=11, out_frac=-1)

    def weights(q):
        return ref_decode(q.codebook, q.codes, q.rel, q.spec.weight_shape)

    squeezed = ref_conv(x, weights(squeeze), squeeze.bias, 1, 0, 12)
    expected = np.concatenate([ref_conv(squeezed, weights(ex1), ex1.bias, 1, 0, 10),
                               ref_conv(squeezed, weights(ex3), ex3.bias, 1, 1, 11)])
    got = fire(x, squeeze, ex1, ex3)
    assert got.shape == (e1 + e3, size, size)
    np.testing.assert_array_equal(got, expected)


def test_fire_needs_one_output_scale():
    rng = np.random.default_rng(1)
    squeeze = random_qconv(rng, Conv("f/conv1x1_1", 2, 3, 1))
    ex1 = random_qconv(rng, Conv("f/conv1x1_2", 2, 2, 1), out_frac=0)
    ex3 = random_qconv(rng, Conv("f/conv3x3_2", 2, 2, 3, pad=1), out_frac=1)
    with pytest.raises(ValueError, match="one out_frac"):
        fire(np.zeros((3, 4, 4), np.uint8), squeeze, ex1, ex3)


@pytest.mark.parametrize("shape", [(2, 7, 7), (3, 6, 6), (1, 8, 5), (2, 3, 3), (4, 55, 55),
                                   (1, 4, 10)])
def test_maxpool_matches_reference(shape):
    rng = np.random.default_rng(shape[1] * shape[2])
    x = rng.integers(0, 256, shape).astype(np.uint8)
    np.testing.assert_array_equal(maxpool3x3s2(x), ref_maxpool(x))


def test_maxpool_ceil_mode_keeps_partial_window():
    # 6 wide: windows start at 0, 2 and 4; the last covers columns 4..5 only (ceil mode).
    x = np.zeros((1, 3, 6), np.uint8)
    x[0, 0, 5] = 200
    x[0, 2, 0] = 255
    got = maxpool3x3s2(x)
    np.testing.assert_array_equal(got, [[[255, 0, 200]]])


def test_global_sum_matches_reference():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (6, 15, 15)).astype(np.uint8)
    x[0] = 255
    expected = [sum(int(v) for v in x[c].ravel()) for c in range(6)]
    np.testing.assert_array_equal(global_sum(x), expected)
    assert int(global_sum(x)[0]) == 255 * 225


# ----------------------------------------------------------------------------- quantisation


def test_quantize_codebook_hand_values():
    codebook = np.array([0.0, 0.5, -0.5, 1.0, -1.0, 0.25, 0.125, -0.125, 100.0, -100.0])
    # floor(c * 4 + 0.5); halves round up (0.5 -> 1, -0.5 -> 0); +-400 clip to int8.
    np.testing.assert_array_equal(quantize_codebook(codebook, 2, 8),
                                  [0, 2, -2, 4, -4, 1, 1, 0, 127, -128])


def test_quantize_bias_hand_values():
    np.testing.assert_array_equal(quantize_bias([0.3, -0.3, 1e12, -1e12, 0.5 / 1024], 10),
                                  [307, -307, INT32_MAX, INT32_MIN, 1])


def test_weight_and_activation_frac_hand_values():
    assert weight_frac([0.0, 0.3, -0.1], 16) == 16  # 0.3 * 2**16 = 19661, * 2**17 overflows
    assert weight_frac([0.0, -1.0], 8) == 7  # -128 fits int8
    assert weight_frac([0.0, 1.0], 8) == 6  # +128 does not
    assert activation_frac(255.0) == 0
    assert activation_frac(255.1) == -1
    assert activation_frac(127.5) == 1
    assert activation_frac(0.9) == 8  # 230.4 fits, 460.8 does not
    assert activation_frac(8504.0) == -6


# ----------------------------------------------------------------------------- a tiny network

TINY = (Conv("conv1", 4, 3, 3, stride=2), MaxPool("pool1"), Fire("fire2", 4, 3, 2, 3),
        Conv("conv_final", 5, 5, 1, pad=1), GlobalAvgPool())


def tiny_model(seed=0, scale=1.0):
    """A compressed model of the TINY network made with the codec (random sparse weights)."""
    rng = np.random.default_rng(seed)
    layers = []
    for spec in conv_layers(TINY):
        codebook = np.concatenate([[0.0], rng.normal(0, scale * 0.4, 255)]).astype(np.float32)
        dense = np.where(rng.random(spec.weight_shape) < 0.6,
                         codebook[rng.integers(1, 256, spec.weight_shape)], 0.0)
        bias = rng.normal(0, 0.5, spec.out_channels).astype(np.float32)
        layers.append(codec.compress_layer(spec, dense, bias, codebook))
    return codec.CompressedModel(TINY, layers)


def ref_tiny_network(model, plan, bgr):
    """The whole contract with Python ints, from the float weights, for the TINY network."""
    fracs = input_fracs(TINY, plan.out_frac)

    def qweights(name):
        f = plan.w_frac[name]
        half = 2 ** (plan.weight_bits - 1)
        dense = model.layer(name).dense_weights().astype(np.float64)
        return np.array([min(max(math.floor(float(v) * 2 ** f + 0.5), -half), half - 1)
                         for v in dense.ravel()], np.int64).reshape(dense.shape)

    def qbias(name):
        frac = fracs[name] + plan.w_frac[name]
        return [min(max(math.floor(float(b) * 2 ** frac + 0.5), INT32_MIN), INT32_MAX)
                for b in model.layer(name).bias]

    def layer(x, name, spec):
        shift = fracs[name] + plan.w_frac[name] - plan.out_frac[name]
        return ref_conv(x, qweights(name), qbias(name), spec.stride, spec.pad, shift)

    # conv1 on the mean-subtracted image (signed ints), unfolded bias: what the fold must equal.
    centred = bgr.astype(np.int64) - np.array(BGR_MEAN)[:, None, None]
    out = {"conv1": layer(centred, "conv1", TINY[0])}
    out["pool1"] = ref_maxpool(out["conv1"])
    sq, e1, e3 = TINY[2].convs
    out[sq.name] = layer(out["pool1"], sq.name, sq)
    out["fire2"] = np.concatenate([layer(out[sq.name], e1.name, e1),
                                   layer(out[sq.name], e3.name, e3)])
    out["conv_final"] = layer(out["fire2"], "conv_final", TINY[3])
    sums = [sum(int(v) for v in plane.ravel()) for plane in out["conv_final"]]
    out["global_sum"] = sums
    area = out["conv_final"].shape[1] * out["conv_final"].shape[2]
    out["logits"] = [s * 2.0 ** -plan.out_frac["conv_final"] / area for s in sums]
    return out


@pytest.fixture(scope="module")
def tiny():
    model = tiny_model()
    rng = np.random.default_rng(42)
    images = [rng.integers(0, 256, (3, 17, 17)).astype(np.uint8) for _ in range(3)]
    plan = calibrate(model, images[:2], 16, image_names=["r0", "r1"])
    return model, plan, images


def test_tiny_network_end_to_end(tiny):
    model, plan, images = tiny
    qmodel = quantize(model, plan, 16)
    for bgr in images:
        got = qmodel.run(bgr)
        expected = ref_tiny_network(model, plan, bgr)
        for key in ("conv1", "pool1", "fire2/conv1x1_1", "fire2", "conv_final", "global_sum"):
            np.testing.assert_array_equal(got[key], expected[key], err_msg=key)
        np.testing.assert_array_equal(got["logits"], expected["logits"])
    # 17 -> 3x3/2 -> 8 -> ceil-mode pool (last window partial) -> 4 -> 1x1 pad 1 -> 6.
    assert got["conv1"].shape == (4, 8, 8) and got["pool1"].shape == (4, 4, 4)
    assert got["conv_final"].shape == (5, 6, 6)
    assert [name for name, *_ in qmodel.fires] == ["fire2"]


def test_tiny_plan_follows_the_rules(tiny):
    model, plan, _ = tiny
    fracs = input_fracs(TINY, plan.out_frac)
    assert plan.out_frac["fire2/conv1x1_2"] == plan.out_frac["fire2/conv3x3_2"]
    for spec in conv_layers(TINY):
        name = spec.name
        shift = fracs[name] + plan.w_frac[name] - plan.out_frac[name]
        assert 0 <= shift <= 31, name
        codebook = model.layer(name).codebook.astype(np.float64)
        q = np.floor(codebook * 2.0 ** plan.w_frac[name] + 0.5)
        assert q.max() <= 2 ** 15 - 1 and q.min() >= -2 ** 15, name
        q = np.floor(codebook * 2.0 ** (plan.w_frac[name] + 1) + 0.5)
        assert q.max() > 2 ** 15 - 1 or q.min() < -2 ** 15, name  # w_frac is the largest


def test_calibration_keeps_shifts_in_range():
    # Codebooks of ~1e-12 want w_frac ~ 55, which would need a shift far above 31.
    model = tiny_model(seed=1, scale=1e-12)
    rng = np.random.default_rng(0)
    plan = calibrate(model, [rng.integers(0, 256, (3, 17, 17)).astype(np.uint8)], 16)
    qmodel = quantize(model, plan, 16)
    assert all(0 <= q.shift <= 31 for q in qmodel.layers.values())
    assert max(q.shift for q in qmodel.layers.values()) == 31
    assert plan.w_frac["conv1"] < weight_frac(model.layer("conv1").codebook, 16)


def test_plan_json_roundtrip(tiny):
    _, plan, _ = tiny
    again = QuantPlan.from_json(plan.to_json())
    assert again == plan
    assert json.loads(plan.to_json())["calibration_images"] == ["r0", "r1"]
    with pytest.raises(ValueError, match="not a quantisation plan"):
        QuantPlan.from_json('{"format": "squeezefire-quant-plan-1"}')
    with pytest.raises(ValueError, match="unknown plan format"):
        QuantPlan.from_json('{"format": "other"}')


def test_quantize_refuses_foreign_plans(tiny):
    model, plan, _ = tiny
    with pytest.raises(ValueError, match="calibrated for 16-bit weights, not 12"):
        quantize(model, plan, 12)
    other = tiny_model(seed=9)
    with pytest.raises(ValueError, match="plan is for model"):
        quantize(other, plan, 16)
    with pytest.raises(ValueError, match="weight_bits must be between 8 and 18"):
        quantize(model, plan, 19)


def test_load_plan_calibrates_unknown_models(tiny, monkeypatch, capsys):
    model, _, _ = tiny
    monkeypatch.setattr(calibrate_mod, "CALIBRATION_IMAGES", ("chelsea",))
    # The tiny network takes any input size, so a 227x227 photograph works.
    plan = load_plan(model, 16)
    assert plan.model_sha256 == model.sha256 and plan.calibration_images == ["chelsea"]
    assert "calibrating" in capsys.readouterr().err


# ----------------------------------------------------------------------------- stored plans


def test_stored_synthetic_plan_is_current(capsys):
    model = codec.load()
    plan = load_plan(model, 16)
    assert capsys.readouterr().err == ""  # found on disk, not calibrated on the fly
    fresh = calibrate(model, calibrate_mod.CALIBRATION_IMAGES, 16)
    assert (plan.w_frac, plan.out_frac) == (fresh.w_frac, fresh.out_frac)
    assert plan.calibration_images == list(calibrate_mod.CALIBRATION_IMAGES)


def test_calibrate_cli_writes_a_plan(tmp_path):
    out = tmp_path / "plan.json"
    assert calibrate_mod.main(["--out", str(out), "--images", "coffee"]) == 0
    plan = QuantPlan.from_json(out.read_text())
    assert plan.model_sha256 == codec.load().sha256
    assert plan.calibration_images == ["coffee"] and plan.weight_bits == 16


@pytest.mark.parametrize("name", ["file/plan.json", "a_directory"])
def test_calibrate_cli_unwritable_out(tmp_path, capsys, name):
    """Checked before calibrating: one error line naming the path and the fix, nothing written."""
    (tmp_path / "file").write_text("a regular file")
    (tmp_path / "a_directory").mkdir()
    out = tmp_path / name
    assert calibrate_mod.main(["--out", str(out), "--images", "coffee"]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: cannot write {out}: ") and "pass --out" in lines[0]
    assert (tmp_path / "file").read_text() == "a regular file"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a_directory", "file"]


def test_calibrate_cli_failed_write_leaves_nothing(tmp_path, capsys, monkeypatch):
    stored = load_plan(codec.load(), 16)
    monkeypatch.setattr(calibrate_mod, "calibrate", lambda *args, **kwargs: stored)

    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(calibrate_mod.os, "replace", refuse)
    out = tmp_path / "plan.json"
    assert calibrate_mod.main(["--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == (f"error: cannot write {out}: No space left on device; pass --out a file "
                       f"in a directory you can write")
    assert list(tmp_path.iterdir()) == []


def test_calibrate_cli_bad_model(tmp_path, capsys):
    bad = tmp_path / "bad.net"
    bad.write_bytes(b"\x01" * 100)
    assert calibrate_mod.main(["--model", str(bad)]) == 2
    assert capsys.readouterr().err.startswith("error: ")


@pytest.fixture(scope="module")
def real():
    if not REAL.exists():
        pytest.skip(f"real model not found at {REAL}: ../shared is absent")
    model = codec.load(REAL)
    plan = load_plan(model, 16)
    return model, plan, quantize(model, plan, 16)


@needs_real
def test_stored_real_plan_is_current(real):
    model, plan, _ = real
    assert plan.model_sha256 == model.sha256
    fresh = calibrate(model, calibrate_mod.CALIBRATION_IMAGES, 16)
    assert (plan.w_frac, plan.out_frac) == (fresh.w_frac, fresh.out_frac)


@needs_real
def test_real_model_layers_at_sampled_positions(real):
    """Each conv layer's output, at sampled positions, recomputed from its input activation
    with Python ints and weights quantised from the codec's dense float weights."""
    model, plan, qmodel = real
    acts = qmodel.run(preprocess(load_image("chelsea")))
    producer = {}
    previous = None
    for op in model.network:
        if isinstance(op, Conv):
            producer[op.name] = previous
            previous = op.name
        elif isinstance(op, Fire):
            sq, e1, e3 = op.convs
            producer[sq.name] = previous
            producer[e1.name] = producer[e3.name] = sq.name
            previous = op.name
        elif isinstance(op, MaxPool):
            previous = op.name
    rng = np.random.default_rng(0)
    for spec in conv_layers(model.network):
        q = qmodel.layers[spec.name]
        weights = model.layer(spec.name).dense_weights()
        bias = model.layer(spec.name).bias
        if producer[spec.name] is None:
            x = preprocess(load_image("chelsea")).astype(np.int64) - np.array(BGR_MEAN)[:, None,
                                                                                      None]
        else:
            x = acts[producer[spec.name]].astype(np.int64)
        out = acts[spec.name] if spec.name in acts else None
        if out is None:  # expand layers live inside the concatenated Fire output
            fire_name, kind = spec.name.split("/")
            e1_channels = qmodel.layers[f"{fire_name}/conv1x1_2"].spec.out_channels
            fire_out = acts[fire_name]
            out = fire_out[:e1_channels] if kind == "conv1x1_2" else fire_out[e1_channels:]
        height, width = out.shape[1:]
        samples = [(int(rng.integers(spec.out_channels)), int(rng.integers(height)),
                    int(rng.integers(width))) for _ in range(6)]
        samples.append((0, 0, 0))  # a corner: padding for 3x3 and conv_final
        for o, oy, ox in samples:
            total = math.floor(float(bias[o]) * 2 ** (q.in_frac + q.w_frac) + 0.5)
            for c in range(spec.in_channels):
                for ky in range(spec.kernel):
                    for kx in range(spec.kernel):
                        iy = oy * spec.stride + ky - spec.pad
                        ix = ox * spec.stride + kx - spec.pad
                        if 0 <= iy < x.shape[1] and 0 <= ix < x.shape[2]:
                            wq = math.floor(float(weights[o, c, ky, kx]) * 2 ** q.w_frac + 0.5)
                            total += int(x[c, iy, ix]) * min(max(wq, -2 ** 15), 2 ** 15 - 1)
            expected = ref_requantize_one(ref_wrap(total), q.shift)
            assert int(out[o, oy, ox]) == expected, (spec.name, o, oy, ox)


@needs_real
def test_real_plan_shifts_and_shared_scales(real):
    _, plan, qmodel = real
    for name, squeeze, e1, e3 in qmodel.fires:
        assert e1.out_frac == e3.out_frac == qmodel.layers[f"{name}/conv1x1_2"].out_frac
        assert e1.in_frac == e3.in_frac == squeeze.out_frac
        assert all(0 <= q.shift <= 31 for q in (squeeze, e1, e3))
    assert qmodel.layers["conv1"].in_frac == 0
