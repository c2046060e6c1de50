# amaranth: UnusedElaboratable=no
"""CommandDecoder against the protocol's command table, with stand-ins for its neighbours."""

import pytest
from amaranth.sim import Simulator

from hw.board.command_decoder import CommandDecoder
from hw.board.protocol import (ACK, CMD_PING, CMD_RUN, DONE, DONE_RX_ERROR, ERR_TIMEOUT,
                               ERR_UNKNOWN, NAK)
from testkit.waves import waves

LAYERS = [(3, 8), (10, 3)]
TIMEOUT = 20


def expected_reply(command, n_layers=len(LAYERS)):
    """The one-byte answer to a command that does not start a run."""
    if command[0] not in (CMD_PING, CMD_RUN):
        return ERR_UNKNOWN
    _, layer, height, width = command
    return NAK if layer >= n_layers or not height or not width else ACK


def decoder_sim(request, script):
    dut = CommandDecoder(LAYERS, channels_per_beat=4, timeout=TIMEOUT)
    replies, starts = [], []

    async def transmitter(ctx):               # takes replies at once, a PING in 5 cycles
        ctx.set(dut.reply.ready, 1)
        pinging = 0
        async for _, _, valid, byte, ping in ctx.tick().sample(
                dut.reply.valid, dut.reply.payload, dut.ping.valid):
            if valid:
                replies.append(byte)
            pinging = pinging + 1 if ping else 0
            ctx.set(dut.ping.ready, pinging == 5)
            if pinging == 5:
                replies.append("ping")

    async def engine(ctx):
        ctx.set(dut.start.ready, 1)
        async for _, _, valid, payload in ctx.tick().sample(dut.start.valid, dut.start.payload):
            if valid:
                starts.append((payload.layer, payload.height, payload.width))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(transmitter, background=True)
    sim.add_testbench(engine, background=True)

    async def main(ctx):
        await script(ctx, dut)
    sim.add_testbench(main)
    with waves(sim, request.node.name):
        sim.run()
    return replies, starts


async def send(ctx, dut, data):
    for byte in data:
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.i.payload, byte)
        await ctx.tick().until(dut.i.ready)
    ctx.set(dut.i.valid, 0)


def test_command_decoder_answers_commands(request):
    commands = [[0x7F], [CMD_RUN, 2, 1, 1], [CMD_RUN, 0x10, 1, 1], [CMD_RUN, 0, 0, 1],
                [CMD_RUN, 0, 1, 0], [0x02]]

    async def script(ctx, dut):
        for command in commands:
            await send(ctx, dut, command)
            await ctx.tick().repeat(3)
        await send(ctx, dut, [CMD_PING])
        await ctx.tick().repeat(10)

    replies, starts = decoder_sim(request, script)
    assert replies == [expected_reply(c) for c in commands] + ["ping"]
    assert starts == []


def test_command_decoder_runs_a_layer(request):
    geometry = []

    async def script(ctx, dut):
        await send(ctx, dut, [CMD_RUN, 1, 2, 3])
        await ctx.tick().until(dut.running)
        geometry.append([ctx.get(s) for s in (dut.last_row, dut.last_col, dut.in_last_beat,
                                              dut.out_beats, dut.out_last_beat)])
        ctx.set(dut.rx_error, 1)
        await ctx.tick()
        ctx.set(dut.rx_error, 0)
        ctx.set(dut.engine_done, 1)
        await ctx.tick()
        ctx.set(dut.engine_done, 0)
        ctx.set(dut.in_done, 1)
        await ctx.tick().repeat(5)
        assert ctx.get(dut.running)              # the output is not out yet
        ctx.set(dut.out_done, 1)
        await ctx.tick().until(~dut.running)
        await ctx.tick().repeat(3)

    replies, starts = decoder_sim(request, script)
    # Layer 1: 10 channels in 3 beats of 4, 3 channels out in 1 beat.
    assert geometry == [[1, 2, 2, 1, 0]]
    assert starts == [(1, 2, 3)]
    assert replies == [ACK, DONE | DONE_RX_ERROR]


@pytest.mark.parametrize("where", ["header", "run"])
def test_command_decoder_times_out(where, request):
    waited = []

    async def script(ctx, dut):
        if where == "header":
            await send(ctx, dut, [CMD_RUN, 0])
        else:
            await send(ctx, dut, [CMD_RUN, 0, 1, 1])
            await ctx.tick().until(dut.running)
            ctx.set(dut.starving, 1)
        cycles = 0
        while not (ctx.get(dut.reply.valid) or ctx.get(dut.abort)):
            await ctx.tick()
            cycles += 1
        waited.append(cycles)
        ctx.set(dut.starving, 0)
        ctx.set(dut.engine_done, 1)
        ctx.set(dut.in_done, 1)
        ctx.set(dut.out_done, 1)
        await ctx.tick().repeat(5)

    replies, _ = decoder_sim(request, script)
    if where == "header":
        assert replies == [ERR_TIMEOUT]
        assert waited == [TIMEOUT]
    else:
        assert replies == [ACK, ERR_TIMEOUT]
        assert waited[0] in (TIMEOUT, TIMEOUT + 1)  # + 1 when the ACK went out first


@pytest.mark.parametrize("bad, exc", [(0, ValueError), (1.5, TypeError)])
def test_command_decoder_timeout_is_checked(bad, exc):
    with pytest.raises(exc, match=f"Timeout must be a positive integer, not {bad!r}"):
        CommandDecoder(LAYERS, 4, bad)
