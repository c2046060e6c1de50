# amaranth: UnusedElaboratable=no
"""Output drainer alone: groups written into its slots come out as beats in raster order,
padding channels zero, ``first``/``last`` framing, under random back-pressure; ``drained``
rises only after the last beat."""

import numpy as np
import pytest

from hw.fire.output_drainer import OutputDrainer
from testkit.streams import receive_until_last
from testkit.simulate import simulate


def expected_beats(results, beat, beats):
    """(pixels, channels) uint8 -> list of (bytes, first, last) beats: channels zero padded to
    ``beats * beat`` per pixel, raster order."""
    pixels, channels = results.shape
    padded = np.zeros((pixels, beats * beat), np.int64)
    padded[:, :channels] = results
    flat = padded.reshape(-1, beat)
    return [(list(map(int, row)), int(n == 0), int(n == len(flat) - 1))
            for n, row in enumerate(flat)]


def run_drainer(lanes, beat, slot, pixels, channels, *, seed, ready_prob=0.6, gap=(0, 8),
                name="drainer", per_cycle=1):
    rng = np.random.default_rng(seed)
    beats = -(-channels // beat)
    dut = OutputDrainer(lanes=lanes, channels_per_beat=beat, channels=slot,
                        channels_per_cycle=per_cycle)
    results = rng.integers(0, 256, (pixels, channels))
    groups = -(-pixels // lanes)
    got = []
    drained_early = []

    async def producer(ctx):
        ctx.set(dut.pixels, pixels)
        ctx.set(dut.out_channels, channels)
        ctx.set(dut.beats, beats)
        ctx.set(dut.go, 1)
        await ctx.tick()
        ctx.set(dut.go, 0)
        for g in range(groups):
            s = g % 2
            while (ctx.get(dut.full) >> s) & 1:
                await ctx.tick()
            for _ in range(int(rng.integers(*gap))):
                await ctx.tick()
            # Real channels, plus junk in the padding channels the drainer must send as zeros.
            for c in range(beats * beat):
                lanes_data = [int(results[g * lanes + k, c]) if c < channels and
                              g * lanes + k < pixels else int(rng.integers(1, 256))
                              for k in range(lanes)]
                ctx.set(dut.w_addr, s * slot + c)
                ctx.set(dut.w_data, sum(v << (8 * k) for k, v in enumerate(lanes_data)))
                ctx.set(dut.w_en, 1)
                await ctx.tick()
            ctx.set(dut.w_en, 0)
            ctx.set(dut.fill, 1 << s)
            await ctx.tick()
            ctx.set(dut.fill, 0)

    async def consumer(ctx):
        await ctx.tick()
        got.extend(await receive_until_last(ctx, dut.o, rng, ready_prob=ready_prob))
        ctx.set(dut.o.ready, 0)
        await ctx.tick()
        assert ctx.get(dut.drained), "drained stays low after the last beat"
        assert ctx.get(dut.full) == 0

    async def watch_drained(ctx):
        """Every cycle after ``go``: ``drained`` must stay low while beats are owed."""
        await ctx.tick()
        sent = 0
        async for _, _, drained, valid, ready in ctx.tick().sample(
                dut.drained, dut.o.valid, dut.o.ready):
            if drained and sent < pixels * beats:
                drained_early.append(sent)
            sent += valid & ready

    simulate(dut, producer, consumer, background=[watch_drained], name=name,
             deadline_cycles=40 * (100 + pixels * beats * beat + groups * (gap[1] + slot)))
    assert got == expected_beats(results, beat, beats)
    assert drained_early == [], "drained was high while beats were still owed"


@pytest.mark.parametrize("lanes,beat,slot,pixels,channels", [
    (4, 2, 8, 11, 5), (1, 1, 4, 5, 3), (8, 4, 16, 20, 16), (2, 3, 8, 7, 4), (4, 8, 8, 4, 8),
    # more than 8 lanes: the lane select in two steps
    (16, 4, 8, 37, 7), (32, 8, 8, 70, 5),
])
def test_groups_drain_in_raster_order(lanes, beat, slot, pixels, channels, request):
    run_drainer(lanes, beat, slot, pixels, channels, seed=lanes * 5 + pixels,
                name=request.node.name)


@pytest.mark.parametrize("lanes,beat,slot,pixels,channels,per_cycle", [
    (4, 4, 8, 11, 7, 2), (8, 8, 16, 19, 16, 8), (8, 4, 8, 9, 5, 4), (2, 6, 8, 5, 6, 2),
])
def test_several_channels_per_cycle(lanes, beat, slot, pixels, channels, per_cycle, request):
    """W > 1: the skewed banks, padding inside a chunk, back-pressure."""
    run_drainer(lanes, beat, slot, pixels, channels, seed=pixels, name=request.node.name,
                per_cycle=per_cycle)
    run_drainer(lanes, beat, slot, pixels, channels, seed=pixels + 1, ready_prob=1.0,
                gap=(0, 1), name=request.node.name + "_ready", per_cycle=per_cycle)


def test_always_ready(request):
    run_drainer(4, 2, 8, 13, 6, seed=9, ready_prob=1.0, gap=(0, 1), name=request.node.name)


def test_tail_latency():
    """The last beat is on ``o`` TAIL cycles after its channel's read is issued: measured with
    one pixel of one channel, always ready."""
    dut = OutputDrainer(lanes=1, channels_per_beat=1, channels=1)
    seen = {}

    async def bench(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.pixels, 1)
        ctx.set(dut.out_channels, 1)
        ctx.set(dut.beats, 1)
        ctx.set(dut.go, 1)
        await ctx.tick()
        ctx.set(dut.go, 0)
        ctx.set(dut.fill, 1)
        await ctx.tick()         # the slot is full from here: the read is issued this cycle
        ctx.set(dut.fill, 0)
        for n in range(20):
            if ctx.get(dut.o.valid) and "valid" not in seen:
                seen["valid"] = n
            await ctx.tick()

    simulate(dut, bench)
    assert seen["valid"] == OutputDrainer.TAIL - 1


@pytest.mark.parametrize("kwargs,exc,message", [
    ({"lanes": 6}, ValueError, "Lane count must be 1, 2, 4 or a multiple of 8 up to 1024, not 6"),
    ({"channels": "8"}, TypeError, "Channel count must be an integer, not '8'"),
    ({"channels_per_beat": 0}, ValueError, "Channels per beat must be from 1 to 8, not 0"),
])
def test_parameter_errors(kwargs, exc, message):
    args = {"lanes": 4, "channels_per_beat": 2, "channels": 8, **kwargs}
    with pytest.raises(exc, match=message):
        OutputDrainer(**args)


@pytest.mark.parametrize("bounds,blocks", [((2, 5), (1, 2, 1)), ((0, 3), (2, 1, 4)),
                                           ((6, 6), (1, 1, 1))])
def test_sources_each_hold_their_channels(bounds, blocks, request):
    """Three sources (the dataflow units) each write their own memory, at local channel
    addresses, some in blocks of lanes; the beats come out as one raster stream."""
    lanes, beat, slot, pixels, channels = 4, 2, 8, 9, 7
    caps = (8, 4, 8)
    rng = np.random.default_rng(sum(bounds))
    dut = OutputDrainer(lanes=lanes, channels_per_beat=beat, channels=slot, capacities=caps,
                        write_blocks=blocks)
    results = rng.integers(0, 256, (pixels, channels))
    beats = -(-channels // beat)
    edges = (0, *bounds, channels)
    got = []

    async def producer(ctx):
        ctx.set(dut.pixels, pixels)
        ctx.set(dut.out_channels, channels)
        ctx.set(dut.beats, beats)
        ctx.set(dut.bounds[0], bounds[0])
        ctx.set(dut.bounds[1], bounds[1])
        ctx.set(dut.go, 1)
        await ctx.tick()
        ctx.set(dut.go, 0)
        for g in range(-(-pixels // lanes)):
            s = g % 2
            while (ctx.get(dut.full) >> s) & 1:
                await ctx.tick()
            for u in range(3):
                sfx = str(u) if u else ""
                for c in range(edges[u], edges[u + 1]):
                    word = sum(int(results[g * lanes + k, c]) << (8 * k) for k in range(lanes)
                               if g * lanes + k < pixels)
                    bits = 8 * lanes // blocks[u]
                    for b in range(blocks[u]):      # one block of lanes per write, junk around
                        mask = ((1 << bits) - 1) << (b * bits)
                        junk = int(rng.integers(0, 1 << 30)) * 0x1_0000_0001 & ~mask
                        ctx.set(getattr(dut, f"w_addr{sfx}"), s * caps[u] + c - edges[u])
                        ctx.set(getattr(dut, f"w_data{sfx}"),
                                (word & mask | junk) & ((1 << 8 * lanes) - 1))
                        ctx.set(getattr(dut, f"w_en{sfx}"), 1 << b)
                        await ctx.tick()
                    ctx.set(getattr(dut, f"w_en{sfx}"), 0)
            ctx.set(dut.fill, 1 << s)
            await ctx.tick()
            ctx.set(dut.fill, 0)

    async def consumer(ctx):
        await ctx.tick()
        got.extend(await receive_until_last(ctx, dut.o, rng, ready_prob=0.7))

    simulate(dut, producer, consumer, name=request.node.name, deadline_cycles=5000)
    assert got == expected_beats(results, beat, beats)
