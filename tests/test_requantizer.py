# amaranth: UnusedElaboratable=no
"""Requantiser block against golden.fixed.requantize, every shift, boundaries and extremes."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.fixed import requantize
from hw.blocks.requantizer import Requantizer


@pytest.mark.parametrize("early_shift,given", [
    (False, None), (True, None),
    # Restricted to a program's shifts: SqueezeNet v1.0's, both ends, a single one, and one
    # that starts at 1 (no low bits dropped, but not the full set).
    (True, [13, 14, 15, 16, 17]), (False, [0, 9, 31]), (True, [20]), (False, [1, 2, 8]),
])
def test_requantizer_matches_golden(early_shift, given):
    rng = np.random.default_rng(0)
    accs, shifts = [], []
    for shift in (range(32) if given is None else given):
        edges = [-(1 << 31), (1 << 31) - 1, 0, -1, 1]
        if shift:
            half = 1 << (shift - 1)
            edges += [255 * (1 << shift) + half - 1, 255 * (1 << shift) + half,
                      256 * (1 << shift) - half - 1, 256 * (1 << shift) - half, half - 1, half,
                      -half, -half - 1]
        edges = [e for e in edges if -(1 << 31) <= e < 1 << 31]
        edges += rng.integers(-(1 << 31), 1 << 31, 40).tolist()
        accs += edges
        shifts += [shift] * len(edges)
    order = rng.permutation(len(accs))
    accs = [int(accs[i]) for i in order]
    shifts = [int(shifts[i]) for i in order]
    dut = Requantizer(early_shift=early_shift, shifts=given)
    got = []

    async def bench(ctx):
        # A new shift every cycle: each value must use its own (given a cycle ahead of it
        # with early_shift).
        outputs = []
        if early_shift:
            ctx.set(dut.shift, shifts[0])
            await ctx.tick()
        pad = shifts[0]
        ahead = shifts[1:] + [pad] * 3 if early_shift else shifts + [pad] * 2
        for acc, shift in zip(accs + [0, 0], ahead):
            ctx.set(dut.acc, acc)
            ctx.set(dut.shift, shift)
            await ctx.tick()
            outputs.append(ctx.get(dut.o))
        got.extend(outputs[Requantizer.latency - 1:-1])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    expected = [int(requantize(np.array([a], np.int64), s)[0]) for a, s in zip(accs, shifts)]
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("acc_width,exc,message", [
    (8, ValueError, "Accumulator width must be at least 9, not 8"),
    ("32", TypeError, "Accumulator width must be an integer, not '32'"),
])
def test_parameter_errors(acc_width, exc, message):
    with pytest.raises(exc, match=message):
        Requantizer(acc_width)


@pytest.mark.parametrize("shifts", [[], [32], [-1], [True], [1.5]])
def test_shift_set_errors(shifts):
    with pytest.raises(ValueError, match="Shifts must be integers from 0 to 31"):
        Requantizer(shifts=shifts)
