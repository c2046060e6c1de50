# amaranth: UnusedElaboratable=no
"""One dataflow unit's issue FSM alone: entry order by slot, the WAIT/SETUP/FLUSH timing
against ``may_start``, the written-groups counter, and every group's border flags."""

import pytest

from hw.dataflow.unit_sequencer import UnitSequencer
from testkit.simulate import simulate

DRAIN = 5


@pytest.mark.parametrize("counts,hold,passes", [
    ((2, 0, 3), (0, 4, 1), 1), ((0, 0, 0), (2, 0, 0), 1), ((1, 1, 1), (0, 0, 0), 1),
    ((2, 0, 3), (1, 0, 3), 2), ((0, 1, 0), (0, 0, 0), 4), ((0, 0, 0), (0, 2, 0), 2)])
def test_issue_order_timing_and_done(counts, hold, passes):
    lanes, height, width = 4, 3, 3
    groups = -(-height * width // lanes)
    base = (10, 20, 30)
    phase = (0, 1, 2)
    dut = UnitSequencer(lanes=lanes, groups=4, max_groups=8, entries=40, drain=DRAIN,
                        passes=passes)
    log = {"issue": [], "flush": [], "done": [0], "flags": []}   # done: by cycle

    async def bench(ctx):
        ctx.set(dut.groups_in, groups)
        ctx.set(dut.width, width)
        ctx.set(dut.pixels_above, height * width - width)
        ctx.set(dut.col_step, lanes % width)
        for k in range(lanes):
            ctx.set(dut.col_init[k], k % width)
        for s in range(3):
            ctx.set(dut.base[s], base[s])
            ctx.set(dut.count[s], counts[s])
            ctx.set(dut.phase[s], phase[s])
        ctx.set(dut.run, 1)
        await ctx.tick()
        ctx.set(dut.run, 0)
        for cycle in range(1, 120):
            g = ctx.get(dut.g)
            # may_start goes high ``hold[g]`` cycles after the unit reaches group g
            waited = cycle - (log["flush"][-1] + 1 if log["flush"] else 1)
            if log["flush"] and len(log["flush"]) % passes:
                waited = 0      # within a group: may_start is not looked at
            ctx.set(dut.may_start, g < groups and waited >= hold[g])
            if ctx.get(dut.issue_valid):
                log["issue"].append((cycle, g, ctx.get(dut.issue_pass), ctx.get(dut.entry_addr),
                                     ctx.get(dut.issue_phase), ctx.get(dut.issue_restart)))
            if ctx.get(dut.issue_flush):
                log["flush"].append(cycle)
                log.setdefault("flush_pass", []).append(ctx.get(dut.issue_pass))
            log["done"].append(ctx.get(dut.done))
            if ctx.get(dut.finished) and cycle > 2:
                log["end"] = cycle
                break
            await ctx.tick()
        # flags of the last SETUP are still on the ports: check them
        log["flags"] = [ctx.get(getattr(dut, n)) for n in ("top_ok", "bot_ok", "left_ok",
                                                           "right_ok")]

    simulate(dut, bench)
    n = sum(counts)
    assert len(log["flush"]) == groups * passes
    assert log["flush_pass"] == list(range(passes)) * groups
    last_flush = log["flush"][passes - 1::passes]
    wait_at = 1
    for g, flush in enumerate(last_flush):
        start = wait_at + max(1, hold[g])     # SETTLE first: WAIT from wait_at + 1
        order = [(s, i) for s in range(3) for i in range(counts[s])]
        expect = [(start + 2 + p * (n + 1) + j, g, p, base[s] + i, phase[s], int(i == 0))
                  for p in range(passes) for j, (s, i) in enumerate(order)]
        assert [e for e in log["issue"] if e[1] == g] == expect
        assert log["flush"][g * passes:(g + 1) * passes] == \
            [start + 1 + (p + 1) * (n + 1) for p in range(passes)]
        wait_at = flush + 1
    # done counts a group DRAIN cycles after its last flush, from the cycle after
    for g, flush in enumerate(last_flush):
        assert log["done"][flush + DRAIN] == g and log["done"][flush + DRAIN + 1] == g + 1
    assert log["end"] == last_flush[-1] + DRAIN + 1
    last = groups - 1
    pixels = [last * lanes + k for k in range(lanes)]
    want = [sum(1 << k for k, p in enumerate(pixels) if cond(p)) for cond in (
        lambda p: p >= width, lambda p: p < height * width - width,
        lambda p: p % width != 0, lambda p: p % width != width - 1)]
    assert log["flags"] == want
