"""cocotb testbench of the sparse-entry decoder alone (top module ``entry_decoder``).

``$SIM_CASE`` holds a stream of entries from several convolutions back to back (``restart`` on
the first entry of each) and, for every entry, the ``(o, c, tap, first, code)`` computed from the
golden QConv's positions by plain division (:func:`sim.cases.decoder_positions`).

Driver and monitor run every cycle here (the decoder has no handshake): at each falling edge
the monitor takes the registered outputs of the entry driven ``meta["latency"]``
(``EntryDecoder.latency``) cycles earlier, then the driver puts the next entry, or an idle cycle
(``valid`` low) carrying random junk that must be ignored.
"""

from __future__ import annotations

from collections import deque

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge

from sim.cases import read_case
from sim.streams import Gaps, measured, record_stats, reset, seeded, start_clock

FIELDS = ("o", "c", "tap", "first", "code")


@cocotb.test()
async def decode_every_entry(dut):
    meta, arrays = read_case()
    start_clock(dut.clk)
    for name in ("entry", "valid", "restart", "kernel3", "in_channels"):
        getattr(dut, name).value = 0
    await FallingEdge(dut.clk)
    await reset(dut)

    rng = seeded("decoder")
    gaps = Gaps(rng, *meta.get("idle", (0.2, 3)))
    entry, restart = arrays["entry"].tolist(), arrays["restart"].tolist()
    kernel3, in_channels = arrays["kernel3"].tolist(), arrays["in_channels"].tolist()
    entry_mask = (1 << (meta["code_bits"] + 4)) - 1
    outputs = (dut.o_out, dut.o_c, dut.o_tap, dut.o_first, dut.o_code)
    got = [[] for _ in FIELDS]
    latency = meta["latency"]
    drove = deque([False] * latency, maxlen=latency)   # valid driven in the last cycles
    idle_cycles = 0

    def sample():
        valid = int(dut.o_valid.value)
        assert valid == drove[0], (
            f"o_valid={valid} {latency} cycles after an input cycle with valid={int(drove[0])} "
            f"(entry {len(got[0])})")
        if valid:
            for values, signal in zip(got, outputs):
                values.append(int(signal.value))

    with measured() as span:
        for n in range(len(entry)):
            for _ in range(gaps()):
                await FallingEdge(dut.clk)
                sample()
                dut.valid.value = 0
                dut.entry.value = rng.randint(0, entry_mask)
                dut.restart.value = rng.randint(0, 1)
                drove.append(False)
                idle_cycles += 1
            await FallingEdge(dut.clk)
            sample()
            dut.valid.value = 1
            dut.entry.value = entry[n]
            dut.restart.value = restart[n]
            dut.kernel3.value = kernel3[n]
            dut.in_channels.value = in_channels[n]
            drove.append(True)
        for _ in range(latency):
            await FallingEdge(dut.clk)
            sample()
            dut.valid.value = 0
            drove.append(False)

    assert len(got[0]) == len(entry), f"{len(got[0])} decoded entries, expected {len(entry)}"
    for field, values in zip(FIELDS, got):
        expected = arrays[field]
        values = np.array(values, np.int64)
        wrong = np.flatnonzero(values != expected)
        if wrong.size:
            n = int(wrong[0])
            conv = int(np.searchsorted(arrays["conv_start"], n, side="right")) - 1
            raise AssertionError(
                f"{field} wrong at {wrong.size} entries; first at entry {n} (convolution "
                f"{meta['convs'][conv]}, its entry {n - int(arrays['conv_start'][conv])}): got "
                + ", ".join(f"{f}={int(g[n]) if n < len(g) else None}" for f, g in zip(FIELDS, got))
                + "; expected " + ", ".join(f"{f}={int(arrays[f][n])}" for f in FIELDS))
    record_stats(entries=len(entry), idle_cycles=idle_cycles, convs=meta["convs"],
                 seconds=round(span.seconds, 2))
