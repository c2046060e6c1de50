# amaranth: UnusedElaboratable=no
"""Patch streamer alone: random images (v1.0's 7x7/2 and v1.1's 3x3/2 geometry, small sizes)
with random input gaps and output back-pressure give exactly golden's im2col patches, in the
channel order of a (out, in, kh, kw) kernel; two images back to back."""

import numpy as np
import pytest

from golden.fixed_ops import im2col
from hw.network.patch_runs import PatchRunStreamer, run_bytes, run_layout
from hw.network.patch_streamer import PatchStreamer
from testkit.engine_driver import from_beats, to_beats
from testkit.streams import receive_until_last, send_beats
from testkit.simulate import simulate


def run_patches(kernel, stride, beat, sizes, *, seed, valid_prob=0.7, ready_prob=0.6,
                cls=PatchStreamer):
    rng = np.random.default_rng(seed)
    channels = 3
    dut = cls(kernel=kernel, stride=stride, channels=channels, channels_per_beat=beat,
              max_width=max(w for _, w in sizes))
    images = [rng.integers(0, 256, (channels, h, w)).astype(np.uint8) for h, w in sizes]
    got = []

    async def producer(ctx):
        for index, x in enumerate(images):
            # Sizes of the next image may change once the previous one's patches have left.
            while len(got) < index:
                await ctx.tick()
            h, w = x.shape[1:]
            ctx.set(dut.width, w)
            ctx.set(dut.height, h)
            ctx.set(dut.out_height, (h - kernel) // stride + 1)
            ctx.set(dut.out_width, (w - kernel) // stride + 1)
            await send_beats(ctx, dut.i, to_beats(x, beat), rng, valid_prob=valid_prob)

    async def consumer(ctx):
        for _ in images:
            got.append(await receive_until_last(ctx, dut.o, rng, ready_prob=ready_prob))

    simulate(dut, producer, consumer)
    for x, beats in zip(images, got):
        assert [f for _, f, _ in beats] == [1] + [0] * (len(beats) - 1)
        assert [last for _, _, last in beats] == [0] * (len(beats) - 1) + [1]
        cols, (out_h, out_w) = im2col(x, kernel, stride)
        if cls is PatchRunStreamer:      # runs of Q bytes, the bytes after each run zero
            runs = np.zeros((channels * kernel * run_bytes(kernel), cols.shape[1]), np.uint8)
            runs[run_layout(kernel, channels)] = cols
            cols = runs
        data = np.array([d for d, _, _ in beats], np.uint8)
        assert len(data) == out_h * out_w * dut.patch_beats
        per_pixel = data.reshape(out_h * out_w, -1)
        assert not per_pixel[:, cols.shape[0]:].any(), "padding bytes must be zero"
        np.testing.assert_array_equal(from_beats(data, cols.shape[0], out_h, out_w),
                                      cols.reshape(-1, out_h, out_w))


@pytest.mark.parametrize("kernel,stride,beat,sizes", [
    (7, 2, 8, [(11, 9), (7, 7)]),      # v1.0 conv1 geometry
    (3, 2, 8, [(7, 8), (6, 5)]),       # v1.1 conv1 geometry, an extra unused row/column
    (3, 1, 4, [(4, 6)]),
    (1, 1, 3, [(2, 3), (1, 1)]),
    (2, 2, 5, [(5, 4)]),
])
def test_patches_equal_im2col(kernel, stride, beat, sizes):
    run_patches(kernel, stride, beat, sizes, seed=kernel * 10 + beat)


def test_without_gaps():
    run_patches(7, 2, 8, [(9, 13)], seed=4, valid_prob=1.0, ready_prob=1.0)


@pytest.mark.parametrize("kernel,stride,beat,sizes", [
    (7, 2, 8, [(11, 9), (7, 7)]),      # v1.0 conv1 geometry, a run per beat
    (7, 2, 32, [(13, 21), (9, 8)]),    # four runs per beat, runs across word boundaries
    (3, 2, 8, [(7, 8), (6, 5)]),       # v1.1 conv1 geometry, two runs per beat
    (3, 1, 4, [(4, 6)]),
    (1, 1, 3, [(2, 3), (1, 1)]),
    (5, 3, 16, [(12, 17)]),
])
def test_run_patches_equal_im2col(kernel, stride, beat, sizes):
    """The run streamer: the same patches, each (c, ky) run in Q bytes."""
    run_patches(kernel, stride, beat, sizes, seed=kernel * 10 + beat, cls=PatchRunStreamer)
    run_patches(kernel, stride, beat, sizes[:1], seed=kernel, valid_prob=1.0, ready_prob=1.0,
                cls=PatchRunStreamer)


def test_run_streamer_needs_whole_runs_per_beat():
    with pytest.raises(ValueError, match="Channels per beat must be a multiple of 8 \\(a run "
                                         "of 7\\), not 12"):
        PatchRunStreamer(kernel=7, stride=2, channels=3, channels_per_beat=12, max_width=16)


@pytest.mark.parametrize("kwargs,exc,message", [
    ({"channels": 9}, ValueError, "Channel count must be from 1 to 8, not 9"),
    ({"stride": 8}, ValueError, "Stride must be from 1 to 7, not 8"),
    ({"max_width": 6}, ValueError, "Width must be from 7 to 4096, not 6"),
    ({"kernel": 7.0}, TypeError, "Kernel must be an integer, not 7.0"),
])
def test_parameter_errors(kwargs, exc, message):
    args = {"kernel": 7, "stride": 2, "channels": 3, "channels_per_beat": 8, "max_width": 16,
            **kwargs}
    with pytest.raises(exc, match=message):
        PatchStreamer(**args)
