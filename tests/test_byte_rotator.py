# amaranth: UnusedElaboratable=no
"""Byte rotator: output byte k is ring byte (k + amount) mod N, masked, after cuts + 1 cycles."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.blocks.byte_rotator import ByteRotator


@pytest.mark.parametrize("ring,out,cuts", [
    (2, 1, 0), (2, 2, 0), (4, 2, 1), (8, 4, 0), (8, 4, 2), (16, 8, 2), (16, 5, 3), (32, 32, 1),
    (128, 64, 2)])
def test_rotation_matches_the_model(ring, out, cuts):
    rng = np.random.default_rng(ring * 10 + out + cuts)
    dut = ByteRotator(ring, out, cuts=cuts)
    assert dut.latency == cuts + 1
    requests = [(rng.integers(0, 256, ring), int(rng.integers(ring)),
                 int.from_bytes(rng.bytes(out), "little") & ((1 << out) - 1)) for _ in range(40)]
    got = []

    async def bench(ctx):
        for data, amount, mask in requests + [(np.zeros(ring, int), 0, 0)] * dut.latency:
            ctx.set(dut.i_data, sum(int(v) << (8 * i) for i, v in enumerate(data)))
            ctx.set(dut.amount, amount)
            ctx.set(dut.mask, mask)
            await ctx.tick()
            got.append(ctx.get(dut.o_data))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    for (data, amount, mask), word in zip(requests, got[dut.latency - 1:]):
        expected = [int(data[(k + amount) % ring]) if mask >> k & 1 else 0 for k in range(out)]
        np.testing.assert_array_equal([(word >> (8 * k)) & 0xFF for k in range(out)], expected)


def test_parameter_errors():
    with pytest.raises(ValueError, match="Ring bytes must be a power of two of at least 2, not 6"):
        ByteRotator(6, 2)
    with pytest.raises(ValueError, match=r"Output bytes must be 1 \.\. 8, not 9"):
        ByteRotator(8, 9)
    with pytest.raises(ValueError, match=r"Cuts must be 0 \.\. 2 for 8 bytes, not 3"):
        ByteRotator(8, 4, cuts=3)
    with pytest.raises(TypeError, match="Cuts must be an integer, not 1.0"):
        ByteRotator(8, 4, cuts=1.0)
