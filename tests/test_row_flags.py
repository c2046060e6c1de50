# amaranth: UnusedElaboratable=no
"""Row flags: lane k of group g has a row above iff g*P + k >= W, below iff < pixels_above."""

import itertools

import pytest
from amaranth.hdl import Cat, Module, Signal
from amaranth.sim import Simulator

from hw.blocks.row_flags import column_flags, row_flags


def _sample(m, inputs, outputs, cases):
    """The values of ``outputs`` for each case of values of ``inputs`` (combinational)."""
    got = []

    async def bench(ctx):
        for case in cases:
            for signal, value in zip(inputs, case):
                ctx.set(signal, value)
            got.append(tuple(ctx.get(o) for o in outputs))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("lanes", [1, 4, 8, 24, 40])
def test_row_flags_against_the_pixel_comparisons(lanes):
    m = Module()
    group, width, above = Signal(6), Signal(8), Signal(17)
    top, bottom = row_flags(m, group, lanes, width, above)
    top_bits, bottom_bits = Signal(lanes), Signal(lanes)
    m.d.comb += [top_bits.eq(Cat(*top)), bottom_bits.eq(Cat(*bottom))]
    cases = list(itertools.product(range(0, 40, 3), (1, 3, 5, 8, 13, 27, 55),
                                   (0, 1, 7, 16, 30, 64, 100, 250)))
    got = _sample(m, (group, width, above), (top_bits, bottom_bits), cases)
    for (g, w, a), (t, b) in zip(cases, got):
        pixels = [g * lanes + k for k in range(lanes)]
        assert t == sum((p >= w) << k for k, p in enumerate(pixels)), (g, w, a)
        assert b == sum((p < a) << k for k, p in enumerate(pixels)), (g, w, a)


@pytest.mark.parametrize("block", [1, 2, 4, 8])
def test_column_flags_against_the_columns(block):
    """Every first column of every width the block fits: lane j's column is (b + j) mod W."""
    m = Module()
    first, width = Signal(8), Signal(8)
    left, right = column_flags(m, first, block, width)
    left_bits, right_bits = Signal(block), Signal(block)
    m.d.comb += [left_bits.eq(Cat(*left)), right_bits.eq(Cat(*right))]
    cases = [(b, w) for w in (*range(block, 20), 55, 255) for b in range(w)]
    got = _sample(m, (first, width), (left_bits, right_bits), cases)
    for (b, w), (lf, rt) in zip(cases, got):
        cols = [(b + j) % w for j in range(block)]
        assert lf == sum((c != 0) << j for j, c in enumerate(cols)), (b, w)
        assert rt == sum((c != w - 1) << j for j, c in enumerate(cols)), (b, w)
