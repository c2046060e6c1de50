"""Amaranth-simulator driver for the step engine: steps run one per ``start``, each step's input
from the golden model, its output collected, ``busy``/``done``/``start.ready`` checked every
cycle."""

import numpy as np
from amaranth.sim import Simulator

from golden.network import MaxPool
from testkit.engine_driver import from_beats, to_beats
from testkit.waves import waves

__all__ = ["golden_steps", "decode_output", "run_steps"]


def golden_steps(model, program, image):
    """Per step of ``program``, ``(input (C, H, W) uint8, expected output)`` from the golden
    ``model`` on ``image``: the output after the step's pool, or for the last step the global
    sums (int64)."""
    outs = model.run(image)
    ops = list(model.network)
    names = [op.name for op in ops]
    cases, x = [], image
    for k, step in enumerate(program.steps):
        if k == len(program.steps) - 1:
            cases.append((x, outs["global_sum"]))
            break
        after = ops[names.index(step.name) + 1]
        y = outs[after.name if isinstance(after, MaxPool) else step.name]
        cases.append((x, y))
        x = y
    return cases


def decode_output(dut, k, beats):
    """The output of chosen step ``k`` of ``dut`` (a StepEngine) from its ``o`` beats (uint8
    rows): a (E, H, W) map, or the int64 global sums when it is the network's last step."""
    step_name = dut.step_names[k]
    _, e, _, _, out_h, out_w = dut.link_layers[k]
    if step_name == dut.program.steps[-1].name:
        raw = np.asarray(beats, np.uint8).reshape(-1)
        assert raw.size >= e and not raw[e:].any(), "padding after the logits must be zero"
        return np.frombuffer(raw[:e].tobytes(), "<i4").astype(np.int64)
    return from_beats(np.asarray(beats, np.uint8), e, out_h, out_w)


def run_steps(dut, runs, *, valid_prob=1.0, ready_prob=1.0, seed=0, max_cycles=200_000):
    """Run ``runs``, a list of ``(k, x)`` (chosen step index, its input (C, H, W) uint8), back to
    back on ``dut`` in one simulation; each run's input goes in as beats (the image as one beat
    per pixel), with random idle cycles when ``valid_prob`` < 1 and random output back-pressure
    when ``ready_prob`` < 1.

    Returns a list of ``(beats uint8 (n, L), framing [(first, last)], cycles)`` per run, cycles
    from the ``start`` transfer to the ``done`` pulse. Asserts on the way that ``start`` is taken
    the cycle it is offered (the engine is idle right after ``done``), that ``busy`` is high and
    ``start.ready`` low from then to the ``done`` pulse, and that ``done`` comes after the run's
    last output transfer.
    """
    rng = np.random.default_rng(seed)
    L = dut.program.channels_per_beat
    results = []

    async def bench(ctx):
        for k, x in runs:
            results.append(await _run(ctx, dut, k, to_beats(x, L), rng, valid_prob, ready_prob,
                                      max_cycles))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    with waves(sim):
        sim.run()
    return results


async def _run(ctx, dut, k, beats, rng, valid_prob, ready_prob, max_cycles):
    """One step from its ``start`` transfer to ``done``."""
    ctx.set(dut.start.payload.layer, k)
    ctx.set(dut.start.payload.height, 0)      # ignored: the program fixes every size
    ctx.set(dut.start.payload.width, 0)
    ctx.set(dut.start.valid, 1)
    assert ctx.get(dut.start.ready) and not ctx.get(dut.busy) and not ctx.get(dut.done)
    await ctx.tick()
    ctx.set(dut.start.valid, 0)
    out, framing = [], []
    cycle, sent, loaded, last_out = 1, 0, -1, None
    while True:
        offer = sent < len(beats) and (valid_prob >= 1.0 or rng.random() < valid_prob)
        ctx.set(dut.i.valid, offer)
        if offer and loaded != sent:
            ctx.set(dut.i.payload.data, [int(v) for v in beats[sent]])
            loaded = sent
        ctx.set(dut.o.ready, ready_prob >= 1.0 or bool(rng.random() < ready_prob))
        assert ctx.get(dut.busy) and not ctx.get(dut.start.ready), f"cycle {cycle}"
        taken = offer and ctx.get(dut.i.ready)
        if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
            payload = ctx.get(dut.o.payload)
            out.append([int(v) for v in payload.data])
            framing.append((int(payload.first), int(payload.last)))
            last_out = cycle
        if ctx.get(dut.done):
            assert last_out is not None and last_out < cycle, "done before the last output"
            break
        await ctx.tick()
        cycle += 1
        sent += taken
        if cycle > max_cycles:
            raise AssertionError(f"no done after {max_cycles} cycles")
    await ctx.tick()
    ctx.set(dut.i.valid, 0)
    ctx.set(dut.o.ready, 0)
    assert sent == len(beats), f"{len(beats) - sent} input beats were not taken"
    return np.array(out, np.uint8).reshape(-1, len(beats[0])), framing, cycle
