# amaranth: UnusedElaboratable=no
"""RasterCounter against a list of raster positions."""

import re

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.board.raster import RasterCounter
from testkit.waves import waves


def raster(rows, cols, beats):
    """Positions in stream order."""
    return [(r, c, b) for r in range(rows) for c in range(cols) for b in range(beats)]


@pytest.mark.parametrize("rows, cols, beats", [(1, 1, 1), (2, 3, 1), (3, 2, 4), (1, 5, 2)])
def test_raster_counter_walks_and_wraps(rows, cols, beats, request):
    dut = RasterCounter(max_beats=4)
    rng = np.random.default_rng(rows * 100 + cols * 10 + beats)
    expected = raster(rows, cols, beats) * 2            # wraps back to the origin
    seen = []

    async def bench(ctx):
        ctx.set(dut.last_row, rows - 1)
        ctx.set(dut.last_col, cols - 1)
        ctx.set(dut.last_beat, beats - 1)
        while len(seen) < len(expected):
            advance = int(rng.integers(0, 2))
            ctx.set(dut.advance, advance)
            position = (ctx.get(dut.row), ctx.get(dut.col), ctx.get(dut.beat))
            if advance:
                seen.append((position, ctx.get(dut.first), ctx.get(dut.last)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    with waves(sim, request.node.name):
        sim.run()
    n = rows * cols * beats
    assert seen == [(p, int(k % n == 0), int(k % n == n - 1)) for k, p in enumerate(expected)]


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (-1, ValueError), (2.0, TypeError),
                                      (True, TypeError)])
def test_raster_counter_parameters_are_checked(bad, exc):
    with pytest.raises(exc, match=re.escape(f"Beats per pixel must be a positive integer, "
                                            f"not {bad!r}")):
        RasterCounter(bad)
