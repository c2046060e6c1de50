# amaranth: UnusedElaboratable=no
"""InputPacker against a NumPy model of beats, framing and credits; random gaps both sides."""

import re

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.board.input_packer import InputPacker
from testkit.waves import waves


def packer_model(data, channels_per_beat, n_beats, credit_chunk, taken_before=0):
    """Beats ``(lanes, first, last)`` and the number of credit pulses for ``data``."""
    lanes = np.asarray(data, dtype=np.uint8).reshape(n_beats, channels_per_beat)
    beats = [(row.tolist(), int(k == 0), int(k == n_beats - 1)) for k, row in enumerate(lanes)]
    credits = (taken_before + len(data)) // credit_chunk - taken_before // credit_chunk
    return beats, credits


def packer_sim(dut, layers, rng, name, abort_after=None):
    """Run ``layers`` of ``(rows, cols, beats, data)``; returns beats, credits, bytes taken."""
    got, credits, taken = [], [0], [0]

    async def producer(ctx):
        for rows, cols, beats, data in layers:
            ctx.set(dut.begin, 1)
            ctx.set(dut.last_row, rows - 1)
            ctx.set(dut.last_col, cols - 1)
            ctx.set(dut.last_beat, beats - 1)
            await ctx.tick()
            ctx.set(dut.begin, 0)
            ctx.set(dut.running, 1)
            for n, byte in enumerate(data):
                if n == abort_after:
                    ctx.set(dut.abort, 1)
                if rng.integers(0, 2):
                    await ctx.tick().repeat(int(rng.integers(1, 6)))
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, byte)
                await ctx.tick().until(dut.i.ready)
                ctx.set(dut.i.valid, 0)
            await ctx.tick().until(dut.done)
            ctx.set(dut.running, 0)

    async def consumer(ctx):
        beats = []
        while True:
            ctx.set(dut.o.ready, int(rng.integers(0, 4) != 0))
            _, _, valid, ready, payload = await ctx.tick().sample(dut.o.valid, dut.o.ready,
                                                                  dut.o.payload)
            if valid and ready:
                beats.append((list(payload.data), payload.first, payload.last))
                if payload.last:
                    got.append(beats)
                    beats = []

    async def count(ctx):
        async for _, _, credit, take in ctx.tick().sample(dut.credit,
                                                          dut.i.valid & dut.i.ready):
            credits[0] += credit
            taken[0] += take

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(producer)
    sim.add_testbench(consumer, background=True)
    sim.add_testbench(count, background=True)
    with waves(sim, name):
        sim.run()
    return got, credits[0], taken[0]


@pytest.mark.parametrize("channels_per_beat, credit_chunk", [(4, 4), (1, 8), (3, 1), (2, 16)])
def test_input_packer_matches_model(channels_per_beat, credit_chunk, request):
    rng = np.random.default_rng(channels_per_beat * 10 + credit_chunk)
    dut = InputPacker(channels_per_beat, max_beats=3, credit_chunk=credit_chunk)
    layers = []
    for _ in range(3):
        rows, cols, beats = (int(v) for v in rng.integers(1, 4, 3))
        n = rows * cols * beats * channels_per_beat
        layers.append((rows, cols, beats, rng.integers(0, 256, n).tolist()))
    got, credits, _ = packer_sim(dut, layers, rng, request.node.name)
    expected_credits, before = 0, 0
    for (rows, cols, beats, data), layer_got in zip(layers, got, strict=True):
        expected, c = packer_model(data, channels_per_beat, rows * cols * beats, credit_chunk,
                                   before)
        assert layer_got == expected
        expected_credits += c
        before += len(data)
    assert credits == expected_credits


def test_input_packer_abort_feeds_zeros(request):
    """After ``abort``: the rest of the layer is zeros, input is drained, no more credits."""
    rng = np.random.default_rng(7)
    dut = InputPacker(2, max_beats=2, credit_chunk=2)
    data = list(range(1, 2 * 2 * 3 * 2 + 1))     # 2 x 3 pixels of 2 beats of 2 bytes
    keep = 5
    got, credits, taken = packer_sim(dut, [(2, 3, 2, data)], rng, request.node.name,
                                     abort_after=keep)
    lanes = [lane for beat, _, _ in got[0] for lane in beat]
    assert lanes == data[:keep] + [0] * (len(data) - keep)
    assert [(f, last) for _, f, last in got[0]] == [(int(k == 0), int(k == 11)) for k in range(12)]
    assert taken == len(data)                       # the late bytes were taken and dropped
    assert credits == keep // 2


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(channels_per_beat=0), ValueError,
     "Channels per beat must be an integer from 1 to 255, not 0"),
    (dict(channels_per_beat="4"), TypeError,
     "Channels per beat must be an integer from 1 to 255, not '4'"),
    (dict(credit_chunk=3), ValueError, "Credit chunk must be a power of two, not 3"),
    (dict(credit_chunk=4.0), TypeError, "Credit chunk must be a power of two, not 4.0"),
    (dict(max_beats=0), ValueError, "Beats per pixel must be a positive integer, not 0"),
])
def test_input_packer_parameters_are_checked(kwargs, exc, message):
    args = dict(channels_per_beat=4, max_beats=2, credit_chunk=4) | kwargs
    with pytest.raises(exc, match=re.escape(message)):
        InputPacker(**args)
