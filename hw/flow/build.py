"""The build: load the model, choose the layers, synthesise (and place and route where the open
tools exist), write the report.

On ECP5 and iCE40 boards the amaranth-boards platform's own flow runs Yosys, nextpnr and the
bitstream packer (YoWASP binaries unless the toolchain variables name others). On 7-series
boards place-and-route needs the openXC7 tools (``nextpnr-xilinx``), which no package index
carries: the design is synthesised out of context (:func:`hw.flow.synth.synthesize`) and the
report says why place-and-route was skipped.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from boards import get_board
from hw.arch import ARCHS, arch_of, choose_dataflow
from hw.network.cycle_model import check_channels_per_cycle
from hw.board.top import BoardTop
from hw.fire.engine import check_parameters
from hw.flow.errors import BuildError, ToolError
from hw.flow.layers import (choose_steps, network_program, network_system, plan_network,
                            step_system)
from hw.flow.logs import parse_nextpnr, parse_yosys_stats
from hw.flow.outputs import make_output_dir
from hw.flow.fanout import DEFAULT_LIMIT as FANOUT_LIMIT
from hw.flow.fanout import replicate_high_fanout
from hw.flow.multreg import absorb_multiplier_registers
from hw.flow.outreg import absorb_output_registers, buffer_collisions_undefined
from hw.flow.report import make_report, write_report
from hw.flow.yowasp import YOWASP_ENV, first_run_note
from hw.network.cycle_model import network_cycles

__all__ = ["BuildError", "ToolError", "Steps", "build"]


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


def _run_logged(step, cmd, cwd, log):
    """Run one tool of the flow with its output in ``cwd/log``; :class:`ToolError` if it fails."""
    path = cwd / log
    with open(path, "a", encoding="utf-8") as out:
        try:
            proc = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        except OSError as e:
            raise ToolError(step, cmd[0], path, f"could not be started ({e.strerror})") from None
    if proc.returncode != 0:
        raise ToolError(step, cmd[0], path, f"exited with status {proc.returncode}")


def _open_flow(board, program, chosen, engine_config, out, steps):
    """Yosys -> nextpnr -> packer through the board's amaranth-boards platform."""
    from hw.board.top import NetworkStepSystem
    platform = board.platform_class()()
    top = BoardTop(lambda clk_hz: NetworkStepSystem(program, chosen, lanes=engine_config["lanes"],
                                                    clk_hz=clk_hz, arch=arch_of(engine_config)),
                   pll_hz=board.pll_hz)
    options = {"synth_opts": "-dsp"} if board.family == "ice40" else {}
    if board.family == "ecp5":
        # A design that misses the PLL's clock still gets its bitstream and report; the
        # report says the timing was not met (report.md, ``timing_met``).
        # nextpnr's default router1 for every lane count (router2 stalled near 7,000 overused
        # wires at 64 lanes), after the electrostatic placer (``static``) instead of HeAP: on
        # the 64-lane netlist HeAP + SA left a 75.5 MHz pre-route estimate and router1 needed
        # 488-625 s (P&R 9.5-12.3 min); ``static`` gives half the wirelength, 82.4 MHz before
        # routing, router1 254 s and 110.0 MHz (P&R 5.8 min; README "64 lanes at 100 MHz").
        options["nextpnr_opts"] = "--timing-allow-fail --placer static"
    plan = steps.run("elaborate", lambda: platform.build(top, name="top", do_build=False,
                                                         **options))
    plan.extract(str(out))
    if board.family == "ecp5":
        ports = buffer_collisions_undefined(out / "top.il")
        say(f"{ports} buffer read ports (group and line buffers, pool lines) marked undefined on a "
            f"same-address write (no emulation logic after their RAMs: hw/flow/outreg.py)")
    env = dict(os.environ)
    for key, value in YOWASP_ENV.items():
        env.setdefault(key, value)
    script = (out / "build_top.sh").read_text().splitlines()
    commands = []
    for line in script:
        if line.startswith('"$'):
            var = re.match(r'"\$(\w+)"', line).group(1)
            commands.append((var, [env[var]] + shlex.split(line[len(var) + 3:])))
    names = {"YOSYS": "synthesis", "NEXTPNR_ECP5": "place_and_route",
             "NEXTPNR_ICE40": "place_and_route", "ECPPACK": "bitstream", "ICEPACK": "bitstream"}
    note = first_run_note(argv[0] for _, argv in commands)
    if note:
        say(note)
    for var, argv in commands:
        step = names.get(var, var.lower())
        steps.run(step, _run_logged, step, argv, out, f"{step}.log")
        if step == "synthesis" and board.family == "ecp5":
            moved = steps.run("ram_output_registers", absorb_output_registers, out / "top.json")
            say(f"{moved} flip-flops moved into their block RAMs' output registers "
                f"(REGMODE OUTREG: hw/flow/outreg.py)")
            moved, mults = steps.run("multiplier_registers", absorb_multiplier_registers,
                                     out / "top.json", inputs=True)
            say(f"{moved} flip-flops moved into {mults} multipliers' input and output registers "
                f"(MULT18X18D REG_INPUTA/B, REG_OUTPUT: hw/flow/multreg.py)")
            split, copies = steps.run("fanout_copies", replicate_high_fanout, out / "top.json")
            say(f"{split} flip-flops driving more than {FANOUT_LIMIT} cells copied "
                f"{copies} times, one copy per block of loads (hw/flow/fanout.py)")
    return parse_yosys_stats(out / "top.rpt", board.family), parse_nextpnr(out / "top.tim")


def _engine_config(board, lanes, channels_per_beat, arch=None, io=None):
    """The engine configuration: the board's, with the options given (``io``: the
    ``channels_per_cycle`` and ``patch_runs`` asked for, None where not). For the dataflow
    datapath ``lanes`` is the most multipliers (see :func:`_choose_datapath`)."""
    engine_config = dict(board.engine)
    if lanes is not None:
        engine_config["lanes"] = lanes
    if channels_per_beat is not None:
        engine_config["channels_per_beat"] = channels_per_beat
    if arch is not None:
        engine_config["arch"] = arch
    engine_config.update({k: v for k, v in (io or {}).items() if v is not None})
    engine_config.setdefault("arch", "shared")
    if engine_config["arch"] != "shared":
        engine_config.pop("line_buffer", None)     # a shared-engine option of some boards
    try:
        if engine_config["arch"] not in ARCHS:
            raise ValueError(f"unknown architecture {engine_config['arch']!r}: use "
                             f"{' or '.join(ARCHS)}")
        if engine_config["arch"] == "dataflow":
            check_parameters(lanes=1, channels_per_beat=engine_config["channels_per_beat"])
            if not isinstance(engine_config["lanes"], int) or engine_config["lanes"] < 3:
                raise ValueError(f"the dataflow datapath needs at least 3 multipliers, not "
                                 f"--lanes {engine_config['lanes']!r}")
        else:
            check_parameters(lanes=engine_config["lanes"],
                             channels_per_beat=engine_config["channels_per_beat"])
        per_cycle = engine_config.get("channels_per_cycle", 1)
        if engine_config["arch"] != "shared" and per_cycle != 1:
            raise ValueError("--channels-per-cycle is for the shared engine (--arch shared)")
        if per_cycle != 1:
            check_channels_per_cycle(engine_config["lanes"], engine_config["channels_per_beat"],
                                     per_cycle)
    except (TypeError, ValueError) as e:
        raise BuildError(str(e)) from None
    return engine_config


def _choose_datapath(program, engine_config, steps):
    """For the dataflow datapath: the group size and unit multipliers within ``lanes``
    multipliers with the fewest cycles on the whole network (:func:`hw.arch.choose_dataflow`);
    sets ``lanes`` (the group size), ``passes`` and ``multipliers``."""
    if engine_config["arch"] != "dataflow":
        engine_config["multipliers"] = engine_config["lanes"]
        return
    budget = engine_config["lanes"]
    _, lanes, arch = steps.run("datapath", choose_dataflow, budget,
                               lambda a, p: network_cycles(program, lanes=p, arch=a).cycles)
    engine_config.update(lanes=lanes, passes=list(arch.passes), balance=arch.balance,
                         multipliers=arch.multipliers(lanes), budget=budget)
    say(f"datapath: {arch.describe(lanes)} (the fewest cycles within {budget} multipliers)")


def _load_model(model, steps, code_bits=8):
    from golden import calibrate, codec, fixed

    def load():
        compressed = codec.load(model, code_bits=code_bits)
        return fixed.quantize(compressed, calibrate.load_plan(compressed))

    try:
        qmodel = steps.run("model", load)
    except (OSError, ValueError, TypeError) as e:
        raise BuildError(f"cannot load the model: {e}") from None
    if model is None:
        say("model: the embedded synthetic SqueezeNet (pass --model for the real one)")
    return qmodel


def _synthesise(board, program, chosen, engine_config, out, steps, whole):
    """(resources or None, cells, nextpnr results, bitstream path or None) of the whole-network
    design (``whole``) or the host-driven one holding the steps ``chosen``."""
    pnr = {"utilisation": {}, "fmax_mhz": None, "critical_path": []}
    if board.has_open_pnr and not whole:
        (synth, cells), pnr = _open_flow(board, program, chosen, engine_config, out, steps)
        bitstream = next((str(out / f"top.{ext}") for ext in ("bin", "bit")
                          if (out / f"top.{ext}").exists()), None)
        return synth, cells, pnr, bitstream
    from hw.flow.synth import synthesize
    system = (network_system(program, engine_config) if whole else
              step_system(board, program, chosen, engine_config))
    try:
        result = steps.run("synthesis", synthesize, system, board.family, top_name="top",
                           workdir=out / "synth")
    except FileNotFoundError as e:
        raise ToolError("synthesis", "yosys", out / "synth", f"not found ({e})") from None
    why = ("synthesis-only target" if board.synthesis_only else
           f"the {board.family} place-and-route tools (nextpnr-xilinx, fasm2frames, "
           f"xc7frames2bit) are not installed: no package index carries them")
    steps.skip("place_and_route", why)
    steps.skip("bitstream", why)
    return result.resources, result.cells, pnr, None


def _choose_mode(board, program, engine_config, layers, steps):
    """(plan or None, mode dict): the whole network's plan where it fits the device (and no
    ``--layers`` was asked for), else None: the host drives the network layer by layer."""
    host = "host-driven"
    if layers:
        return None, {"mode": host, "why": "--layers asks for chosen layers behind the host link"}
    plan = steps.run("plan_network", plan_network, board, program, engine_config)
    dev = board.device
    budget = int(board.bram_budget * dev.bram_sites)
    # the shared engine's weight_store, the dataflow units' weight_store0..2
    weights = sum(r.bits for r in plan.rows if re.search(r"/weight_store\d*/", f"/{r.name}/"))
    need = (f"the whole network needs {plan.bits_used:,} bits of memory (weights {weights:,}, "
            f"activation store {program.store_bits:,}, engine and other buffers "
            f"{plan.bits_used - weights - program.store_bits:,}) in {plan.sites} block-RAM "
            f"sites; {dev.name} has {dev.bram_bits:,} bits in {dev.bram_sites} sites"
            + (f", {budget} for this board" if budget < dev.bram_sites else ""))
    mode = {"needed_bits": plan.bits_used, "weight_bits": weights, "needed_sites": plan.sites,
            "available_bits": dev.bram_bits, "available_sites": budget,
            "activation_store_bits": program.store_bits}
    if not (plan.fits and plan.sites <= budget):
        return None, {"mode": host, "why": need, **mode}
    if board.has_open_pnr:
        return None, {"mode": host, "why": need + ", but the whole-network design has no board "
                      "top for the place-and-route flow yet", **mode}
    return plan, {"mode": "network", "why": need, **mode}


def build(board_name, *, model=None, layers=None, out=None, lanes=None, channels_per_beat=None,
          code_bits=8, synthesize=True, arch=None, channels_per_cycle=None, patch_runs=None):
    """Run the whole build and return the report dictionary (also written to ``out``).

    Raises
    ------
    BuildError
        For a bad request (unknown board or layer, bad engine parameters, a model that cannot
        be loaded, layers that do not fit, an output directory that cannot be written); nothing
        is written then.
    """
    try:
        board = get_board(board_name)
    except KeyError as e:
        raise BuildError(str(e).strip("'\"") + "; choose one with --board") from None
    engine_config = _engine_config(board, lanes, channels_per_beat, arch,
                                   {"channels_per_cycle": channels_per_cycle,
                                    "patch_runs": patch_runs})
    out = Path(out or Path("build") / board.name)
    steps = Steps()
    qmodel = _load_model(model, steps, code_bits)
    try:
        program = network_program(qmodel, engine_config, code_bits)
    except ValueError as e:
        raise BuildError(f"the model's network cannot run on the accelerator: {e}") from None
    _choose_datapath(program, engine_config, steps)
    plan, mode = _choose_mode(board, program, engine_config, layers, steps)
    whole = plan is not None
    names = [s.name for s in program.steps]
    if whole:
        chosen, left_out = names, []
        say(f"mode: the whole network on chip ({mode['why']})")
    else:
        chosen, plan = steps.run("plan", choose_steps, board, program, engine_config, layers)
        left_out = [name for name in names if name not in chosen]
        say(f"mode: host-driven, the host runs the network layer by layer over the UART link "
            f"({mode['why']})")
        say(f"layers on the board: {', '.join(chosen)}"
            + (f" (on the host: {', '.join(left_out)})" if left_out else ""))

    make_output_dir(out, "--out")
    if synthesize:
        synth, cells, pnr, bitstream = _synthesise(board, program, chosen, engine_config, out,
                                                   steps, whole)
    else:
        synth, cells, bitstream = None, {}, None
        pnr = {"utilisation": {}, "fmax_mhz": None, "critical_path": []}
        steps.skip("synthesis", "--no-synth")

    report = make_report(board, engine_config, qmodel, chosen, left_out, program, plan, synth,
                         cells, pnr, bitstream, steps, model, mode)
    write_report(report, out, program)
    if report["timing_met"] is False:
        say(f"warning: timing NOT met: Fmax {report['fmax_mhz']} MHz is below the "
            f"{report['clock_mhz']:g} MHz clock the bitstream runs at (see the critical path "
            f"in the report)")
    say(f"report: {out / 'report.md'} and {out / 'report.json'}")
    return report
