"""cocotb testbench of the whole-network accelerator's Verilog (top ``network_accelerator``).

Launched by :func:`sim.network.simulate` with ``$SIM_CASE`` (the image as beats, the number of
classes) and ``$SIM_RESULT`` (where the global sums and the cycle count go). The image is
offered a beat per cycle from the ``start`` cycle on and the logits are always taken, the
conditions under which the cycle model is exact. The testbench holds no expected values: the
pytest side compares the sums with ``golden.fixed``.
"""

from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, RisingEdge, Timer

from sim.cases import read_case
from sim.streams import (CLOCK_NS, Gaps, StreamDriver, StreamMonitor, StreamPort, cycle_now, measured,
                         pack_beats, record_stats, reset, start_clock)


async def _progress(dut, every):
    # A timer, not ClockCycles: that one wakes Python at every clock edge (the real network
    # simulated at 32 k cycles/s with it, 40 k without).
    path = os.environ.get("SIM_PROGRESS")
    c0 = cycle_now()
    while path:
        await Timer(every * CLOCK_NS, "ns")
        with open(path, "w") as f:
            f.write(str(cycle_now() - c0))


async def _trace(dut, beats, L):
    """Every engine output beat (``trace_*`` ports): (step, L data bytes)."""
    mask = (1 << (8 * L)) - 1
    while True:
        await RisingEdge(dut.trace_valid)
        await FallingEdge(dut.clk)
        while dut.trace_valid.value:
            word = dut.trace_data.value.to_unsigned() & mask
            beats.append((int(dut.trace_step.value), word.to_bytes(L, "little")))
            await FallingEdge(dut.clk)


@cocotb.test()
async def classify_one_image(dut):
    """start, the image in, every logit out; global sums and cycles to ``$SIM_RESULT``."""
    meta, arrays = read_case()
    classes = meta["classes"]
    start_clock(dut.clk)
    dut.start.value = 0
    dut.i__valid.value = 0
    dut.o__ready.value = 0
    await FallingEdge(dut.clk)
    await reset(dut)
    await FallingEdge(dut.clk)
    assert dut.busy.value == 0, "accelerator not idle after reset"
    words = pack_beats(arrays["image"], first_last=False)
    cocotb.start_soon(_progress(dut, meta["progress_every"]))
    traced = []
    if meta.get("trace"):
        cocotb.start_soon(_trace(dut, traced, meta["channels_per_beat"]))
    with measured():
        dut.start.value = 1
        c0 = cycle_now()
        driver = StreamDriver(StreamPort(dut, "i"), Gaps(None))
        monitor = StreamMonitor(StreamPort(dut, "o"), Gaps(None))
        cocotb.start_soon(driver.send(words))
        await FallingEdge(dut.clk)
        dut.start.value = 0
        logits = await monitor.receive(classes)
        while not dut.done.value:
            await RisingEdge(dut.done)
            await FallingEdge(dut.clk)
        cycles = cycle_now() - c0
    sums = np.array([w & 0xFFFF_FFFF for w in logits], np.int64)
    sums = np.where(sums >= 1 << 31, sums - (1 << 32), sums)
    lasts = [(w >> 32) & 1 for w in logits]
    assert lasts == [0] * (classes - 1) + [1], f"o.last on logits {np.flatnonzero(lasts)}"
    assert driver.sent == len(words), f"only {driver.sent} of {len(words)} image beats taken"
    trace = {}
    if traced:
        trace = {"trace_steps": np.array([s for s, _ in traced], np.int32),
                 "trace_beats": np.frombuffer(b"".join(b for _, b in traced), np.uint8)}
    np.savez(os.environ["SIM_RESULT"], sums=sums, cycles=cycles, **trace)
    record_stats(cycles=cycles)
