"""FramingCheck against a beat-counting model."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.board.framing_check import FramingCheck
from testkit.waves import waves


def framing_model(n_beats, beats):
    """``(error, done after)`` per ``(first, last)`` beat, for a layer of ``n_beats`` beats."""
    out, k = [], 0
    for first, last in beats:
        done = k == n_beats
        error = done or first != (k == 0) or last != (k == n_beats - 1)
        if not done:
            k += 1
        out.append((int(error), int(k == n_beats)))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_framing_check_matches_model(seed, request):
    rng = np.random.default_rng(seed)
    dut = FramingCheck(max_beats=3)
    layers = []
    for _ in range(3):
        rows, cols, beats = (int(v) for v in rng.integers(1, 4, 3))
        n = rows * cols * beats
        good = [(int(k == 0), int(k == n - 1)) for k in range(n)]
        if seed:                         # corrupt a few beats, and add extra ones
            for k in rng.integers(0, n, seed):
                good[k] = (good[k][0] ^ int(rng.integers(0, 2)), good[k][1] ^ 1)
            good += [(0, 0)] * int(rng.integers(0, 3))
        layers.append((rows, cols, beats, good))
    seen = []

    async def bench(ctx):
        for rows, cols, beats, flags in layers:
            ctx.set(dut.begin, 1)
            await ctx.tick()
            ctx.set(dut.begin, 0)
            ctx.set(dut.last_row, rows - 1)
            ctx.set(dut.last_col, cols - 1)
            ctx.set(dut.last_beat, beats - 1)
            got = []
            for first, last in flags:
                gap = int(rng.integers(0, 3))   # back to back, or idle cycles between beats
                if gap:
                    ctx.set(dut.take, 0)
                    await ctx.tick().repeat(gap)
                ctx.set(dut.take, 1)
                ctx.set(dut.first, first)
                ctx.set(dut.last, last)
                error = ctx.get(dut.error)
                await ctx.tick()
                got.append((error, ctx.get(dut.done)))
            ctx.set(dut.take, 0)
            seen.append(got)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    with waves(sim, request.node.name):
        sim.run()
    for (rows, cols, beats, flags), got in zip(layers, seen):
        assert got == framing_model(rows * cols * beats, flags)
