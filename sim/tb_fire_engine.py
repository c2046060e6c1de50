"""cocotb testbench of the Fire engine's generated Verilog (top module ``fire_engine``).

Launched by ``sim/test_fire_engine.py`` with ``$SIM_CASE`` naming a case file
(:mod:`sim.cases`): the engine parameters, the layer runs (input activations, golden outputs,
predicted cycles) and which runs each scenario uses.

Components: a start driver, a :class:`~sim.streams.StreamDriver` on ``i`` (input activations,
random idle cycles), a :class:`~sim.streams.StreamMonitor` on ``o`` (random back-pressure), a
``done`` watcher that counts cycles, and a :class:`Scoreboard` holding the golden outputs.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, with_timeout

from sim.cases import read_case
from sim.streams import (CLOCK_NS, Gaps, StreamDriver, StreamMonitor, StreamPort, cycle_now,
                         measured, pack_beats, record_stats, reset, seeded, start_clock)
from testkit.engine_driver import from_beats, to_beats


class Scoreboard:
    """Golden output of one run, as the beats the ``o`` stream must carry."""

    def __init__(self, expected, channels_per_beat, label):
        self.expected = expected
        self.L = channels_per_beat
        self.label = label
        self.beats = to_beats(expected, channels_per_beat)

    def _unpack(self, words):
        L = self.L
        mask = (1 << (8 * L)) - 1
        data = np.frombuffer(b"".join((w & mask).to_bytes(L, "little") for w in words),
                             np.uint8).reshape(-1, L)
        first = np.array([(w >> (8 * L)) & 1 for w in words], np.uint8)
        last = np.array([(w >> (8 * L + 1)) & 1 for w in words], np.uint8)
        return data, first, last

    def check(self, words):
        """The whole output: beat count, framing, every value bit-exact (and zero padding)."""
        data, first, last = self._unpack(words)
        count = len(self.beats)
        assert len(words) == count, f"{self.label}: {len(words)} output beats, expected {count}"
        expected_first = np.zeros(count, np.uint8)
        expected_last = np.zeros(count, np.uint8)
        if count:
            expected_first[0] = expected_last[-1] = 1
        np.testing.assert_array_equal(first, expected_first, err_msg=f"{self.label}: o.first")
        np.testing.assert_array_equal(last, expected_last, err_msg=f"{self.label}: o.last")
        channels, height, width = self.expected.shape
        got = from_beats(data, channels, height, width)
        np.testing.assert_array_equal(
            got, self.expected, err_msg=f"{self.label}: engine output differs from "
            f"golden.fixed.fire (channel, y, x) = {self._first_difference(got)}")
        np.testing.assert_array_equal(data, self.beats,
                                      err_msg=f"{self.label}: padding channels must be zero")

    def check_prefix(self, words):
        """Beats received before an abort must be the start of the golden output."""
        if not words:
            return
        data, _, _ = self._unpack(words)
        np.testing.assert_array_equal(data, self.beats[:len(words)],
                                      err_msg=f"{self.label}: beats before the reset")

    def _first_difference(self, got):
        diff = np.argwhere(got != self.expected)
        return tuple(int(v) for v in diff[0]) if diff.size else None


class EngineEnv:
    """The DUT plus the case file: starts runs and watches them."""

    def __init__(self, dut):
        self.dut = dut
        self.meta, self.arrays = read_case()
        self.L = self.meta["channels_per_beat"]
        self.i = StreamPort(dut, "i")
        self.o = StreamPort(dut, "o")

    async def setup(self):
        dut = self.dut
        start_clock(dut.clk)
        dut.start__valid.value = 0
        dut.start__payload.value = 0
        dut.i__valid.value = 0
        dut.i__payload.value = 0
        dut.o__ready.value = 0
        await FallingEdge(dut.clk)
        await reset(dut)
        await FallingEdge(dut.clk)
        assert dut.busy.value == 0 and dut.start__ready.value == 1, "engine not idle after reset"

    async def start(self, layer, height, width):
        """One ``start`` transfer; returns the cycle it happens in (cycle 0 of the run)."""
        dut = self.dut
        dut.start__payload.value = layer | height << 4 | width << 12
        dut.start__valid.value = 1
        while not dut.start__ready.value:
            await RisingEdge(dut.start__ready)
            await FallingEdge(dut.clk)
        c0 = cycle_now()
        await FallingEdge(dut.clk)
        dut.start__valid.value = 0
        return c0

    async def wait_done(self, c0):
        dut = self.dut
        while not dut.done.value:
            await RisingEdge(dut.done)
            await FallingEdge(dut.clk)
        return cycle_now() - c0

    def scoreboard(self, index):
        run = self.meta["runs"][index]
        return Scoreboard(self.arrays[f"expected{index}"], self.L,
                          f"{self.meta['case']} run {index} ({run['name']} "
                          f"{run['height']}x{run['width']})")

    async def run(self, index, idle, stall, *, abort_after=None, hold_next_start=None):
        """Stream run ``index`` through the engine. Returns (output words, cycles); with
        ``abort_after`` stops driving after that many cycles and returns (words so far, None).
        With ``hold_next_start`` (a run index), that run's ``start`` is offered, and held, from
        right after this run's start transfer: the engine must not take it before it is done."""
        dut = self.dut
        run = self.meta["runs"][index]
        beats = pack_beats(to_beats(self.arrays[f"x{index}"], self.L))
        out_beats = run["height"] * run["width"] * -(-run["out_channels"] // self.L)
        driver = StreamDriver(self.i, idle)
        monitor = StreamMonitor(self.o, stall)
        c0 = await self.start(run["layer"], run["height"], run["width"])
        if hold_next_start is not None:
            following = self.meta["runs"][hold_next_start]
            dut.start__payload.value = (following["layer"] | following["height"] << 4
                                        | following["width"] << 12)
            dut.start__valid.value = 1
        sending = cocotb.start_soon(driver.send(beats))
        receiving = cocotb.start_soon(monitor.receive(out_beats))
        if abort_after is not None:
            await ClockCycles(dut.clk, abort_after, rising=False)
            for task in (sending, receiving):
                task.cancel()
            driver.idle()
            monitor.idle()
            return monitor.words, None
        limit = 3 * run["cycles"] + 10_000
        cycles = await with_timeout(self.wait_done(c0), limit * CLOCK_NS, "ns")
        assert len(monitor.words) == out_beats, (
            f"done after {len(monitor.words)} of {out_beats} output beats")
        assert driver.sent == len(beats), f"done after {driver.sent} of {len(beats)} input beats"
        for task in (sending, receiving):
            assert task.done(), "a stream task is still running after done"
        if hold_next_start is not None:
            return monitor.words, cycles
        # Nothing more may come out, and the engine must be idle again.
        dut.o__ready.value = 1
        await ClockCycles(dut.clk, 3, rising=False)
        assert dut.o__valid.value == 0, "output beat after done"
        assert dut.busy.value == 0 and dut.start__ready.value == 1, "engine busy after done"
        dut.o__ready.value = 0
        return monitor.words, cycles


def _gaps(rng, meta, name):
    prob, longest = meta.get(name, (0.3, 5))
    return Gaps(rng, prob, longest)


async def _runs_take_predicted_cycles(dut, scenario, *, back_to_back):
    """Every run bit-exact and exactly as many cycles as the cycle model predicts."""
    env = EngineEnv(dut)
    await env.setup()
    rng = seeded(scenario)
    runs = env.meta["runs"]
    for index, run in enumerate(runs):
        following = index + 1 if back_to_back and index + 1 < len(runs) else None
        with measured() as span:
            words, cycles = await env.run(index, Gaps(rng), Gaps(rng),
                                          hold_next_start=following)
        env.scoreboard(index).check(words)
        assert cycles == run["cycles"], (
            f"run {index} ({run['name']}, {scenario}): {cycles} cycles, "
            f"hw.fire.cycle_model.layer_cycles predicts {run['cycles']}")
        record_stats(run=index, layer=run["name"], scenario=scenario, cycles=cycles,
                     seconds=round(span.seconds, 2))


@cocotb.test()
async def ideal_streams_bit_exact_and_cycles(dut):
    """Always-valid input, always-ready output: every run bit-exact, cycles == layer_cycles."""
    await _runs_take_predicted_cycles(dut, "ideal", back_to_back=False)


@cocotb.test()
async def back_to_back_runs_with_start_held(dut):
    """Every run's ``start`` is already offered (valid held high) while the previous run is
    still going, so runs follow each other with no idle cycle: each is bit-exact and takes
    exactly the predicted cycles from its own start transfer."""
    await _runs_take_predicted_cycles(dut, "back-to-back", back_to_back=True)


@cocotb.test()
async def random_stalls_bit_exact(dut):
    """Random idle cycles on ``i`` and random back-pressure on ``o``: still bit-exact."""
    env = EngineEnv(dut)
    await env.setup()
    rng = seeded("stalls")
    for index in env.meta.get("stall_runs", range(len(env.meta["runs"]))):
        run = env.meta["runs"][index]
        idle, stall = _gaps(rng, env.meta, "idle"), _gaps(rng, env.meta, "stall")
        with measured() as span:
            words, cycles = await env.run(index, idle, stall)
        env.scoreboard(index).check(words)
        assert cycles >= run["cycles"], f"stalled run faster ({cycles}) than ideal"
        record_stats(run=index, layer=run["name"], scenario=f"stalls {idle} {stall}",
                     cycles=cycles, seconds=round(span.seconds, 2))


@cocotb.test()
async def reset_mid_layer_then_rerun(dut):
    """Reset while a run is in flight (random point, with stalls), then a clean rerun of the
    same layer: bit-exact and exactly the predicted cycles, so no state survived the reset."""
    env = EngineEnv(dut)
    await env.setup()
    rng = seeded("reset")
    index = env.meta.get("reset_run", 0)
    run = env.meta["runs"][index]
    low, high = env.meta.get("reset_fraction", (0.2, 0.8))
    abort_after = max(1, int(run["cycles"] * rng.uniform(low, high)))
    scoreboard = env.scoreboard(index)
    with measured() as span:
        partial, _ = await env.run(index, _gaps(rng, env.meta, "idle"),
                                   _gaps(rng, env.meta, "stall"), abort_after=abort_after)
        scoreboard.check_prefix(partial)
        assert env.dut.busy.value == 1, "engine finished before the reset: pick an earlier point"
        await reset(env.dut, cycles=rng.randint(1, 4))
        await FallingEdge(env.dut.clk)
        assert env.dut.busy.value == 0 and env.dut.start__ready.value == 1, "busy after reset"
        words, cycles = await env.run(index, Gaps(rng), Gaps(rng))
    scoreboard.check(words)
    assert cycles == run["cycles"], (
        f"rerun after reset: {cycles} cycles, layer_cycles predicts {run['cycles']}")
    record_stats(run=index, layer=run["name"], scenario="reset mid-layer + rerun",
                 reset_after=abort_after, partial_beats=len(partial), cycles=cycles,
                 seconds=round(span.seconds, 2))


@cocotb.test()
async def unknown_layer_and_empty_size_rejected(dut):
    """A start for a layer the program lacks, or of zero height/width: ``done`` the next cycle,
    no input taken, no output given, engine idle again."""
    env = EngineEnv(dut)
    await env.setup()
    dut.o__ready.value = 1
    dut.i__valid.value = 1
    layers = env.meta["layers"]
    with measured():
        for layer, height, width in [(layers, 4, 4), (15, 1, 1), (0, 0, 5), (0, 5, 0)]:
            if layer > 15:
                continue
            c0 = await env.start(layer, height, width)
            cycles = await with_timeout(env.wait_done(c0), 100 * CLOCK_NS, "ns")
            assert cycles == 1, f"start({layer}, {height}x{width}): done after {cycles} cycles"
            await FallingEdge(dut.clk)
            assert dut.o__valid.value == 0 and dut.i__ready.value == 0
            assert dut.busy.value == 0 and dut.start__ready.value == 1
    dut.i__valid.value = 0
