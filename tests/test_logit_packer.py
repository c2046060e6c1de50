# amaranth: UnusedElaboratable=no
"""LogitPacker in the Amaranth simulator: little-endian bytes of the logits in L-byte beats,
zero padded, framed per run, under random input gaps and output back-pressure."""

import numpy as np
import pytest

from hw.network.logit_packer import LogitPacker, model
from testkit.simulate import simulate
from testkit.streams import receive_until_last


def test_model_is_little_endian_twos_complement_zero_padded():
    beats = model([1, -2, 0x01020304], 5)
    np.testing.assert_array_equal(beats, [[1, 0, 0, 0, 0xFE], [0xFF, 0xFF, 0xFF, 4, 3],
                                          [2, 1, 0, 0, 0]])


@pytest.mark.parametrize("beat,counts,valid_prob,ready_prob", [
    (4, (10, 3), 1.0, 1.0),
    (3, (7, 1), 0.5, 0.4),
    (8, (5, 12), 0.3, 0.7),
    (1, (2, 3), 0.6, 0.6),
    (5, (4, 9), 1.0, 0.3),
])
def test_runs_back_to_back(beat, counts, valid_prob, ready_prob):
    rng = np.random.default_rng(beat * 10 + counts[0])
    runs = [rng.integers(-(1 << 31), 1 << 31, n, dtype=np.int64) for n in counts]
    dut = LogitPacker(channels_per_beat=beat)
    got = []

    async def producer(ctx):
        gaps = np.random.default_rng(1)
        for logits in runs:
            for n, value in enumerate(logits):
                while gaps.random() > valid_prob:
                    await ctx.tick()
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload.data, int(value))
                ctx.set(dut.i.payload.last, int(n == len(logits) - 1))
                await ctx.tick().until(dut.i.ready)
                ctx.set(dut.i.valid, 0)

    async def consumer(ctx):
        stalls = np.random.default_rng(2)
        for _ in runs:
            got.append(await receive_until_last(ctx, dut.o, stalls, ready_prob=ready_prob))

    simulate(dut, producer, consumer, deadline_cycles=10_000)
    assert len(got) == len(runs)
    for logits, beats in zip(runs, got):
        expected = model(logits, beat)
        np.testing.assert_array_equal(np.array([b[0] for b in beats], np.uint8), expected)
        assert [b[1] for b in beats] == [1] + [0] * (len(expected) - 1)
        assert [b[2] for b in beats] == [0] * (len(expected) - 1) + [1]


def test_throughput_one_byte_per_cycle_and_a_cycle_per_beat():
    """With a steady source and sink, L bytes leave every L + 1 cycles."""
    L, count = 4, 6
    dut = LogitPacker(channels_per_beat=L)
    cycles = []

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.valid, 1)
        n, cycle = 0, 0
        while len(cycles) < count * 4 // L:
            ctx.set(dut.i.payload.last, int(n == count - 1))
            _, _, i_ready, o_valid = await ctx.tick().sample(dut.i.ready, dut.o.valid)
            n += i_ready
            if n == count:
                ctx.set(dut.i.valid, 0)
            if o_valid:
                cycles.append(cycle)
            cycle += 1

    simulate(dut, bench, deadline_cycles=1000)
    assert np.diff(cycles).tolist() == [L + 1] * (len(cycles) - 1)


def test_parameter_errors():
    with pytest.raises(TypeError, match="Channels per beat must be an integer, not 'x'"):
        LogitPacker(channels_per_beat="x")
    with pytest.raises(ValueError, match="Channels per beat must be from 1 to 64, not 0"):
        LogitPacker(channels_per_beat=0)
