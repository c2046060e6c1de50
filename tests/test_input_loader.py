# amaranth: UnusedElaboratable=no
"""Input loader alone: pixels streamed in with random gaps land in the right slot, lane and
channel; a slot is only refilled after the consumer released it."""

import numpy as np
import pytest

from hw.fire.input_loader import InputLoader
from testkit.streams import send_beats
from testkit.simulate import simulate


async def start_run(ctx, dut, pixels, beats):
    """Pulse ``go`` for a run of ``pixels`` pixels of ``beats`` beats."""
    ctx.set(dut.pixels, pixels)
    ctx.set(dut.beats, beats)
    ctx.set(dut.go, 1)
    await ctx.tick()
    ctx.set(dut.go, 0)


def run_loader(lanes, beat, slot, pixels, beats, *, seed, valid_prob=0.6, hold=(0, 12),
               name="loader", read_ports=1, per_cycle=1):
    """Stream ``pixels`` random pixels of ``beats`` beats; return (expected, got) per group.

    The consumer waits for each group's slot to be full, keeps it a random number of cycles in
    ``hold``, reads all ``beats * beat`` channels back through ``r_addr``/``r_data`` and
    releases it.
    """
    rng = np.random.default_rng(seed)
    dut = InputLoader(lanes=lanes, channels_per_beat=beat, channels=slot, read_ports=read_ports,
                      channels_per_cycle=per_cycle)
    ports = [(dut.r_addr, dut.r_data)] + [(getattr(dut, f"r_addr{n}"), getattr(dut, f"r_data{n}"))
                                          for n in range(1, read_ports)]
    data = rng.integers(0, 256, (pixels, beats * beat))
    groups = -(-pixels // lanes)
    got = {}

    async def producer(ctx):
        await start_run(ctx, dut, pixels, beats)
        await send_beats(ctx, dut.i, data.reshape(-1, beat), rng, valid_prob=valid_prob,
                         framed=False)

    async def consumer(ctx):
        await ctx.tick()
        for g in range(groups):
            s = g % 2
            while not (ctx.get(dut.full) >> s) & 1:
                await ctx.tick()
            for _ in range(int(rng.integers(*hold))):
                await ctx.tick()
            n = beats * beat
            words = [[None] * n for _ in ports]
            for c in range(n):          # port p reads the channels rotated by p
                for p, (addr, _) in enumerate(ports):
                    ctx.set(addr, s * slot + (c + p) % n)
                await ctx.tick()
                for p, (_, data_out) in enumerate(ports):
                    words[p][(c + p) % n] = ctx.get(data_out)
            got[g] = words[0]
            assert all(w == words[0] for w in words), "read ports disagree"
            ctx.set(dut.release, 1 << s)
            await ctx.tick()
            ctx.set(dut.release, 0)
        assert ctx.get(dut.full) == 0

    # Far more cycles than the run needs (a stalled loader ends here, not in a hang).
    simulate(dut, producer, consumer, name=name,
             deadline_cycles=20 * (100 + pixels * beats * beat + groups * (hold[1] + beats * beat)))
    assert len(got) == groups, "the loader stalled"
    for g in range(groups):
        for c, word in enumerate(got[g]):
            for k in range(min(lanes, pixels - g * lanes)):
                assert (word >> (8 * k)) & 0xFF == data[g * lanes + k, c], (g, c, k)


@pytest.mark.parametrize("lanes,beat,slot,pixels,beats", [
    (4, 2, 8, 11, 3), (1, 1, 4, 5, 4), (8, 4, 16, 20, 2), (2, 3, 8, 7, 2), (4, 4, 4, 4, 1),
])
def test_groups_land_in_slots(lanes, beat, slot, pixels, beats, request):
    run_loader(lanes, beat, slot, pixels, beats, seed=lanes * 7 + pixels,
               name=request.node.name)


def test_extra_read_ports(request):
    run_loader(4, 2, 8, 11, 3, seed=5, name=request.node.name, read_ports=3)


@pytest.mark.parametrize("lanes,beat,slot,pixels,beats,per_cycle", [
    (4, 4, 8, 11, 2, 2), (8, 8, 16, 19, 2, 8), (8, 4, 8, 9, 2, 4), (2, 6, 8, 5, 1, 2),
])
def test_several_channels_per_cycle(lanes, beat, slot, pixels, beats, per_cycle, request):
    """W > 1: the skewed banks; read ports and gaps as above."""
    run_loader(lanes, beat, slot, pixels, beats, seed=pixels, name=request.node.name,
               per_cycle=per_cycle, read_ports=2)


def test_beat_every_cycle_at_full_width():
    """W = L: with the stream always valid a beat is taken every cycle of a group."""
    from testkit.simulate import simulate as sim
    dut = InputLoader(lanes=4, channels_per_beat=4, channels=8, channels_per_cycle=4)
    taken = []

    async def bench(ctx):
        await start_run(ctx, dut, 4, 2)
        ctx.set(dut.i.valid, 1)
        for cycle in range(12):
            if ctx.get(dut.i.ready):
                taken.append(cycle)
            await ctx.tick()

    sim(dut, bench, name="loader_full_width")
    assert taken == list(range(8))


def test_full_ready_without_gaps(request):
    run_loader(4, 2, 8, 13, 4, seed=3, valid_prob=1.0, hold=(0, 1), name=request.node.name)


@pytest.mark.parametrize("per_cycle", [1, 2])
def test_last_channel_is_in_the_ram_the_cycle_after_full(per_cycle, request):
    """The writes are registered: a group's last channel reaches the RAM one cycle after its
    slot turns ``full``, so a read in that first cycle still sees the old word and a read from
    the next cycle on sees the new one (every consumer reads several cycles after ``full``)."""
    lanes, beat, slot = 2, 2, 4
    dut = InputLoader(lanes=lanes, channels_per_beat=beat, channels=slot,
                      channels_per_cycle=per_cycle)
    data = [[11, 12], [21, 22]]        # two pixels of one beat: one group
    seen = {}

    async def bench(ctx):
        await start_run(ctx, dut, 2, 1)
        rng = np.random.default_rng(0)
        await send_beats(ctx, dut.i, np.array(data), rng, framed=False)
        ctx.set(dut.i.valid, 0)
        ctx.set(dut.r_addr, beat - 1)            # slot 0, the last channel
        while not ctx.get(dut.full) & 1:
            await ctx.tick()
        await ctx.tick()                         # read in the first cycle of full
        seen["first"] = ctx.get(dut.r_data)
        await ctx.tick()                         # and in the second
        seen["second"] = ctx.get(dut.r_data)

    simulate(dut, bench, name=request.node.name, deadline_cycles=200)
    assert seen["second"] == 12 | 22 << 8
    assert seen["first"] != seen["second"]


@pytest.mark.parametrize("kwargs,exc,message", [
    ({"lanes": 3}, ValueError, "Lane count must be 1, 2, 4 or a multiple of 8 up to 1024, not 3"),
    ({"lanes": 12}, ValueError, "Lane count must be 1, 2, 4 or a multiple of 8"),
    ({"lanes": 4.0}, TypeError, "Lane count must be an integer, not 4.0"),
    ({"channels": 12}, ValueError, "Channel count must be a power of two, not 12"),
    ({"channels_per_beat": 16}, ValueError, "Channels per beat must be from 1 to 8, not 16"),
    ({"channels_per_beat": "2"}, TypeError, "Channels per beat must be an integer, not '2'"),
    ({"channels_per_cycle": 3}, ValueError, "Channels per cycle must be a power of two, not 3"),
    ({"channels_per_cycle": 4}, ValueError, "Channels per cycle must divide the channels per "
                                            r"beat \(2\)"),
    ({"lanes": 24, "channels_per_beat": 16, "channels": 16, "channels_per_cycle": 16}, ValueError,
     r"Channels per cycle must divide the channels per beat \(16\) and the lane count \(24\)"),
])
def test_parameter_errors(kwargs, exc, message):
    args = {"lanes": 4, "channels_per_beat": 2, "channels": 8, **kwargs}
    with pytest.raises(exc, match=message):
        InputLoader(**args)
