"""python -m hw.explore: the SqueezeNet paper's Figure 3 design space in FPGA terms, and the
PNG plots of hw.explore and hw.bench."""

import json
from dataclasses import replace

import pytest

from golden.network import conv_layers, from_metaparameters, squeezenet_v1_0
from golden.synthetic import synthetic_model_bytes, synthetic_squeezenet_bytes
from hw import bench, explore

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Figure 3 of the SqueezeNet paper, as printed: MB of float32 weights.
PAPER_SR = {0.125: 4.8, 0.25: 7.6, 0.5: 13, 0.75: 19, 1.0: 24}          # 3x3 share 0.5
PAPER_PCT3X3 = {0.01: 5.7, 0.5: 13, 0.99: 21}                            # SR 0.5


def _printed_range(value):
    """The interval that rounds to ``value`` as printed (4.8: one decimal; 13: none)."""
    half = 0.05 if value != round(value) else 0.5
    return value - half, value + half


def _mib(**meta):
    return explore.float32_mib(from_metaparameters(**meta))[1]


def test_squeezenet_is_the_papers_4_8_mb_in_mib():
    params, mib = explore.float32_mib(squeezenet_v1_0())
    assert params == 1_248_424                       # the paper's parameter count
    assert round(mib, 1) == 4.8                      # 4.99 in units of 10**6 bytes


@pytest.mark.parametrize("sweep, paper", [("sr", PAPER_SR), ("pct3x3", PAPER_PCT3X3)])
def test_figure_3_model_sizes(sweep, paper):
    """MiB reproduces the paper's 4.8, 13 and 24 MB within their printed rounding; 7.6, 19,
    5.7 and 21 it misses just outside (7.50, 18.47, 5.64, 20.33), all within 3.5%. 10**6-byte
    MB are further off (4.99, 13.6, 25.1: up to 4.8%)."""
    exact = {4.8, 13, 24}
    err_mib = err_decimal = 0.0
    for x, mb in paper.items():
        meta = {"sr": x, "pct3x3": 0.5} if sweep == "sr" else {"sr": 0.5, "pct3x3": x}
        mib = _mib(**meta)
        assert abs(mib - mb) / mb < 0.035, (meta, mib, mb)
        lo, hi = _printed_range(mb)
        assert (lo <= mib < hi) == (mb in exact), (meta, mib, mb)
        err_mib += abs(mib - mb) / mb
        err_decimal += abs(mib * 2 ** 20 / 1e6 - mb) / mb
    assert err_mib < err_decimal / 1.5


def test_paper_grid_is_figure_3():
    points = explore.paper_grid()
    sr = [dict(p.metaparameters)["sr"] for p in points if p.sweep == "SR"]
    pct = [dict(p.metaparameters)["pct3x3"] for p in points if p.sweep == "pct3x3"]
    assert sr == list(PAPER_SR) and pct == list(explore.PAPER_PCT3X3)
    assert {p.paper_mb for p in points if p.sweep == "SR"} == set(PAPER_SR.values())
    # SR 0.125 with half 3x3 is SqueezeNet v1.0 itself (names, shapes, pools, conv10 pad 1).
    assert points[0].network() == squeezenet_v1_0()


def test_synthetic_model_of_v1_0_is_the_embedded_model():
    net = squeezenet_v1_0()
    assert synthetic_model_bytes(net) == synthetic_squeezenet_bytes()
    assert synthetic_model_bytes(net, code_bits=6) == synthetic_squeezenet_bytes(code_bits=6)


def test_synthetic_model_needs_squeezenet_layer_names():
    net = tuple(replace(op, name="stem") if op.name == "conv1" else op
                for op in from_metaparameters())
    assert conv_layers(net)[0].name == "stem"
    with pytest.raises(ValueError, match="no real-model density for layer stem"):
        synthetic_model_bytes(net)


def test_six_bit_point():
    point = explore.tiny_grid()[0]
    r = explore.explore_point(point, code_bits=6, lanes=16, input_size=35)
    assert r["entry_bits"] == r["entries"] * 10
    assert r["multipliers"] == 16 and 0 < r["utilisation"] <= 1
    assert r["frames_per_second"] == pytest.approx(100e6 / r["cycles"])
    assert [row["layer"] for row in r["layers"]] == \
        ["conv1"] + [f"fire{i}" for i in range(2, 10)] + ["conv_final"]


def test_cli_tiny_grid_writes_json_and_pngs(tmp_path, capsys):
    out, plots = tmp_path / "x" / "explore.json", tmp_path / "plots"
    assert explore.main(["--grid", "tiny", "--json", str(out), "--plots", str(plots)]) == 0
    report = json.loads(out.read_text())
    assert report["grid"] == "tiny" and len(report["points"]) == 2
    first = report["points"][0]
    for key in ("float32_mib", "compressed_bytes", "entry_bits", "cycles", "utilisation",
                "frames_per_second", "multipliers", "bram", "holds"):
        assert key in first
    assert set(first["bram"]) == {b["name"] for b in report["boards"]}
    # A tiny network fits the Arty's block RAM; nothing fits the iCE40's 8 multipliers.
    assert "arty_a7" in first["holds"] and "icebreaker" not in first["holds"]
    for name in ("design_space.png", "layer_cycles.png"):
        assert (plots / name).read_bytes()[:8] == PNG_MAGIC
    captured = capsys.readouterr()
    assert "tiny SR 0.125" in captured.out and "holds the whole network" in captured.out
    assert "[2/2]" in captured.err


@pytest.mark.parametrize("args", [
    ["--grid", "huge"], ["--code-bits", "7"], ["--lanes", "20"], ["--input-size", "20"],
    ["--lanes", "many"], ["--frobnicate"],
])
def test_cli_bad_arguments(args, capsys, tmp_path):
    out = tmp_path / "never.json"
    assert explore.main(args + ["--json", str(out)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert captured.out == "" and not out.exists()


def test_cli_unwritable_json(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert explore.main(["--grid", "tiny", "--json", str(blocker / "x.json")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write")


def test_bench_plots_writes_png(tmp_path, capsys):
    plots = tmp_path / "plots"
    assert bench.main(["--lanes", "16", "--json", str(tmp_path / "b.json"),
                       "--plots", str(plots)]) == 0
    assert (plots / "bench_cycles.png").read_bytes()[:8] == PNG_MAGIC
    assert "bench_cycles.png" in capsys.readouterr().err


def test_no_counting_convention_gives_every_printed_size():
    """Why 7.6, 19, 5.7 and 21 are missed: parameter counts are affine in SR (equal SR steps
    add equal sizes), the printed SR sizes are not (13 -> 19 -> 24 for SR 0.5 -> 0.75 -> 1.0),
    and none of the conventions one might use (e3 = E x pct3x3 rounded, floored or ceiled;
    biases in or out; MiB or 10**6 bytes) lands every printed size in its rounding interval."""
    import itertools
    import math

    steps = [_mib(sr=a, pct3x3=0.5) for a in (0.5, 0.75, 1.0)]
    assert abs((steps[1] - steps[0]) - (steps[2] - steps[1])) < 1e-9
    assert PAPER_SR[0.75] - PAPER_SR[0.5] != PAPER_SR[1.0] - PAPER_SR[0.75]

    def size(sr, pct, e3_round, biases, unit):
        total, cin = 3 * 7 * 7 * 96 + 96 * biases, 96
        for i in range(8):
            e = 128 + 128 * (i // 2)
            e3 = e3_round(e * pct)
            s = round(sr * e)
            total += cin * s + s * (e - e3) + 9 * s * e3 + (s + e) * biases
            cin = e
        return (total + cin * 1000 + 1000 * biases) * 4 / unit

    printed = [((sr, 0.5), mb) for sr, mb in PAPER_SR.items()] + \
        [((0.5, p), mb) for p, mb in PAPER_PCT3X3.items()]
    for rnd, biases, unit in itertools.product((round, math.floor, math.ceil), (0, 1),
                                               (2 ** 20, 10 ** 6)):
        hits = [_printed_range(mb)[0] <= size(*x, rnd, biases, unit) < _printed_range(mb)[1]
                for x, mb in printed]
        assert not all(hits), (rnd, biases, unit)
