# amaranth: UnusedElaboratable=no
"""Sequencer alone, with stand-in loader and drainer: the order of issued entries and flushes,
the tap table, the border flags of every expanded group, and the slot handshakes, against a
Python model of the schedule."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.fire.entry_pipeline import EntryPipeline
from hw.fire.program import EngineProgram
from hw.fire.sequencer import Sequencer
from testkit.fire_cases import random_fire
from testkit.waves import waves

DRAIN = EntryPipeline.latency


def pow2(n):
    return 1 << max(0, (n - 1).bit_length())


def expected_schedule(fire, groups, reach):
    """Issue tokens in order: (phase, address, restart) per entry, "F" per flush."""
    tokens = []
    convs = fire.convs

    def conv_tokens(phase):
        c = convs[phase]
        return [(phase, c.entry_base + j, int(j == 0)) for j in range(c.entry_count)]

    for step in range(groups + reach):
        if step < groups:
            tokens += conv_tokens(0) + ["F"]
        if step >= reach:
            tokens += conv_tokens(1) + conv_tokens(2) + ["F"]
    return tokens


def run_sequencer(lanes, height, width, *, seed, name, layer=0):
    rng = np.random.default_rng(seed)
    convs = random_fire(rng, "fireS", 5, 3, 2, 3, density=0.3)
    program = EngineProgram([("fireS", height, width, *convs)])
    fire = program.fires[0]
    reach = -(-(width + 1) // lanes)
    D = max(2, pow2(2 * reach + 1))
    dut = Sequencer(program, lanes=lanes, channels_per_beat=2, groups=D, drain=DRAIN)
    pixels = height * width
    groups = -(-pixels // lanes)
    trace = {"tokens": [], "flags": [], "taps": None, "done": [], "handoffs": []}

    async def bench(ctx):
        ctx.set(dut.start.valid, 1)
        ctx.set(dut.start.payload.layer, layer)
        ctx.set(dut.start.payload.height, height)
        ctx.set(dut.start.payload.width, width)
        x_full = o_full = 0
        loaded = drained_groups = 0
        delay_in = delay_out = 0
        last_flush = None
        for cycle in range(100_000):
            ctx.set(dut.x_full, x_full)
            ctx.set(dut.o_full, o_full)
            ctx.set(dut.drained, int(drained_groups == groups and loaded == groups))
            watched = (dut.start.ready, dut.issue_valid, dut.issue_flush, dut.issue_phase,
                       dut.entry_addr, dut.issue_restart, dut.x_release, dut.o_fill, dut.go,
                       dut.done, dut.ex_group, dut.top_ok, dut.bot_ok, dut.left_ok,
                       dut.right_ok)
            *_, ready, iv, fl, ph, addr, rs, x_rel, o_fill, go, done, ex_group, top, bot, \
                left, right = await ctx.tick().sample(*watched)
            if ready:
                ctx.set(dut.start.valid, 0)
            if iv:
                if ph == 1 and rs:
                    trace["flags"].append((ex_group, top, bot, left, right))
                trace["tokens"].append((ph, addr, rs))
            if fl:
                trace["tokens"].append("F")
                last_flush = cycle
            for pulse, kind in ((x_rel, "release"), (o_fill, "fill")):
                if pulse:
                    trace["handoffs"].append((kind, cycle - last_flush))
            if go:
                trace["taps"] = ([ctx.get(dut.tap_group[t]) for t in range(9)],
                                 [ctx.get(dut.tap_rot[t]) for t in range(9)])
                loaded = 0
            if done:
                trace["done"].append(cycle)
                return
            # Stand-in loader: the next group a few cycles after its slot is free.
            x_full &= ~x_rel
            if trace["taps"] is not None and loaded < groups and not (x_full >> loaded % 2) & 1:
                if delay_in == 0:
                    x_full |= 1 << loaded % 2
                    loaded += 1
                    delay_in = int(rng.integers(0, 30))
                else:
                    delay_in -= 1
            # Stand-in drainer: a filled slot is emptied a few cycles later.
            o_full |= o_fill
            slot = drained_groups % 2
            if (o_full >> slot) & 1:
                if delay_out == 0:
                    o_full &= ~(1 << slot)
                    drained_groups += 1
                    delay_out = int(rng.integers(0, 30))
                else:
                    delay_out -= 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    with waves(sim, name):
        sim.run()
    return fire, groups, reach, D, trace


@pytest.mark.parametrize("lanes,height,width", [(4, 3, 5), (1, 2, 3), (8, 4, 4), (2, 5, 1),
                                                (16, 3, 3), (4, 1, 9)])
def test_schedule_taps_and_flags(lanes, height, width, request):
    fire, groups, reach, D, trace = run_sequencer(lanes, height, width, seed=lanes + width,
                                                  name=request.node.name)
    assert len(trace["done"]) == 1
    assert trace["tokens"] == expected_schedule(fire, groups, reach)
    # Every slot hand-off comes exactly DRAIN cycles after the flush before it.
    assert [k for k, _ in trace["handoffs"]].count("release") == groups
    assert [k for k, _ in trace["handoffs"]].count("fill") == groups
    assert {gap for _, gap in trace["handoffs"]} == {DRAIN}
    # Tap table: pixel offset (dy*W + dx) = group offset * P + rotation.
    offsets = [(ky - 1) * width + (kx - 1) for ky in range(3) for kx in range(3)]
    assert trace["taps"] == ([(off // lanes) % D for off in offsets],
                             [off % lanes if lanes > 1 else 0 for off in offsets])
    # Border flags of each expanded group, lane k owning pixel e*P + k.
    assert len(trace["flags"]) == groups
    for e, (ex_group, top, bot, left, right) in enumerate(trace["flags"]):
        assert ex_group == e % D
        pix = e * lanes + np.arange(lanes)
        col = pix % width
        for got, want in ((top, pix >= width), (bot, pix < height * width - width),
                          (left, col != 0), (right, col != width - 1)):
            assert got == sum(int(b) << k for k, b in enumerate(want)), (e, got, want)


def test_unknown_layer_and_empty_run_are_rejected():
    for layer, height, width in ((3, 2, 2), (0, 0, 4), (0, 4, 0)):
        fire, groups, reach, D, trace = run_sequencer(4, height, width, seed=1, name="reject",
                                                      layer=layer)
        assert trace["tokens"] == [] and trace["taps"] is None
        assert trace["done"] == [1]
