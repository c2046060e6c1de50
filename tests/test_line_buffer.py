# amaranth: UnusedElaboratable=no
"""Line buffer: every lane gets pixel g*P + k + off of the stored groups, masked lanes zero."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.fire.line_buffer import LineBuffer, tap_rotations
from hw.flow.memories import design_memories


@pytest.mark.parametrize("lanes,groups,channels,latency,blocks,widths,late", [
    (4, 4, 8, 2, 1, None, False), (8, 8, 4, 5, 1, None, False), (1, 2, 2, 3, 1, None, False),
    (8, 4, 4, 5, 2, None, False),
    (4, 4, 2, 2, 4, None, False),     # written one block of lanes at a time
    (16, 4, 2, 3, 1, (13, 5), False), (16, 4, 2, 2, 1, (16, 7), False),
    (32, 2, 2, 6, 1, (27, 13), False),
    # the request delayed instead of the words read
    (8, 8, 4, 5, 1, None, True), (8, 4, 4, 6, 2, None, True), (4, 4, 8, 3, 1, None, True),
    (32, 2, 2, 6, 1, (27, 13), True), (16, 4, 2, 4, 1, (13, 5), True),
    (16, 4, 2, 5, 1, (13, 5), True)])
def test_shifted_reads(lanes, groups, channels, latency, blocks, widths, late):
    """Every rotation of range(P), or only those of the 3x3 taps of maps ``widths`` wide."""
    rng = np.random.default_rng(lanes + groups)
    rotations = None if widths is None else tap_rotations(widths, lanes)
    dut = LineBuffer(lanes=lanes, groups=groups, channels=channels, read_latency=latency,
                     write_blocks=blocks, rotations=rotations, late_read=late)
    store = rng.integers(0, 256, (groups, channels, lanes))
    rots = range(lanes) if rotations is None else rotations
    requests = [(int(rng.integers(groups)), int(rng.choice(rots)), int(rng.integers(channels)),
                 int(rng.integers(1 << lanes))) for _ in range(60)]
    got = []

    async def bench(ctx):
        width = 8 * lanes // blocks
        for g in range(groups):
            for c in range(channels):
                word = sum(int(v) << (8 * k) for k, v in enumerate(store[g, c]))
                for b in range(blocks):     # this block's lanes, junk in the others
                    mask = ((1 << width) - 1) << (b * width)
                    junk = int.from_bytes(rng.bytes(lanes), "little") & ~mask
                    ctx.set(dut.w_en, 1 << b)
                    ctx.set(dut.w_group, g)
                    ctx.set(dut.w_chan, c)
                    ctx.set(dut.w_data, word & mask | junk)
                    await ctx.tick()
        ctx.set(dut.w_en, 0)
        outputs = []
        for group, rot, chan, mask in requests + [(0, 0, 0, 0)] * latency:
            ctx.set(dut.r_group, group)
            ctx.set(dut.r_rot, rot)
            ctx.set(dut.r_chan, chan)
            ctx.set(dut.r_mask, mask)
            await ctx.tick()
            outputs.append(ctx.get(dut.r_data))
        got.extend(outputs[latency - 1:latency - 1 + len(requests)])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for (group, rot, chan, mask), word in zip(requests, got):
        lanes_out = [(word >> (8 * k)) & 0xFF for k in range(lanes)]
        expected = []
        for k in range(lanes):
            g, lane = (group + (k + rot) // lanes) % groups, (k + rot) % lanes
            expected.append(int(store[g, chan, lane]) if mask >> k & 1 else 0)
        np.testing.assert_array_equal(lanes_out, expected)


def test_parameter_errors():
    with pytest.raises(ValueError, match="Lane count must be at least 1, not 0"):
        LineBuffer(lanes=0, groups=4, channels=4)
    with pytest.raises(ValueError, match="Group count must be at least 2"):
        LineBuffer(lanes=4, groups=1, channels=4)
    with pytest.raises(ValueError, match="Read latency must be at least 2, not 1"):
        LineBuffer(lanes=4, groups=4, channels=4, read_latency=1)
    with pytest.raises(TypeError, match="Lane count must be an integer, not 4.0"):
        LineBuffer(lanes=4.0, groups=4, channels=4)
    with pytest.raises(TypeError, match="Read latency must be an integer, not '2'"):
        LineBuffer(lanes=4, groups=4, channels=4, read_latency="2")
    with pytest.raises(ValueError, match="Rotations must be integers from 0 to 3, not \\[4\\]"):
        LineBuffer(lanes=4, groups=4, channels=4, rotations=[4])
    with pytest.raises(ValueError, match="Line-buffer RAM must be one of block, distributed, "
                                         "not 'lut'"):
        LineBuffer(lanes=4, groups=4, channels=4, ram="lut")


def test_distributed_ram_reaches_the_memories():
    """``ram="distributed"`` marks both halves (each block of lanes) for LUT RAM."""
    lbuf = LineBuffer(lanes=8, groups=4, channels=4, write_blocks=2, ram="distributed")
    styles = {spec.name: spec.style for spec in design_memories(lbuf)}
    assert styles == dict.fromkeys(["half0_0", "half0_1", "half1_0", "half1_1"], "distributed")
    assert {s.style for s in design_memories(LineBuffer(lanes=8, groups=4, channels=4))} == {None}


def test_tap_rotations():
    """(dy*W + dx) mod P, worked by hand for W = 13 on 16 lanes: 0, ±1, ±13 and ±13 ± 1."""
    assert tap_rotations([13], 16) == [0, 1, 2, 3, 4, 12, 13, 14, 15]
