# amaranth: UnusedElaboratable=no
"""The 8N1 UART receiver and transmitter, in the Amaranth simulator."""

import re

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.sim import Simulator

from hw.board.uart import UARTRx, UARTTx
from testkit.waves import waves


@pytest.mark.parametrize("cls", [UARTRx, UARTTx])
@pytest.mark.parametrize("bad, exc", [(3, ValueError), (0, ValueError), (-8, ValueError),
                                      (4.0, TypeError), ("8", TypeError), (True, TypeError)])
def test_uart_divisor_is_checked(cls, bad, exc):
    with pytest.raises(exc, match=re.escape(f"Divisor must be an integer >= 4, not {bad!r}")):
        cls(bad)


def loopback(divisor):
    m = Module()
    m.submodules.tx = tx = UARTTx(divisor)
    m.submodules.rx = rx = UARTRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    sim = Simulator(m)
    sim.add_clock(1e-6)
    return sim, tx, rx


def watch_rx_errors(sim, rx):
    async def watch(ctx):
        async for _, _, error, overrun in ctx.tick().sample(rx.error, rx.overrun):
            assert not error, "framing error"
            assert not overrun, "overrun"
    sim.add_testbench(watch, background=True)


@pytest.mark.parametrize("divisor", [4, 5, 7, 16])
def test_uart_round_trip(divisor, request):
    rng = np.random.default_rng(divisor)
    data = [int(v) for v in rng.integers(0, 256, 48)]
    sim, tx, rx = loopback(divisor)
    watch_rx_errors(sim, rx)
    received = []

    async def producer(ctx):
        for byte in data:
            await ctx.tick().repeat(int(rng.integers(0, 3)) * int(rng.integers(0, 3 * divisor)) + 1)
            ctx.set(tx.i.payload, byte)
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
            ctx.set(tx.i.valid, 0)

    async def consumer(ctx):
        while len(received) < len(data):
            # Late, but never later than the next byte: the receiver cannot be stalled.
            await ctx.tick().repeat(int(rng.integers(1, 4 * divisor)))
            ctx.set(rx.o.ready, 1)
            payload, = await ctx.tick().sample(rx.o.payload).until(rx.o.valid)
            ctx.set(rx.o.ready, 0)
            received.append(payload)

    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    with waves(sim, request.node.name):
        sim.run()
    assert received == data


@pytest.mark.parametrize("divisor", [4, 9])
def test_uart_timing(divisor, request):
    """Back-to-back bytes are exactly 10 bits apart; RX latency matches its property."""
    sim, tx, rx = loopback(divisor)
    watch_rx_errors(sim, rx)
    transfers, arrivals = [], []

    async def producer(ctx):
        ctx.set(tx.i.valid, 1)
        cycle = 0
        for byte in (0x00, 0xFF, 0x5A, 0x81):
            ctx.set(tx.i.payload, byte)
            while True:
                _, _, ready = await ctx.tick().sample(tx.i.ready)
                cycle += 1
                if ready:
                    break
            transfers.append(cycle)
        ctx.set(tx.i.valid, 0)
        await ctx.tick().repeat(12 * divisor)

    async def consumer(ctx):
        ctx.set(rx.o.ready, 1)
        cycle = 0
        async for _, _, valid, payload in ctx.tick().sample(rx.o.valid, rx.o.payload):
            cycle += 1
            if valid:
                arrivals.append((cycle, payload))

    sim.add_testbench(producer)
    sim.add_testbench(consumer, background=True)
    with waves(sim, request.node.name):
        sim.run()
    assert [p for _, p in arrivals] == [0x00, 0xFF, 0x5A, 0x81]
    assert np.diff(transfers).tolist() == [tx.cycles_per_byte] * 3
    # The start bit goes out at the transfer's clock edge and ``o.valid`` rises ``latency``
    # edges later; sampling at an edge sees the value from before it, hence the + 1.
    latency = rx.latency
    assert [a - t for t, (a, _) in zip(transfers, arrivals)] == [latency + 1] * 4


def bitbang(ctx, pin, divisor):
    async def send(byte, stop=1, hold_low_bits=0):
        for bit in [0, *((byte >> n) & 1 for n in range(8)), stop]:
            ctx.set(pin, bit)
            await ctx.tick().repeat(divisor)
        if hold_low_bits:
            await ctx.tick().repeat(hold_low_bits * divisor)
        ctx.set(pin, 1)
        await ctx.tick().repeat(2 * divisor)
    return send


@pytest.mark.parametrize("divisor", [4, 6])
def test_uart_rx_framing_error(divisor, request):
    dut = UARTRx(divisor)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    events = []

    async def watch(ctx):
        ctx.set(dut.o.ready, 1)
        async for _, _, valid, payload, error in ctx.tick().sample(dut.o.valid, dut.o.payload,
                                                                    dut.error):
            if valid:
                events.append(("byte", payload))
            if error:
                events.append(("error",))

    async def bench(ctx):
        send = bitbang(ctx, dut.rx, divisor)
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(3)
        await send(0x55, stop=0)                   # framing error
        await send(0x0F, stop=0, hold_low_bits=3)  # a break must not retrigger the receiver
        # A glitch shorter than half a bit is no start bit.
        ctx.set(dut.rx, 0)
        await ctx.tick().repeat(divisor // 2 - 1)
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(12 * divisor)
        await send(0xA3)
        await ctx.tick().repeat(2 * divisor)

    sim.add_testbench(watch, background=True)
    sim.add_testbench(bench)
    with waves(sim, request.node.name):
        sim.run()
    assert events == [("error",), ("error",), ("byte", 0xA3)]


def test_uart_rx_overrun(request):
    dut = UARTRx(4)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    overruns = []

    async def watch(ctx):
        async for _, _, overrun in ctx.tick().sample(dut.overrun):
            if overrun:
                overruns.append(1)

    async def bench(ctx):
        send = bitbang(ctx, dut.rx, 4)
        ctx.set(dut.rx, 1)
        await send(0x11)
        await send(0x22)                            # nobody took 0x11: 0x22 is lost
        assert ctx.get(dut.o.valid) and ctx.get(dut.o.payload) == 0x11
        ctx.set(dut.o.ready, 1)
        await ctx.tick()
        ctx.set(dut.o.ready, 0)
        await send(0x33)
        assert ctx.get(dut.o.valid) and ctx.get(dut.o.payload) == 0x33

    sim.add_testbench(watch, background=True)
    sim.add_testbench(bench)
    with waves(sim, request.node.name):
        sim.run()
    assert overruns == [1]
