# amaranth: UnusedElaboratable=no
"""Streaming max-pool alone: random maps (odd and even sizes, so both ceil-mode edge cases) with
random input gaps and output back-pressure, equal to golden.fixed.maxpool3x3s2; runs back to
back; one stage alone against a NumPy model of a 3-wide stride-2 ceil-mode pool of lines."""

import numpy as np
import pytest

from golden.fixed import maxpool3x3s2
from hw.network.max_pool import MaxPool, pooled_size
from hw.network.pool_stage import PoolStage
from testkit.engine_driver import from_beats, to_beats
from testkit.streams import receive_until_last, send_beats
from testkit.simulate import simulate


def stream_through(dut, runs, configure, *, seed, valid_prob=0.7, ready_prob=0.6):
    """Send each run's beats (a list of arrays of L bytes) with gaps; collect the output beats
    of each run (up to its ``last``), with their framing."""
    rng = np.random.default_rng(seed)
    got = []

    async def producer(ctx):
        for index, beats in enumerate(runs):
            configure(ctx, index)
            await send_beats(ctx, dut.i, beats, rng, valid_prob=valid_prob)
            # The next run's sizes may only change once this run has left.
            while len(got) <= index:
                await ctx.tick()

    async def consumer(ctx):
        for _ in runs:
            got.append(await receive_until_last(ctx, dut.o, rng, ready_prob=ready_prob))

    simulate(dut, producer, consumer)
    for beats in got:
        assert [f for _, f, _ in beats] == [1] + [0] * (len(beats) - 1)
        assert [last for _, _, last in beats] == [0] * (len(beats) - 1) + [1]
    return [np.array([d for d, _, _ in beats], np.uint8) for beats in got]


@pytest.mark.parametrize("channels,beat,sizes", [
    (5, 2, [(7, 6), (4, 5)]), (3, 1, [(3, 3), (6, 8)]), (16, 8, [(9, 9)]), (10, 4, [(5, 4)]),
    (1, 4, [(11, 3), (3, 10)]),
])
def test_pool_equals_golden(channels, beat, sizes):
    rng = np.random.default_rng(channels * 7 + beat)
    beats = -(-channels // beat)
    dut = MaxPool(channels_per_beat=beat, max_width=max(w for _, w in sizes), max_beats=beats)
    maps = [rng.integers(0, 256, (channels, h, w)).astype(np.uint8) for h, w in sizes]

    def configure(ctx, index):
        h, w = sizes[index]
        ctx.set(dut.height, h)
        ctx.set(dut.width, w)
        ctx.set(dut.beats, beats)
        ctx.set(dut.row_beats, pooled_size(w) * beats)

    got = stream_through(dut, [to_beats(x, beat) for x in maps], configure, seed=channels)
    for x, out in zip(maps, got):
        want = maxpool3x3s2(x)
        np.testing.assert_array_equal(from_beats(out, channels, *want.shape[1:]), want)


@pytest.mark.parametrize("length,words", [(3, 1), (4, 2), (7, 3), (8, 1), (5, 5)])
def test_stage_alone(length, words):
    """Lines of ``words`` beats; output line k = max of lines 2k..2k+2 that exist."""
    rng = np.random.default_rng(length * 10 + words)
    L = 2
    lines = rng.integers(0, 256, (length, words, L)).astype(np.uint8)
    dut = PoolStage(channels_per_beat=L, max_words=8)

    def configure(ctx, index):
        ctx.set(dut.length, length)
        ctx.set(dut.words, words)

    got = stream_through(dut, [lines.reshape(-1, L)] * 2, configure, seed=words)
    out_lines = pooled_size(length)
    want = np.stack([lines[2 * k:2 * k + 3].max(axis=0) for k in range(out_lines)])
    for out in got:
        np.testing.assert_array_equal(out.reshape(out_lines, words, L), want)


@pytest.mark.parametrize("kwargs,exc,message", [
    ({"max_width": 2}, ValueError, "Width must be at least 3, not 2"),
    ({"max_beats": 0}, ValueError, "Beat count must be at least 1, not 0"),
    ({"max_width": 5.0}, TypeError, "Width must be an integer, not 5.0"),
    ({"channels_per_beat": 0}, ValueError, "Channels per beat must be from 1 to 64, not 0"),
])
def test_parameter_errors(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        MaxPool(**{"channels_per_beat": 2, "max_width": 8, "max_beats": 2, **kwargs})
