# amaranth: UnusedElaboratable=no
"""Entry pipeline alone, fed by hand as the sequencer would: a Fire layer small enough for one
pixel group, squeeze then expand, bit-exact with golden.fixed.fire; the last result is written
``latency`` cycles after the flush."""

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module, Signal, unsigned
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

from golden.fixed import fire as golden_fire
from hw.blocks.weight_store import WeightStore
from hw.fire.entry_pipeline import EntryPipeline
from hw.fire.program import EngineProgram
from testkit.fire_cases import random_fire
from testkit.waves import waves


def pow2(n):
    return 1 << max(0, (n - 1).bit_length())


class Harness(Elaboratable):
    """Weight store + entry pipeline + an input buffer holding one group in slot 0."""

    def __init__(self, program, lanes, groups, x):
        fire = program.fires[0]
        self.in_slot = pow2(fire.in_channels)
        self.out_slot = pow2(fire.out_channels)
        self.store = WeightStore(program, bank_depth=16)
        self.pipe = EntryPipeline(program, lanes=lanes, groups=groups, in_slot=self.in_slot,
                                  sq_slot=pow2(fire.squeeze_channels), out_slot=self.out_slot)
        cin, h, w = x.shape
        pixels = x.reshape(cin, h * w)
        self.words = [sum(int(pixels[c, k]) << (8 * k) for k in range(h * w)) for c in range(cin)]
        self.entry_addr = Signal(range(max(2, len(program.entries))))

    def elaborate(self, platform):
        m = Module()
        m.submodules.store = store = self.store
        m.submodules.pipe = pipe = self.pipe
        m.submodules.x = x = Memory(shape=unsigned(len(pipe.x_data)), depth=2 * self.in_slot,
                                    init=self.words)
        rd = x.read_port()
        m.d.comb += [
            store.entry_addr.eq(self.entry_addr), pipe.entry.eq(store.entry),
            store.codebook_addr.eq(pipe.codebook_addr), pipe.weight.eq(store.weight),
            store.bias_addr.eq(pipe.bias_addr), pipe.bias.eq(store.bias),
            rd.addr.eq(pipe.x_addr), pipe.x_data.eq(rd.data),
        ]
        return m


@pytest.mark.parametrize("lanes,cin,csq,e1,e3,height,width", [
    (16, 6, 3, 4, 4, 3, 4), (8, 5, 2, 3, 2, 2, 3), (4, 3, 4, 2, 5, 2, 2), (2, 4, 2, 2, 2, 1, 2),
    (24, 5, 3, 3, 4, 4, 5),
])
def test_one_group_fire_bit_exact(lanes, cin, csq, e1, e3, height, width, request):
    rng = np.random.default_rng(lanes * 31 + cin)
    convs = random_fire(rng, "fireP", cin, csq, e1, e3, density=0.5)
    program = EngineProgram([("fireP", height, width, *convs)])
    fire = program.fires[0]
    x = rng.integers(0, 256, (cin, height, width)).astype(np.uint8)
    groups = 4                     # the one group is group 0; its neighbours are masked
    dut = Harness(program, lanes, groups, x)
    pipe = dut.pipe
    pix = np.arange(lanes)
    col = pix % width
    flags = {"top_ok": pix >= width, "bot_ok": pix < height * width - width,
             "left_ok": col != 0, "right_ok": col != width - 1}
    writes = []
    timing = {}

    async def bench(ctx):
        d = pipe.desc
        ctx.set(d.cin, fire.in_channels)
        ctx.set(d.csq, fire.squeeze_channels)
        ctx.set(d.e1, fire.expand1x1.out_channels)
        for k, conv in enumerate(fire.convs):
            ctx.set(d.cbbase[k], conv.codebook_base)
            ctx.set(d.bbase[k], conv.bias_base)
            ctx.set(d.shift[k], conv.shift)
        ctx.set(d.dbase[2], fire.expand1x1.out_channels)   # 3x3 channels after the 1x1 ones
        for t in range(9):
            off = (t // 3 - 1) * width + (t % 3 - 1)
            ctx.set(pipe.tap_group[t], (off // lanes) % groups)
            ctx.set(pipe.tap_rot[t], off % lanes if lanes > 1 else 0)
        for name, bits in flags.items():
            ctx.set(getattr(pipe, name), sum(int(b) << k for k, b in enumerate(bits)))
        cycle = 0

        async def tick():
            nonlocal cycle
            *_, en, addr, data = await ctx.tick().sample(pipe.o_en, pipe.o_addr, pipe.o_data)
            if en:
                writes.append((addr, data))
                timing["last_write"] = cycle
            cycle += 1

        for phases in ((0,), (1, 2)):
            for phase in phases:
                conv = fire.convs[phase]
                for j in range(conv.entry_count):
                    ctx.set(pipe.issue_valid, 1)
                    ctx.set(pipe.issue_phase, phase)
                    ctx.set(pipe.issue_restart, int(j == 0))
                    ctx.set(dut.entry_addr, conv.entry_base + j)
                    await tick()
            ctx.set(pipe.issue_valid, 0)
            ctx.set(pipe.issue_flush, 1)
            timing["flush"] = cycle
            await tick()
            ctx.set(pipe.issue_flush, 0)
            for _ in range(EntryPipeline.latency + 3):
                await tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    with waves(sim, request.node.name):
        sim.run()
    expected = golden_fire(x, *convs)
    got = np.full(expected.shape, -1, np.int64)
    for addr, data in writes:
        channel = addr % dut.out_slot
        assert addr // dut.out_slot == 0, "expand results go to output slot 0 (group 0)"
        for p in range(height * width):
            got[channel, p // width, p % width] = (data >> (8 * p)) & 0xFF
    np.testing.assert_array_equal(got, expected)
    assert len(writes) == fire.out_channels
    assert timing["last_write"] - timing["flush"] == EntryPipeline.latency
