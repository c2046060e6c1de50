# amaranth: UnusedElaboratable=no
"""Network sequencer alone, with a stand-in engine, store and global sum in the testbench.

The bench takes engine starts at random times, pulses the engine's ``done`` and sets the step's
sink flag (the store's ``written``, or ``summed`` after the last step) at random delays, keeping
both flags sticky as the real top does. It records every cycle; the checks then compare the
launches with ``program.steps`` and the cycle of each launch, of ``done`` and of ``busy`` with
the timing the sequencer documents.
"""

import numpy as np
import pytest

from golden.network import output_size
from hw.network.program import NetworkProgram
from hw.network.sequencer import NetworkSequencer
from testkit.networks import random_model, tiny_network
from testkit.simulate import simulate

#: Sequencer outputs recorded every cycle, besides the engine start stream.
OUTPUTS = ("busy", "done", "step", "from_image", "to_sum", "read", "write", "read_base",
           "read_words", "write_base", "pool", "pool_height", "pool_width", "pool_beats",
           "pool_row_beats")
#: Outputs that must hold their value from a step's launch to its end.
STEADY = ("step", "from_image", "to_sum", "read_base", "read_words", "write_base", "pool",
          "pool_height", "pool_width", "pool_beats", "pool_row_beats")
#: Cycles from the end of RUN (or from ``start``) to the next engine start being offered.
LAUNCH_DELAY = 2


def expected_launches(program):
    """What each step's launch must carry, from the program's steps alone."""
    L, last = program.channels_per_beat, len(program.steps) - 1
    want = []
    for k, s in enumerate(program.steps):
        w = {"layer": k, "step": k, "height": s.height, "width": s.width,
             "read": int(s.source is not None), "write": int(s.dest is not None),
             "pool": int(s.pool), "from_image": int(k == 0), "to_sum": int(k == last)}
        if s.source is not None:
            w.update(read_base=s.source, read_words=s.in_words)
        if s.dest is not None:
            w.update(write_base=s.dest)
        if s.pool:
            beats = -(-s.out_channels // L)
            w.update(pool_height=s.height, pool_width=s.width, pool_beats=beats,
                     pool_row_beats=output_size(s.width, 3, 2, ceil_mode=True) * beats)
        want.append(w)
    return want


def run_sequencer(program, *, runs, seed, ready_prob, max_delay, busy_start_prob=0.1):
    """Run the network ``runs`` times; return one dict per cycle of inputs and outputs."""
    rng = np.random.default_rng(seed)
    dut = NetworkSequencer(program)
    last = len(program.steps) - 1
    trace = []

    async def bench(ctx):
        written = summed = 0            # sticky, as the store and the top keep them
        done_at = flag_at = None
        launched = -1                   # index of the last step launched in this run
        for _ in range(runs):
            idle = int(rng.integers(1, 5))
            finished = False
            while not finished:
                if ctx.get(dut.busy):
                    start = int(rng.random() < busy_start_prob)    # must be ignored
                else:
                    start = int(idle == 0)
                idle -= 1
                cycle = len(trace)
                assert cycle < 20_000, "the network never finished"
                if flag_at == cycle:
                    written, summed = (1, summed) if launched < last else (written, 1)
                ctx.set(dut.start, start)
                ctx.set(dut.engine_start.ready, int(rng.random() < ready_prob))
                ctx.set(dut.engine_done, int(done_at == cycle))
                ctx.set(dut.written, written)
                ctx.set(dut.summed, summed)
                row = {"cycle": cycle, "start": start, "engine_done": int(done_at == cycle),
                       "written": written, "summed": summed,
                       "valid": ctx.get(dut.engine_start.valid),
                       "ready": ctx.get(dut.engine_start.ready),
                       "layer": ctx.get(dut.engine_start.payload.layer),
                       "height": ctx.get(dut.engine_start.payload.height),
                       "width": ctx.get(dut.engine_start.payload.width)}
                row.update({name: ctx.get(getattr(dut, name)) for name in OUTPUTS})
                trace.append(row)
                await ctx.tick()
                if row["valid"] and row["ready"]:
                    launched = (launched + 1) % (last + 1)
                    summed = 0                          # the top clears it on every launch
                    written = int(written and not row["write"])   # the store clears it on write
                    done_at = cycle + int(rng.integers(1, max_delay + 1))
                    flag_at = cycle + int(rng.integers(1, max_delay + 1))
                finished = bool(row["done"])
        ctx.set(dut.start, 0)
        ctx.set(dut.engine_start.ready, 1)
        for _ in range(8):   # nothing may happen once the last run is done
            trace.append({"cycle": len(trace), "valid": ctx.get(dut.engine_start.valid),
                          "busy": ctx.get(dut.busy), "done": ctx.get(dut.done),
                          "read": ctx.get(dut.read), "write": ctx.get(dut.write)})
            await ctx.tick()

    simulate(dut, bench)
    return trace


def run_end(trace, launch, to_sum):
    """The cycle in which the step launched at ``launch`` must end its RUN: the first cycle
    after the launch with the engine's done seen in an earlier cycle and the sink flag high."""
    seen = False
    for row in trace[launch + 1:]:
        sink = row.get("summed") if to_sum else row.get("written")
        if seen and sink:
            return row["cycle"]
        seen |= bool(row.get("engine_done"))
    raise AssertionError(f"the step launched in cycle {launch} never ended in the bench")


def check_trace(trace, program, runs):
    want = expected_launches(program)
    n = len(want)
    launches = [r["cycle"] for r in trace if r["valid"] and r.get("ready")]
    assert len(launches) == runs * n, "each run launches each step once"
    starts = [r["cycle"] for r in trace if r.get("start") and not r["busy"]]
    dones = [r["cycle"] for r in trace if r["done"]]
    assert len(starts) == len(dones) == runs
    for run in range(runs):
        offered = starts[run] + LAUNCH_DELAY
        for k in range(n):
            at = launches[run * n + k]
            row = trace[at]
            # Offered exactly when documented, held (payload steady) until taken.
            first_offer = next(r["cycle"] for r in trace[offered - LAUNCH_DELAY + 1:]
                               if r["valid"])
            assert first_offer == offered, f"run {run} step {k}: offered at {first_offer}"
            for r in trace[offered:at + 1]:
                assert r["valid"] and (r["layer"], r["height"], r["width"]) == \
                    (row["layer"], row["height"], row["width"])
            got = {key: row[key] for key in want[k]}
            assert got == want[k], f"run {run} step {k}"
            end = run_end(trace, at, bool(want[k]["to_sum"]))
            for r in trace[at + 1:end + 1]:
                assert not r["valid"], f"step {k + 1} offered before step {k} ended"
                assert {key: r[key] for key in STEADY} == {key: row[key] for key in STEADY}
            offered = end + LAUNCH_DELAY
        assert dones[run] == end, "done must pulse in the cycle the last step ends"
        busy = [r["busy"] for r in trace[starts[run]:end + 2]]
        assert busy == [0] + [1] * (end - starts[run]) + [0], \
            "busy from the cycle after start through done"
    # read/write pulse only with a launch, and only for steps with a source/dest.
    reads = [r["cycle"] for r in trace if r["read"]]
    writes = [r["cycle"] for r in trace if r["write"]]
    assert reads == [c for i, c in enumerate(launches) if want[i % n]["read"]]
    assert writes == [c for i, c in enumerate(launches) if want[i % n]["write"]]
    assert not any(r["valid"] or r["busy"] for r in trace[dones[-1] + 1:])
    ignored = [r for r in trace if r.get("start") and r["busy"]]
    assert ignored, "the bench never tried a start while busy"


def tiny_program(seed, pool_after, input_size, beat, fires=((4, 4, 4), (4, 6, 6))):
    net = tiny_network(pool_after=pool_after, fires=fires)
    model = random_model(np.random.default_rng(seed), net)
    return NetworkProgram(model, input_size=input_size, channels_per_beat=beat)


@pytest.mark.parametrize("seed,pool_after,size,beat,ready_prob,max_delay", [
    (1, ("conv1", "fire3"), 23, 4, 0.5, 6),
    (2, ("conv1", "fire3"), 23, 4, 1.0, 1),      # no waits at all: the tightest timing
    (3, ("fire2",), 19, 3, 0.3, 12),
    (4, (), 15, 8, 0.7, 3),
])
def test_steps_run_in_order_with_documented_timing(seed, pool_after, size, beat, ready_prob,
                                                    max_delay):
    program = tiny_program(seed, pool_after, size, beat)
    trace = run_sequencer(program, runs=2, seed=seed, ready_prob=ready_prob,
                          max_delay=max_delay)
    check_trace(trace, program, runs=2)


def test_each_step_reads_where_the_previous_one_wrote():
    """The launches among themselves: each step reads, from where the step before wrote, the
    words that step wrote, and writes right after them (modulo the store's depth)."""
    program = tiny_program(5, ("conv1", "fire3"), 23, 4, fires=((4, 4, 4), (4, 6, 6), (3, 4, 4)))
    trace = run_sequencer(program, runs=1, seed=5, ready_prob=0.6, max_delay=5)
    check_trace(trace, program, runs=1)
    launches = [r for r in trace if r["valid"] and r.get("ready")]
    for k in range(1, len(launches)):
        before, after = launches[k - 1], launches[k]
        assert after["read"] and after["read_base"] == before["write_base"]
        assert after["read_words"] == program.steps[k - 1].out_words
        if not after["to_sum"]:
            assert after["write_base"] == \
                (after["read_base"] + after["read_words"]) % program.store_words
