"""Amaranth-simulator driver for the Fire engine: stream a layer in, collect it out, count cycles.

:func:`run_layer` drives the block tests (``tests/``); the cocotb suite in ``sim/`` has its own
driver on the generated Verilog and shares :func:`to_beats`/:func:`from_beats`. With
``WAVES=1`` each run writes ``build/waves/<test id>.vcd``.
"""

import numpy as np
from amaranth.sim import Simulator

from testkit.waves import waves


def to_beats(x, channels_per_beat):
    """(C, H, W) uint8 -> list of beats (raster order, C channels zero padded to whole beats)."""
    c, h, w = x.shape
    per_pixel = -(-c // channels_per_beat) * channels_per_beat
    padded = np.zeros((h, w, per_pixel), np.uint8)
    padded[:, :, :c] = x.transpose(1, 2, 0)
    return padded.reshape(-1, channels_per_beat)


def from_beats(beats, channels, height, width):
    """Inverse of :func:`to_beats` for the output stream."""
    if height * width == 0:
        return np.zeros((channels, height, width), np.uint8)
    per_pixel = beats.size // (height * width)
    return beats.reshape(height, width, per_pixel)[:, :, :channels].transpose(2, 0, 1)


def run_layer(engine, layer, x, out_channels, *, valid_prob=1.0, ready_prob=1.0, seed=0,
              max_cycles=5_000_000):
    """Run one layer on ``engine`` in the Amaranth simulator.

    Returns ``(output (E, H, W) uint8, cycles, framing)`` where cycles counts from the ``start``
    transfer to the ``done`` pulse and framing is the list of (first, last) of every output beat.
    With ``valid_prob``/``ready_prob`` below 1 the input has random idle cycles and the output
    random back-pressure.
    """
    rng = np.random.default_rng(seed)
    L = engine.channels_per_beat
    _, height, width = x.shape
    beats = to_beats(x, L)
    out, framing, result = [], [], {}

    async def bench(ctx):
        ctx.set(engine.start.payload.layer, layer)
        ctx.set(engine.start.payload.height, height)
        ctx.set(engine.start.payload.width, width)
        ctx.set(engine.start.valid, 1)
        while not ctx.get(engine.start.ready):
            await ctx.tick()
        await ctx.tick()
        ctx.set(engine.start.valid, 0)
        cycle = 1
        sent = 0
        loaded = -1
        ctx.set(engine.o.ready, 1)
        while True:
            offer = sent < len(beats) and (valid_prob >= 1.0 or rng.random() < valid_prob)
            ctx.set(engine.i.valid, offer)
            if offer and loaded != sent:
                ctx.set(engine.i.payload.data, [int(v) for v in beats[sent]])
                loaded = sent
            if ready_prob < 1.0:
                ctx.set(engine.o.ready, bool(rng.random() < ready_prob))
            taken = offer and ctx.get(engine.i.ready)
            if ctx.get(engine.o.valid) and ctx.get(engine.o.ready):
                payload = ctx.get(engine.o.payload)
                out.append([int(v) for v in payload.data])
                framing.append((int(payload.first), int(payload.last)))
            if ctx.get(engine.done):
                break
            await ctx.tick()
            cycle += 1
            sent += taken
            if cycle > max_cycles:
                raise AssertionError(f"no done after {max_cycles} cycles")
        result["cycles"] = cycle

    sim = Simulator(engine)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    with waves(sim):
        sim.run()
    got = from_beats(np.array(out, np.uint8), out_channels, height, width)
    return got, result["cycles"], framing


def check_fire_layer(engine, layer, x, convs, **kwargs):
    """Run Fire layer ``layer`` on ``engine`` (:func:`run_layer`), assert its output equals
    ``golden.fixed.fire`` of ``x`` and ``convs`` and that the run is framed once (``first`` on
    its first beat, ``last`` on its last); return the cycles."""
    from golden.fixed import fire
    expected = fire(x, *convs)
    got, cycles, framing = run_layer(engine, layer, x, expected.shape[0], **kwargs)
    np.testing.assert_array_equal(got, expected)
    assert framing[0][0] == 1 and framing[-1][1] == 1
    assert sum(f for f, _ in framing) == 1 and sum(last for _, last in framing) == 1
    return cycles
