# amaranth: UnusedElaboratable=no
"""Global sum alone: random maps streamed in with random gaps, logits out under random
back-pressure, equal to golden.fixed.global_sum (plus the per-channel offsets); two runs back
to back so the second must not see the first's sums."""

import numpy as np
import pytest

from golden import calibrate, codec, fixed
from golden.fixed import global_sum
from hw.network.global_sum import GlobalSum, padded_border_offsets
from testkit.engine_driver import to_beats
from testkit.streams import receive_until_last, send_beats
from testkit.simulate import simulate


def run_sums(dut, maps, *, seed, valid_prob=0.7, ready_prob=0.7):
    rng = np.random.default_rng(seed)
    L = dut.i.payload.data.shape().length
    got = []

    async def producer(ctx):
        for x in maps:
            await send_beats(ctx, dut.i, to_beats(x, L), rng, valid_prob=valid_prob)

    async def consumer(ctx):
        for _ in maps:
            logits = await receive_until_last(ctx, dut.o, rng, ready_prob=ready_prob,
                                              fields=("data", "last"))
            got.append([value for value, _ in logits])

    simulate(dut, producer, consumer)
    return got


@pytest.mark.parametrize("channels,beat,height,width", [
    (10, 4, 3, 5), (1, 1, 4, 4), (7, 8, 2, 3), (16, 2, 1, 1), (33, 8, 5, 2),
])
def test_sums_equal_golden(channels, beat, height, width):
    rng = np.random.default_rng(channels * 13 + beat)
    offsets = rng.integers(-(1 << 31), 1 << 31, channels)
    offsets[:2] = [-(1 << 31), (1 << 31) - 1][:min(2, channels)]
    dut = GlobalSum(channels=channels, channels_per_beat=beat, offsets=offsets.tolist())
    maps = [rng.integers(0, 256, (channels, height, width)).astype(np.uint8) for _ in range(2)]
    maps[1][:, 0, 0] = 255
    got = run_sums(dut, maps, seed=channels)
    for x, logits in zip(maps, got):
        want = (global_sum(x) + offsets + (1 << 31)) % (1 << 32) - (1 << 31)   # int32 wrap
        np.testing.assert_array_equal(logits, want)


def test_default_offsets_are_zero():
    dut = GlobalSum(channels=5, channels_per_beat=2)
    x = np.full((5, 3, 3), 255, np.uint8)
    np.testing.assert_array_equal(run_sums(dut, [x], seed=1)[0], global_sum(x))


@pytest.mark.parametrize("kwargs,exc,message", [
    ({"channels": 0}, ValueError, "Channel count must be from 1 to 4096, not 0"),
    ({"channels": 4.0}, TypeError, "Channel count must be an integer, not 4.0"),
    ({"channels_per_beat": 65}, ValueError, "Channels per beat must be from 1 to 64, not 65"),
    ({"offsets": [1, 2]}, ValueError, r"Offsets must have one value per channel \(4\), not 2"),
    ({"offsets": [1 << 31, 0, 0, 0]}, ValueError, "Offsets must fit 32-bit signed"),
])
def test_parameter_errors(kwargs, exc, message):
    args = {"channels": 4, "channels_per_beat": 2, **kwargs}
    with pytest.raises(exc, match=message):
        GlobalSum(**args)


def test_conv10_interior_plus_border_offsets_equals_golden_global_sum():
    """conv10 (1x1, pad 1) of the embedded model on a random 13x13 fire9-like map: the engine's
    13x13 interior summed by the block, started at the border offsets, equals golden's global
    sum of the whole padded 15x15 output, for all 1000 channels."""
    compressed = codec.load(None)
    qmodel = fixed.quantize(compressed, calibrate.load_plan(compressed))
    conv10 = qmodel.layers["conv_final"]
    assert conv10.spec.pad == 1 and conv10.spec.kernel == 1
    rng = np.random.default_rng(10)
    x = rng.integers(0, 256, (conv10.spec.in_channels, 13, 13)).astype(np.uint8)
    whole = fixed.conv1x1(x, conv10)                      # (1000, 15, 15)
    interior = whole[:, 1:-1, 1:-1]
    offsets = padded_border_offsets(conv10, 13, 13)
    dut = GlobalSum(channels=conv10.spec.out_channels, channels_per_beat=40, offsets=offsets)
    got = run_sums(dut, [np.ascontiguousarray(interior)], seed=3, valid_prob=1.0,
                   ready_prob=1.0)[0]
    np.testing.assert_array_equal(got, global_sum(whole))


def test_border_offsets_reject_other_kernels():
    compressed = codec.load(None)
    qmodel = fixed.quantize(compressed, calibrate.load_plan(compressed))
    with pytest.raises(ValueError, match="border offsets are for 1x1 convolutions, not 3x3"):
        padded_border_offsets(qmodel.fires[0][3], 13, 13)
