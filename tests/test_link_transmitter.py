# amaranth: UnusedElaboratable=no
"""LinkTransmitter: the byte stream parsed back into messages, against what was fed in."""

import re

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.board.protocol import CREDIT, DONE, PIXEL
from hw.board.transmitter import LinkTransmitter
from testkit.waves import waves

PING = bytes([0xF1, 2, 1, 3, 1, 5, 0, 7, 0])


def parse(data, pixel_bytes):
    """Messages in ``data``: ('credit',), ('pixel', bytes) or ('byte', b); CREDIT only between."""
    out, k = [], 0
    while k < len(data):
        if data[k] == CREDIT:
            out.append(("credit",))
        elif data[k] == PIXEL:
            out.append(("pixel", bytes(data[k + 1:k + 1 + pixel_bytes])))
            k += pixel_bytes
        else:
            out.append(("byte", data[k]))
        k += 1
    return out


@pytest.mark.parametrize("seed", range(3))
def test_transmitter_merges_messages(seed, request):
    rng = np.random.default_rng(seed)
    cpb, beats, pixels = 2, 2, 3
    dut = LinkTransmitter(cpb, max_beats=beats, ping_reply=PING, max_credits=4)
    out_data = rng.integers(0, 256, (pixels * beats, cpb)).tolist()
    sent = []

    async def uart(ctx):                          # takes a byte every 3 to 5 cycles
        wait = 0
        async for _, _, valid, ready, byte in ctx.tick().sample(dut.o.valid, dut.o.ready,
                                                                dut.o.payload):
            if valid and ready:
                sent.append(byte)
            wait = int(rng.integers(2, 5)) if ready else max(wait - 1, 0)
            ctx.set(dut.o.ready, wait == 0)

    async def engine(ctx):
        for k, lanes in enumerate(out_data):
            await ctx.tick().repeat(int(rng.integers(1, 8)))
            ctx.set(dut.engine.valid, 1)
            ctx.set(dut.engine.payload.data, lanes)
            await ctx.tick().until(dut.engine.ready)
            ctx.set(dut.engine.valid, 0)
        ctx.set(dut.out_done, 1)
        # A beat too many: taken and dropped.
        ctx.set(dut.engine.valid, 1)
        await ctx.tick().until(dut.engine.ready)
        ctx.set(dut.engine.valid, 0)

    async def control(ctx):
        ctx.set(dut.out_beats, beats)
        ctx.set(dut.running, 1)
        for _ in range(3):
            await ctx.tick().repeat(int(rng.integers(1, 30)))
            ctx.set(dut.credit, 1)
            await ctx.tick()
            ctx.set(dut.credit, 0)
        await ctx.tick().until(dut.out_done & ~dut.engine.valid)
        ctx.set(dut.credit, 1)                    # owed when the run ends: never sent
        await ctx.tick()
        ctx.set(dut.credit, 0)
        ctx.set(dut.running, 0)
        ctx.set(dut.reply.valid, 1)
        ctx.set(dut.reply.payload, DONE)
        await ctx.tick().until(dut.reply.ready)
        ctx.set(dut.reply.valid, 0)
        ctx.set(dut.ping.valid, 1)
        await ctx.tick().until(dut.ping.ready)
        ctx.set(dut.ping.valid, 0)
        await ctx.tick().repeat(40)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(uart, background=True)
    sim.add_testbench(engine)                # must get rid of its extra beat too
    sim.add_testbench(control)
    with waves(sim, request.node.name):
        sim.run()
    messages = parse(sent, beats * cpb)
    pixels_seen = [m[1] for m in messages if m[0] == "pixel"]
    expected = [bytes(sum(out_data[k * beats:(k + 1) * beats], [])) for k in range(pixels)]
    assert pixels_seen == expected
    assert messages.count(("credit",)) == 3
    tail = [m[1] for m in messages if m[0] == "byte"]
    assert bytes(tail) == bytes([DONE]) + PING
    assert messages[-len(PING) - 1:] == [("byte", b) for b in bytes([DONE]) + PING]


@pytest.mark.parametrize("bad, exc, message", [
    ([1, 2], TypeError, "PING reply must be bytes, not [1, 2]"),
    (b"", ValueError, "PING reply must not be empty, not b''"),
])
def test_transmitter_parameters_are_checked(bad, exc, message):
    with pytest.raises(exc, match=re.escape(message)):
        LinkTransmitter(2, 2, bad, 4)
