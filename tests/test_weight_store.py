# amaranth: UnusedElaboratable=no
"""Weight store: banked ROMs return every word three cycles after its address."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.sim import Simulator

from hw.fire.program import EngineProgram
from hw.blocks.weight_store import BankedROM, WeightStore

from testkit.fire_cases import random_fire


def read_all(dut, addresses, addr=None, data=None):
    """Words read from ``dut`` (its ``addr``/``data`` ports unless given), one per cycle."""
    addr = dut.addr if addr is None else addr
    data = dut.data if data is None else data
    got = []

    async def bench(ctx):
        pending = []
        for a in list(addresses) + [0] * dut.latency:
            ctx.set(addr, int(a))
            await ctx.tick()
            pending.append(ctx.get(data))
        got.extend(pending[dut.latency - 1:-1])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("depth,bank_depth,shape", [
    (100, 16, unsigned(12)), (64, 64, signed(16)), (37, 4096, signed(32)), (1, 16, unsigned(4)),
])
def test_banked_rom_random_order(depth, bank_depth, shape):
    rng = np.random.default_rng(depth)
    lo, hi = (-(1 << (shape.width - 1)), 1 << (shape.width - 1)) if shape.signed \
        else (0, 1 << shape.width)
    init = rng.integers(lo, hi, depth).tolist()
    rom = BankedROM(shape, init, bank_depth=bank_depth)
    assert len(rom.banks) == -(-depth // min(bank_depth, 1 << max(0, (depth - 1).bit_length())))
    addresses = rng.integers(0, depth, 3 * depth)
    np.testing.assert_array_equal(read_all(rom, addresses), np.array(init)[addresses])


def test_weight_store_holds_the_program():
    rng = np.random.default_rng(1)
    program = EngineProgram([("fireA", 4, 4, *random_fire(rng, "fireA", 6, 3, 4, 4))])
    store = WeightStore(program, bank_depth=16)
    names = [name for name, _, _ in store.memories]
    assert names[0] == "entries0" and "codebooks0" in names and "biases0" in names
    assert sum(d for n, _, d in store.memories if n.startswith("entries")) == len(program.entries)
    assert all(w == program.entry_width for n, w, _ in store.memories if n.startswith("entries"))
    np.testing.assert_array_equal(
        read_all(store, range(len(program.entries)), store.entry_addr, store.entry),
        program.entries)


@pytest.mark.parametrize("bank_depth,exc,message", [
    (100, ValueError, "Bank depth must be a power of two of at least 16, not 100"),
    (8, ValueError, "Bank depth must be a power of two of at least 16, not 8"),
    ("16", TypeError, "Bank depth must be an integer, not '16'"),
])
def test_bank_depth_errors(bank_depth, exc, message):
    with pytest.raises(exc, match=message):
        BankedROM(unsigned(8), [1, 2, 3], bank_depth=bank_depth)
