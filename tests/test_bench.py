"""python -m hw.bench: the per-layer table and JSON, from the exact cycle model."""

import json

import pytest

from golden import calibrate, codec, fixed
from hw import bench
from hw.fire.cycle_model import layer_cycles
from hw.fire.program import EngineProgram

REAL = codec.SHARED_MODEL_PATH
needs_real = pytest.mark.skipif(not REAL.exists(),
                                reason=f"real model not found at {REAL}: ../shared is absent")


@needs_real
def test_real_model_whole_network_utilisation_target(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--model", str(REAL), "--lanes", "64", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    layers = [r["layer"] for r in report["layers"]]
    assert layers == ["conv1"] + [f"fire{i}" for i in range(2, 10)] + ["conv_final"]
    summary = report["summary"]
    # Cycle counts are exact, so the utilisation they give is a deterministic figure.
    assert summary["whole_network"] and summary["utilisation"] >= 0.85
    assert report["layers"][0]["utilisation"] >= 0.95          # conv1 as patches
    # The total is one image: every run plus the hand-overs and the logits leaving.
    assert summary["cycles"] > sum(r["cycles"] for r in report["layers"])
    assert summary["activation_store_bits"] == 387_200 * 8
    assert abs(summary["frames_per_second"] - 100e6 / summary["cycles"]) < 1e-9
    for row in report["layers"]:
        assert row["issue_cycles"] + row["wait_input_cycles"] + row["wait_output_cycles"] + \
            row["overhead_cycles"] == row["cycles"]
        assert row["nonzero_macs"] == row["height"] * row["width"] * row["nonzero_weights"]
    text = capsys.readouterr().out
    assert "conv_final" in text and "Whole network (conv1, fire2..fire9, conv_final" in text


@needs_real
def test_real_model_fire_stack_utilisation_target(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--model", str(REAL), "--lanes", "64", "--fire-stack",
                       "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    layers = [r["layer"] for r in report["layers"]]
    assert layers == [f"fire{i}" for i in range(2, 10)]
    assert report["summary"]["utilisation"] >= 0.80
    for row in report["layers"]:
        assert row["issue_cycles"] + row["wait_input_cycles"] + row["wait_output_cycles"] + \
            row["overhead_cycles"] == row["cycles"]
        assert row["nonzero_macs"] == row["height"] * row["width"] * row["nonzero_weights"]
    text = capsys.readouterr().out
    assert "fire9" in text and "frames/s" in text


def test_default_model_runs_and_bad_lanes_fail(tmp_path, capsys):
    assert bench.main(["--lanes", "16", "--json", str(tmp_path / "b.json")]) == 0
    assert "synthetic" in capsys.readouterr().err
    assert bench.main(["--lanes", "20", "--json", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Lane count must be 1, 2, 4 or a multiple of 8") and \
        err.count("\n") == 1
    assert not (tmp_path / "c.json").exists()


def test_unwritable_json(tmp_path, capsys):
    """--json under a regular file: one error line naming it, no table, nothing written."""
    (tmp_path / "file").write_text("a regular file")
    out = tmp_path / "file" / "bench.json"
    assert bench.main(["--lanes", "16", "--json", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot write {out}: ")
    assert "pass --json" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_table_names_the_layers_that_ran(synthetic_program, capsys):
    rows, summary = bench.bench(synthetic_program(["fire3", "fire4"]), lanes=8,
                                channels_per_beat=8)
    assert [r["layer"] for r in rows] == ["fire3", "fire4"]
    assert "Fire stack fire3..fire4: " in bench.format_table(rows, summary)
    rows, summary = bench.bench(synthetic_program(["fire2", "fire5"]), lanes=8,
                                channels_per_beat=8)
    assert "Fire stack fire2, fire5: " in bench.format_table(rows, summary)
    rows, summary = bench.bench(synthetic_program(["fire9"]), lanes=8, channels_per_beat=8)
    assert "Fire stack fire9: " in bench.format_table(rows, summary)


def test_cycles_are_the_cycle_models(synthetic_program):
    program = synthetic_program(["fire2", "fire9"])
    rows, summary = bench.bench(program, lanes=16, channels_per_beat=4)
    for row, fire in zip(rows, program.fires):
        model = layer_cycles(lanes=16, channels_per_beat=4, in_channels=fire.in_channels,
                             out_channels=fire.out_channels,
                             entry_counts=[c.entry_count for c in fire.convs],
                             height=fire.height, width=fire.width)
        assert row["cycles"] == model.cycles and row["issue_cycles"] == model.issue
    assert summary["cycles"] == sum(r["cycles"] for r in rows)


@pytest.fixture(scope="module")
def synthetic_program():
    model = codec.load(None)
    qmodel = fixed.quantize(model, calibrate.load_plan(model))
    return lambda layers: EngineProgram.from_model(qmodel, layers)
