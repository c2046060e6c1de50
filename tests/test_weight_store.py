# amaranth: UnusedElaboratable=no
"""Weight store and banked ROM: every word comes back four cycles (``latency``) after its
address, in any order, across bank boundaries."""

import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.sim import Simulator

from hw.blocks.banked_rom import BankedROM
from hw.blocks.weight_store import WeightStore
from hw.fire.program import EngineProgram
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


def test_latency_is_five():
    assert BankedROM.latency == 5 and WeightStore.latency == 5


# (words, bank depth, shape, banks): banks are min(bank depth, words rounded up to a power of
# two) deep, so 100 words in 16-word banks take 7 banks and 37 words one 64-word bank.
@pytest.mark.parametrize("depth,bank_depth,shape,banks", [
    (100, 16, unsigned(12), 7), (64, 64, signed(16), 1), (37, 4096, signed(32), 1),
    (1, 16, unsigned(4), 1), (33, 16, signed(8), 3),
])
def test_banked_rom_random_order(depth, bank_depth, shape, banks):
    rng = np.random.default_rng(depth)
    lo, hi = (-(1 << (shape.width - 1)), 1 << (shape.width - 1)) if shape.signed \
        else (0, 1 << shape.width)
    init = rng.integers(lo, hi, depth).tolist()
    rom = BankedROM(shape, init, bank_depth=bank_depth)
    assert len(rom.banks) == banks
    addresses = rng.integers(0, depth, 3 * depth)
    np.testing.assert_array_equal(read_all(rom, addresses), np.array(init)[addresses])


def test_weight_store_holds_the_program():
    """Entries, codebooks and biases of a program, each read back in full through the store's
    own ports, across several 16-word banks."""
    rng = np.random.default_rng(1)
    program = EngineProgram([("fireA", 4, 4, *random_fire(rng, "fireA", 6, 3, 4, 4))])
    assert len(program.entries) > 16 and len(program.codebooks) > 16
    for name, addr, data, want in (
            ("entries", "entry_addr", "entry", program.entries),
            ("codebooks", "codebook_addr", "weight", program.codebooks),
            ("biases", "bias_addr", "bias", program.biases)):
        store = WeightStore(program, bank_depth=16)
        got = read_all(store, range(len(want)), getattr(store, addr), getattr(store, data))
        np.testing.assert_array_equal(got, want, err_msg=name)


@pytest.mark.parametrize("bank_depth,exc,message", [
    (100, ValueError, "Bank depth must be a power of two of at least 16, not 100"),
    (8, ValueError, "Bank depth must be a power of two of at least 16, not 8"),
    ("16", TypeError, "Bank depth must be an integer, not '16'"),
])
def test_bank_depth_errors(bank_depth, exc, message):
    with pytest.raises(exc, match=message):
        BankedROM(unsigned(8), [1, 2, 3], bank_depth=bank_depth)


def test_empty_rom_is_an_error():
    with pytest.raises(ValueError, match="A ROM needs at least one word"):
        BankedROM(unsigned(8), [])
