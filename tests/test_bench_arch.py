"""python -m hw.bench --arch dataflow|both: the dataflow rows, the planner's choice, the
comparison table and JSON (cycle models only; the models equal simulation elsewhere)."""

import json

from golden import calibrate, codec, fixed
from hw import bench
from hw.arch import Arch, choose_dataflow, dataflow_candidates
from hw.bench_arch import bench_dataflow, shared_candidates, shared_lanes
from hw.network.cycle_model import network_cycles
from hw.network.program import NetworkProgram


def synthetic_netprog():
    model = codec.load(None)
    return NetworkProgram(fixed.quantize(model, calibrate.load_plan(model)), channels_per_beat=8)


def test_candidates_fit_the_budget():
    for budget in (3, 16, 64, 240):
        found = dataflow_candidates(budget)
        assert found
        for lanes, passes in found:
            used = Arch("dataflow", passes).multipliers(lanes)
            assert budget // 2 < used <= budget and all(lanes % p == 0 for p in passes)
    assert shared_candidates(20) == [1, 2, 4, 8, 16] and shared_candidates(3) == [1, 2]
    assert shared_lanes(240, lambda p: abs(p - 100)) == 96
    assert shared_lanes(240, lambda p: 0) == 1 and shared_lanes(64, lambda p: -p) == 64
    netprog = synthetic_netprog()
    lanes = shared_lanes(240, lambda p: network_cycles(netprog, lanes=p).cycles)
    best = network_cycles(netprog, lanes=lanes).cycles
    assert all(best <= network_cycles(netprog, lanes=p).cycles for p in (64, 128, 240))


def test_planner_takes_the_fewest_cycles():
    netprog = synthetic_netprog()
    cycles, lanes, arch = choose_dataflow(
        16, lambda a, p: network_cycles(netprog, lanes=p, arch=a).cycles)
    assert arch.multipliers(lanes) <= 16
    others = [network_cycles(netprog, lanes=p, arch=Arch("dataflow", s)).cycles
              for p, s in dataflow_candidates(16)]
    assert cycles == min(others)
    rows, summary = bench_dataflow(netprog, 16)
    assert summary["cycles"] == cycles and summary["multipliers"] == arch.multipliers(lanes)
    assert [r["layer"] for r in rows][0] == "conv1" and rows[-1]["layer"] == "conv_final"
    for r in rows:      # each unit's cycles add up to the layer's
        for u in r["units"]:
            assert u["issue"] + u["wait_input"] + u["wait_units"] + u["wait_output"] + \
                u["overhead"] == r["cycles"]


def test_cli_both_prints_and_writes_both(tmp_path, capsys):
    out = tmp_path / "b.json"
    assert bench.main(["--arch", "both", "--multipliers", "16,32", "--fire-stack",
                       "--json", str(out), "--plots", str(tmp_path / "p")]) == 0
    text = capsys.readouterr().out
    assert "shared, 16 lanes" in text and "dataflow, " in text
    configs = json.loads(out.read_text())["configs"]
    assert [(c["summary"]["arch"], c["summary"]["budget"]) for c in configs] == \
        [("shared", 16), ("dataflow", 16), ("shared", 32), ("dataflow", 32)]
    assert len(list((tmp_path / "p").glob("bench_cycles_*.png"))) == 4


def test_cli_bad_budgets(tmp_path, capsys):
    assert bench.main(["--arch", "both", "--multipliers", "16,x",
                       "--json", str(tmp_path / "b.json")]) == 2
    assert "--multipliers takes comma-separated integers" in capsys.readouterr().err
    assert bench.main(["--arch", "dataflow", "--lanes", "2",
                       "--json", str(tmp_path / "b.json")]) == 2
    assert "at least 3 multipliers" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()
