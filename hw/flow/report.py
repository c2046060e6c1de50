"""The build report: resources, the weight store's plan, speed and steps, as JSON and Markdown."""

from __future__ import annotations

import json

from hw.arch import arch_of
from hw.network.cycle_model import network_cycles
from hw.flow.outputs import write_files
from hw.flow.synth import bram_cells

__all__ = ["frames_per_second", "make_report", "write_report", "report_markdown"]


def frames_per_second(program, engine_config, fmax_mhz):
    """(frames per second, cycles) of the Fire layers built (``program``: the engine program
    of the engine's datapath), one image, at ``fmax_mhz``; ``None`` without an Fmax."""
    if not fmax_mhz:
        return None
    arch = arch_of(engine_config)
    cycles = sum(arch.layer_cycles(program, k, lanes=engine_config["lanes"],
                                   channels_per_beat=engine_config["channels_per_beat"]).cycles
                 for k, layer in enumerate(program.layers) if layer.is_fire)
    return fmax_mhz * 1e6 / cycles, cycles


def make_report(board, engine_config, qmodel, chosen, left_out, program, plan, synth, cells,
                pnr, bitstream, steps, model, mode):
    """The report dictionary (``report.json``): the mode (whole network on chip, or host-driven
    with the layers ``chosen`` on the board, and why), resources used, predicted and available,
    the weight store's plan, Fmax and frames per second, the build steps and every cell count.

    ``program`` is the NetworkProgram; ``mode["mode"]`` is ``network`` or ``host-driven``."""
    network = program if mode["mode"] == "network" else None
    arch = arch_of(engine_config)
    arch_program = program.program_for(arch, None if network is not None else chosen)
    program = (program.engine_program if network is not None else
               program.engine_program_for(chosen))
    dev = board.device
    lanes = engine_config["lanes"]
    util = pnr["utilisation"]
    lut_key = {"xc7": None, "ecp5": "LUT4", "ice40": "ICESTORM_LC"}[dev.family]
    ff_key = {"xc7": None, "ecp5": "DFF", "ice40": "ICESTORM_LC"}[dev.family]
    used_sites = None if synth is None else dev.sites_for(bram_cells(cells))
    resources = {
        "lut": {"used": (synth or {}).get("lut"), "available": dev.luts, "predicted": None},
        "ff": {"used": (synth or {}).get("ff"), "available": dev.ffs, "predicted": None},
        "bram": {"used": used_sites, "available": dev.bram_sites, "predicted": plan.sites,
                 "primitives_used": (synth or {}).get("bram"),
                 "primitives_predicted": plan.primitives},
        "dsp": {"used": (synth or {}).get("dsp"), "available": dev.dsps,
                "predicted": arch.multipliers(lanes)},
    }
    if lut_key in util:
        resources["lut"]["placed"] = util[lut_key][0]
    if ff_key in util and ff_key != lut_key:
        resources["ff"]["placed"] = util[ff_key][0]
    if network is not None:
        cycles = network_cycles(network, lanes=lanes, arch=arch).cycles
        fps = (pnr["fmax_mhz"] * 1e6 / cycles, cycles) if pnr["fmax_mhz"] else None
    else:
        cycles = None
        fps = frames_per_second(arch_program, engine_config, pnr["fmax_mhz"])
    rows = []
    for fire in program.layers:
        bits = sum(c.entry_count for c in fire.convs) * program.entry_width
        rows.append({"layer": fire.name, "entries": sum(c.entry_count for c in fire.convs),
                     "entry_bits": bits})
    return {
        "board": board.name,
        "device": dev.name,
        "family": dev.family,
        "model": model or "synthetic",
        "engine": {**engine_config, "weight_bits": qmodel.weight_bits,
                   "code_bits": program.code_bits, "clock_hz": board.design_clock_hz,
                   "board_clock_hz": board.clock_hz,
                   "datapath": arch.describe(lanes)},
        "mode": mode,
        "network_cycles": cycles,
        "frames_per_second_at_100mhz": round(100e6 / cycles, 2) if cycles else None,
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
        "clock_mhz": board.design_clock_hz / 1e6 if board.design_clock_hz else None,
        "timing_met": (pnr["fmax_mhz"] >= board.design_clock_hz / 1e6
                       if pnr["fmax_mhz"] and board.design_clock_hz else None),
        "critical_path": pnr["critical_path"],
        "frames_per_second_estimate": round(fps[0], 2) if fps else None,
        "fire_stack_cycles": fps[1] if fps and network is None else None,
        "bitstream": bitstream,
        "steps": steps.rows,
        "cells": cells,
    }


def write_report(report, out, program=None):
    """Write ``out/report.json``, ``out/report.md`` and, given the NetworkProgram, the plots
    beside them (``resources.png``; ``cycles.png``: the whole network's cycles per layer at this
    lane count), all or none (OutputError if one cannot be written)."""
    files = {}
    if program is not None:
        from hw.bench_arch import bench_any
        from hw.plots import plot_bench_cycles, plot_resources
        rows, summary = bench_any(program, report["engine"]["lanes"], arch_of(report["engine"]))
        files = {out / "resources.png": plot_resources(report, None),
                 out / "cycles.png": plot_bench_cycles(rows, summary, None)}
        report = {**report, "plots": [path.name for path in files]}
    write_files({out / "report.json": json.dumps(report, indent=2) + "\n",
                 out / "report.md": report_markdown(report), **files}, "--out")


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}"
    return f"{v:,}"


def report_markdown(r):
    """``report.md``: the report dictionary as Markdown tables."""
    e = r["engine"]
    lines = [
        f"# Build report: {r['board']} ({r['device']})",
        "",
        f"Engine: {e.get('datapath', str(e['lanes']) + ' lanes')}, "
        f"{e['channels_per_beat']} channels per beat, "
        f"{e['weight_bits']}-bit weights, {e['code_bits']}-bit codes. Model: {r['model']}.",
        "",
        ("Mode: **the whole network on chip** (weights and activations)" if
         r["mode"]["mode"] == "network" else
         "Mode: **host-driven** (the host runs the network layer by layer over the UART link, "
         "the board the layers it holds: `python -m hw.host classify`)")
        + f": {r['mode']['why']}.",
        "",
        "| resource | used (synthesis) | placed | predicted | available |",
        "|---|---|---|---|---|",
    ]
    for name, row in r["resources"].items():
        lines.append(f"| {name} | {_fmt(row['used'])} | {_fmt(row.get('placed'))} | "
                     f"{_fmt(row['predicted'])} | {_fmt(row['available'])} |")
    ws = r["weight_store"]
    lines += [
        "",
        f"Layers on chip: **{', '.join(ws['layers'])}**"
        + (f"; run on the host (no room): {', '.join(ws['left_out'])}" if ws["left_out"] else ""),
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
        (f"Fmax: {_fmt(fmax)} MHz, clock {_fmt(r['clock_mhz'])} MHz: timing "
         + ("met" if r["timing_met"] else "NOT met (the bitstream needs a slower clock)")
         if fmax else "Fmax: - (place-and-route did not run)"),
        (f"Whole network: {_fmt(r['network_cycles'])} cycles per image, "
         f"{_fmt(r['frames_per_second_at_100mhz'])} frames/s at 100 MHz, "
         f"{_fmt(r['frames_per_second_estimate'])} at Fmax" if r["network_cycles"] else
         f"Frames per second (these Fire layers, one image, at Fmax): "
         f"{_fmt(r['frames_per_second_estimate'])}"),
        f"Bitstream: {r['bitstream'] or '-'}",
        "",
        *[f"![{name[:-4]}]({name})" for name in r.get("plots", [])],
        *([""] if r.get("plots") else []),
        "| step | status | seconds |",
        "|---|---|---|",
    ]
    for s in r["steps"]:
        status = s["status"] + (f" ({s['reason']})" if s.get("reason") else "")
        lines.append(f"| {s['name']} | {status} | {s['seconds']:.1f} |")
    if r["critical_path"]:
        lines += ["", "Critical path:", "", "```"] + r["critical_path"] + ["```"]
    return "\n".join(lines) + "\n"
