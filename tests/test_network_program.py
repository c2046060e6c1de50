"""Network program without simulation: the steps, store addresses and global-sum offsets of the real
SqueezeNet v1.0 and v1.1 shapes (random sparse weights), against sizes worked out here from
the papers' tables; and the networks, images and parameters it must refuse."""

import numpy as np
import pytest

from golden.fixed import requantize
from golden.network import Conv, Fire, GlobalAvgPool, MaxPool, squeezenet_v1_0, squeezenet_v1_1
from hw.network.program import NetworkProgram
from testkit.networks import random_model, tiny_network

FIRES = [f"fire{i}" for i in range(2, 10)]
NAMES = ["conv1", *FIRES, "conv_final"]
#: Output channels of each step (SqueezeNet paper, Table 1; 1000 classes).
CHANNELS = [96, 128, 128, 256, 256, 384, 384, 512, 512, 1000]
#: Per step at 227 x 227: (engine output size, pooled after it).
V1_0 = [(111, True), (55, False), (55, False), (55, True), (27, False), (27, False),
        (27, False), (27, True), (13, False), (13, False)]
V1_1 = [(113, True), (56, False), (56, True), (28, False), (28, True), (14, False),
        (14, False), (14, False), (14, False), (14, False)]
V1_1_CHANNELS = [64, *CHANNELS[1:]]


def ceil_div(a, b):
    return -(-a // b)


def pooled(size):
    """3x3/2 ceil-mode pool, as Caffe: 111 -> 55, 55 -> 27, 27 -> 13, 113 -> 56."""
    return ceil_div(size - 3, 2) + 1


@pytest.fixture(scope="module")
def v1_0_model():
    return random_model(np.random.default_rng(10), squeezenet_v1_0(), density=0.01)


@pytest.fixture(scope="module")
def v1_1_model():
    return random_model(np.random.default_rng(11), squeezenet_v1_1(), density=0.01)


def check_steps(program, shape, channels, beat):
    """Names, sizes, pools, store addresses and word counts of every step against ``shape``."""
    steps = program.steps
    assert [s.name for s in steps] == NAMES
    assert [s.layer for s in steps] == list(range(len(NAMES)))
    assert [(s.height, s.pool) for s in steps] == shape
    assert all(s.width == s.height for s in steps)
    assert [s.out_channels for s in steps] == channels
    assert [s.in_channels for s in steps] == [3, *channels[:-1]]
    out_words = []
    for (size, pool), c in zip(shape, channels):
        side = pooled(size) if pool else size
        out_words.append(side * side * ceil_div(c, beat))
    out_words[-1] = 0
    assert [s.out_words for s in steps] == out_words
    # One circular store: each output right after its input, the next step reads it there.
    depth = max(max(s.in_words, s.out_words) for s in steps)
    assert program.store_words == depth
    assert steps[0].source is None and steps[0].dest == 0 and steps[-1].dest is None
    for before, after in zip(steps, steps[1:]):
        assert after.source == before.dest and after.in_words == before.out_words
        if after.dest is not None:
            assert after.dest == (after.source + after.in_words) % depth
    assert [s.in_words for s in steps] == [0] + out_words[:-1]
    # The engine's layers are the steps, with conv1 read as a 1x1 over its patches.
    layers = program.engine_program.layers
    assert [(layer.name, layer.height, layer.width) for layer in layers] == \
        [(s.name, s.height, s.width) for s in steps]


def test_v1_0_at_227(v1_0_model):
    program = NetworkProgram(v1_0_model, input_size=227, channels_per_beat=8)
    check_steps(program, V1_0, CHANNELS, 8)
    assert [s.name for s in program.steps if s.pool] == ["conv1", "fire4", "fire8"]
    assert not program.patch_runs
    assert program.engine_program.layers[0].in_channels == 7 * 7 * 3 == 147
    # Patches in runs: 8 bytes per kernel row (7 pixels and a zero); L a multiple of 8.
    runs = NetworkProgram(v1_0_model, input_size=227, channels_per_beat=8, patch_runs=True)
    assert runs.engine_program.layers[0].in_channels == 3 * 7 * 8 == 168
    with pytest.raises(ValueError, match="patches in runs need channels per beat a multiple "
                                         "of 8 \\(conv1's 7-pixel rows\\), not 12"):
        NetworkProgram(v1_0_model, input_size=227, channels_per_beat=12, patch_runs=True)
    assert (program.patch_kernel, program.patch_stride) == (7, 2)
    # The largest map: fire2's (and fire3's) 55x55x128 output, 387,200 bytes; ping-pong
    # buffers would need twice that.
    assert program.store_words == 55 * 55 * 16
    assert program.store_words * 8 == 387_200
    assert program.store_bits == 3_097_600
    assert program.classes == 1000


def test_v1_0_offsets_are_the_padded_border(v1_0_model):
    """conv_final runs 13x13 of its 15x15 (pad 1) output: each of the 56 border pixels is the
    requantised bias alone."""
    program = NetworkProgram(v1_0_model, input_size=227, channels_per_beat=8)
    last = program.steps[-1]
    assert (last.name, last.height, last.width) == ("conv_final", 13, 13)
    conv = v1_0_model.layers["conv_final"]
    border = 15 * 15 - 13 * 13
    assert border == 56
    want = border * requantize(np.asarray(conv.bias, np.int64), conv.shift).astype(np.int64)
    assert np.count_nonzero(want), "random biases should give some non-zero border"
    assert len(program.sum_offsets) == 1000
    np.testing.assert_array_equal(program.sum_offsets, want)


def test_v1_1_at_227(v1_1_model):
    program = NetworkProgram(v1_1_model, input_size=227, channels_per_beat=8)
    check_steps(program, V1_1, V1_1_CHANNELS, 8)
    assert [s.name for s in program.steps if s.pool] == ["conv1", "fire3", "fire5"]
    assert program.engine_program.layers[0].in_channels == 3 * 3 * 3
    # conv_final has no padding: nothing to add to the sums.
    assert program.sum_offsets == [0] * 1000
    # The largest map is fire2's 56x56x128 output.
    assert program.store_words == 56 * 56 * 16


@pytest.mark.parametrize("beat", [3, 5, 64])
def test_words_round_channels_up_to_whole_beats(v1_0_model, beat):
    """L that does not divide the channel counts: every pixel takes ceil(C / L) words."""
    program = NetworkProgram(v1_0_model, input_size=227, channels_per_beat=beat)
    check_steps(program, V1_0, CHANNELS, beat)
    assert program.beats(96) == ceil_div(96, beat)
    assert program.store_bits == program.store_words * 8 * beat


def test_smaller_image_of_a_tiny_network():
    """23x23 through a 3x3/2 conv1 is 11x11; pools 11 -> 5 and 5 -> 2."""
    net = tiny_network(pool_after=("conv1", "fire3"))
    program = NetworkProgram(random_model(np.random.default_rng(1), net), input_size=23,
                             channels_per_beat=4)
    steps = program.steps
    assert [(s.name, s.height, s.pool) for s in steps] == [
        ("conv1", 11, True), ("fire2", 5, False), ("fire3", 5, True), ("conv_final", 2, False)]
    assert [s.out_words for s in steps] == [5 * 5 * 2, 5 * 5 * 2, 2 * 2 * 3, 0]
    assert program.store_words == 50


def tiny_model(net):
    return random_model(np.random.default_rng(2), net)


TINY = tiny_network(pool_after=("conv1",))        # conv1 8 3x3/2, pool, fire2, fire3, final


@pytest.mark.parametrize("net,message", [
    ((Conv("conv1", 8, 3, 3, stride=2, pad=1), *TINY[1:]),
     "^conv1: the first convolution must be unpadded over 3 channels$"),
    (TINY[:-1], "^the network must start with a convolution and end with a global average "
                "pool$"),
    ((TINY[-2], TINY[-1]), "must start with a convolution and end with a global average pool"),
    ((*TINY[:2], MaxPool("pool1b"), *TINY[2:]),
     "^pool1b: only a 3x3/2 max-pool after a layer is supported$"),
    ((TINY[0], MaxPool("pool1", kernel=2, stride=2), *TINY[2:]),
     "^pool1: only a 3x3/2 max-pool after a layer is supported$"),
    ((*TINY[:-2], Conv("conv_final", 10, 12, 3, pad=1), GlobalAvgPool()),
     "^conv_final: the accelerator runs conv1, Fire modules, 3x3/2 pools and a last 1x1 "
     "convolution, not Conv"),
    ((*TINY[:-2], GlobalAvgPool()),
     "^the last layer before the global pool must be a 1x1 convolution$"),
    ((*TINY[:2], Conv("mid", 8, 8, 1), Fire("fire2", 8, 4, 4, 4), GlobalAvgPool()),
     "^the last layer before the global pool must be a 1x1 convolution$"),
], ids=["padded-conv1", "no-global-pool", "too-short", "two-pools", "2x2-pool", "3x3-last",
        "fire-last", "1x1-in-the-middle"])
def test_unsupported_networks(net, message):
    model = tiny_model(net)
    with pytest.raises(ValueError, match=message):
        NetworkProgram(model, input_size=23, channels_per_beat=4)


# conv1 3x3/2 then a pool: 3x3 -> 1x1 (pool impossible), 2x2 (kernel does not fit).
@pytest.mark.parametrize("size", [2, 3, 5, 6])
def test_too_small_image_is_refused(size):
    with pytest.raises(ValueError):
        NetworkProgram(tiny_model(TINY), input_size=size, channels_per_beat=4)


@pytest.mark.parametrize("size,message", [
    (2, "^a 2x2 image is smaller than conv1's 3x3 kernel$"),
    (5, "^pool1: a 2x2 map is too small to pool$"),
])
def test_too_small_image_message(size, message):
    with pytest.raises(ValueError, match=message):
        NetworkProgram(tiny_model(TINY), input_size=size, channels_per_beat=4)


@pytest.mark.parametrize("kwargs,exc,message", [
    ({"channels_per_beat": 2}, ValueError, "^Channels per beat must be from 3 to 64, not 2$"),
    ({"channels_per_beat": 65}, ValueError, "^Channels per beat must be from 3 to 64, not 65$"),
    ({"channels_per_beat": "8"}, TypeError, "^Channels per beat must be an integer, not '8'$"),
    ({"channels_per_beat": True}, TypeError, "^Channels per beat must be an integer, not True$"),
    ({"input_size": 0}, ValueError, "^Input size must be from 1 to 4096, not 0$"),
    ({"input_size": 23.0}, TypeError, r"^Input size must be an integer, not 23\.0$"),
])
def test_parameter_errors(kwargs, exc, message):
    args = {"input_size": 23, "channels_per_beat": 4, **kwargs}
    with pytest.raises(exc, match=message):
        NetworkProgram(tiny_model(TINY), **args)


def test_input_shapes_and_engine_program_of_chosen_steps(v1_0_model):
    """The host-driven mode's view: each step's input map, sized by hand at 227 x 227, and an
    engine program of only the chosen layers, in network order."""
    program = NetworkProgram(v1_0_model, input_size=227, channels_per_beat=8)
    steps = {s.name: s for s in program.steps}
    assert program.input_shape(steps["conv1"]) == (227, 227, 3)
    assert program.input_shape(steps["fire2"]) == (55, 55, 96)     # conv1 111 pooled
    assert program.input_shape(steps["fire5"]) == (27, 27, 256)    # fire4 55 pooled
    assert program.input_shape(steps["conv_final"]) == (13, 13, 512)
    assert [spec[0] for spec in program.layer_specs] == NAMES
    chosen = program.engine_program_for(["conv_final", "fire3", "conv1"])
    assert [layer.name for layer in chosen.layers] == ["conv1", "fire3", "conv_final"]
    whole = {layer.name: layer for layer in program.engine_program.layers}
    for layer in chosen.layers:
        assert (layer.height, layer.width, layer.in_channels, layer.out_channels) == \
            (whole[layer.name].height, whole[layer.name].width, whole[layer.name].in_channels,
             whole[layer.name].out_channels)
    assert (chosen.code_bits, chosen.weight_bits) == (program.engine_program.code_bits,
                                                      program.engine_program.weight_bits)


def test_run_conv_moves_every_weight_to_its_run_position(v1_0_model):
    """conv1 for the run streamer: each weight (o, c, ky, kx) at patch channel
    (c*7 + ky)*8 + kx of a 168-channel 1x1 convolution, nothing else non-zero; the gaps still
    fit 4 bits (fillers added where needed)."""
    from golden.codec import entry_positions
    from hw.network.patch_runs import run_conv

    def dense(conv, per_channel):
        weights = np.zeros(conv.spec.out_channels * per_channel, np.int64)
        positions = entry_positions(conv.rel)
        weights[positions] = conv.codebook[conv.codes]
        return weights.reshape(conv.spec.out_channels, per_channel)

    conv1 = v1_0_model.layers["conv1"]
    moved = run_conv(conv1)
    assert (moved.spec.in_channels, moved.spec.kernel) == (168, 1)
    assert moved.rel.max() <= 15
    before, after = dense(conv1, 147), dense(moved, 168)
    runs = after.reshape(96, 3, 7, 8)
    np.testing.assert_array_equal(runs[..., :7].reshape(96, 147), before)
    assert not runs[..., 7].any()
