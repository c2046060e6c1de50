"""cocotb testbench of the requantiser alone (top module ``requantizer``).

``$SIM_CASE`` holds (acc, shift) pairs, sorted by shift, and ``golden.fixed.requantize`` of
each; ``meta["latency"]`` is ``Requantizer.latency``.

One pair per cycle, driven at falling edges; the output of the pair driven at falling edge k
is read at falling edge k + latency. ``shift`` must be steady while a value is in flight, so
when it changes the driver first holds the old shift for ``latency`` cycles of random junk
accumulators, whose outputs are not checked.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from sim.cases import read_case
from sim.streams import measured, record_stats, reset, seeded, start_clock


async def _pipelined(dut, accs, shifts, mask, latency):
    rng = seeded("requantizer")
    start_clock(dut.clk)
    dut.acc.value = 0
    dut.shift.value = shifts[0] if shifts else 0
    await FallingEdge(dut.clk)
    await reset(dut)
    schedule = []          # index of the pair driven each cycle, or None for junk
    previous = shifts[0] if shifts else 0
    for n, shift in enumerate(shifts):
        if shift != previous:
            schedule += [None] * latency
            previous = shift
        schedule.append(n)
    schedule += [None] * latency
    got = [None] * len(accs)
    with measured():
        for cycle, n in enumerate(schedule):
            if cycle >= latency:
                done = schedule[cycle - latency]
                if done is not None:
                    got[done] = int(dut.o.value)
            if n is None:
                dut.acc.value = rng.getrandbits(mask.bit_length())
            else:
                dut.acc.value = accs[n] & mask
                dut.shift.value = shifts[n]
            await FallingEdge(dut.clk)
    return got


@cocotb.test()
async def requantize_matches_golden(dut):
    meta, arrays = read_case()
    width, latency = meta["acc_width"], meta["latency"]
    mask = (1 << width) - 1
    accs, shifts = arrays["acc"].tolist(), arrays["shift"].tolist()
    assert shifts == sorted(shifts), "the case must be sorted by shift"
    started = time.perf_counter()
    got = await _pipelined(dut, accs, shifts, mask, latency)
    got = np.array(got, np.uint8)
    expected = arrays["expected"]
    wrong = np.flatnonzero(got != expected)
    assert not wrong.size, (
        f"{wrong.size} of {len(got)} values differ from golden.fixed.requantize; first: "
        f"acc={accs[wrong[0]]} shift={shifts[wrong[0]]} got {got[wrong[0]]} expected "
        f"{expected[wrong[0]]}")
    np.testing.assert_array_equal(got, expected)
    record_stats(values=len(got), latency=latency,
                 seconds=round(time.perf_counter() - started, 2))
