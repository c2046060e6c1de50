"""Amaranth-simulator driver for the whole-network accelerator: an image in, logits out."""

import numpy as np
from amaranth.sim import Simulator

from testkit.engine_driver import to_beats
from testkit.waves import waves


def run_network(acc, image, *, valid_prob=1.0, ready_prob=1.0, seed=0, max_cycles=5_000_000):
    """Classify ``image`` (3, H, W) uint8 on ``acc`` (a NetworkAccelerator).

    Returns ``(sums int64 (classes,), cycles, lasts)``: cycles from the ``start`` cycle (0) to
    the ``done`` pulse, and the ``last`` flag of every logit. With ``valid_prob``/``ready_prob``
    below 1 the image has random idle cycles and the logits random back-pressure.
    """
    return run_images(acc, [image], valid_prob=valid_prob, ready_prob=ready_prob, seed=seed,
                      max_cycles=max_cycles)[0]


def run_images(acc, images, **kwargs):
    """:func:`run_network` of several images one after another in one simulation (the
    hardware is not reset between them); a list of its results."""
    results = []

    async def bench(ctx):
        for image in images:
            results.append(await _classify(ctx, acc, image, **kwargs))

    sim = Simulator(acc)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    with waves(sim):
        sim.run()
    return results


async def _classify(ctx, acc, image, *, valid_prob=1.0, ready_prob=1.0, seed=0,
                    max_cycles=5_000_000):
    """One image through ``acc`` from a ``start`` pulse to ``done``."""
    rng = np.random.default_rng(seed)
    beats = to_beats(image, acc.program.channels_per_beat)
    out, lasts = [], []
    ctx.set(acc.start, 1)
    cycle, sent, loaded = 0, 0, -1
    while True:
        offer = sent < len(beats) and (valid_prob >= 1.0 or rng.random() < valid_prob)
        ctx.set(acc.i.valid, offer)
        if offer and loaded != sent:
            ctx.set(acc.i.payload.data, [int(v) for v in beats[sent]])
            ctx.set(acc.i.payload.first, sent == 0)
            loaded = sent
        ctx.set(acc.o.ready, ready_prob >= 1.0 or bool(rng.random() < ready_prob))
        taken = offer and ctx.get(acc.i.ready)
        if ctx.get(acc.o.valid) and ctx.get(acc.o.ready):
            out.append(ctx.get(acc.o.payload.data))
            lasts.append(ctx.get(acc.o.payload.last))
        if ctx.get(acc.done):
            break
        await ctx.tick()
        ctx.set(acc.start, 0)
        cycle += 1
        sent += taken
        if cycle > max_cycles:
            raise AssertionError(f"no done after {max_cycles} cycles")
    await ctx.tick()
    ctx.set(acc.i.valid, 0)
    return np.array(out, np.int64), cycle, lasts
