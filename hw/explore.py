"""The SqueezeNet paper's design space (Figure 3) in FPGA terms.

``python -m hw.explore [--grid paper|tiny] [--code-bits 8|6] [--lanes 64] [--input-size N]
[--seed 2017] [--json FILE] [--plots DIR]``

The paper sweeps (a) the squeeze ratio SR (0.125 .. 1.0, 3x3 share 0.5) and (b) the share of
3x3 expand filters (1% .. 99%, SR 0.5), the other metaparameters as SqueezeNet's (base_e 128,
incr_e 128, freq 2). For each network (:func:`golden.network.from_metaparameters`, v1.0-like:
conv1 7x7/2, pools after conv1, fire4 and fire8, conv10 with pad 1) this computes:

- its float32 size: parameters (weights and biases) x 4 bytes in MiB (2**20 bytes), the unit
  that reproduces the paper's 4.8 MB of SqueezeNet (1,248,424 parameters; 4.99 in 10**6) and
  its 13 and 24 MB; the paper's 7.6, 19, 5.7 and 21 MB come out as 7.50, 18.47, 5.64 and
  20.33 (within 3.5%; in 10**6 bytes the sizes are up to 4.8% off, 13.6 for 13). No counting
  convention gives all seven printed sizes: parameter counts grow by the same amount for
  each SR step of 0.25, the printed ones do not (13 -> 19 -> 24), and rounding e3 up or down,
  leaving biases out or counting 10**6-byte MB all miss some (``tests/test_explore.py``);
- a synthetic compressed model at the real model's per-layer densities
  (:func:`golden.synthetic.synthetic_model`): its ``.net`` file size and its weight-store entry
  bits (stored entries, fillers included, x (code bits + 4));
- the whole-network accelerator with ``--lanes`` multipliers: cycles per image from the exact
  cycle model, utilisation on the non-zero weights, frames/s at 100 MHz (as ``hw.bench``);
- its block-RAM plan (:mod:`hw.flow.planner`) on every board's device, from one elaboration of
  the design, and the boards that hold the whole network: plan within the board's block-RAM
  budget (``Board.bram_budget`` of its sites) and ``lanes`` within its multipliers.

The quantisation plan is calibrated on one small noise image, not the photographs: the cycle
model and the planner see the entries and the memory shapes, never the shifts, and the
shift rules of :func:`golden.calibrate.calibrate` keep the plan valid.

Prints a table on standard output, progress on standard error; ``--json`` writes every figure,
``--plots DIR`` writes ``DIR/design_space.png`` and ``DIR/layer_cycles.png``. Bad arguments
give one ``error: ...`` line and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from boards import BOARDS
from golden import calibrate, fixed
from golden.codec import decode
from golden.network import conv_layers, from_metaparameters
from golden.synthetic import DEFAULT_SEED, synthetic_model_bytes
from hw.bench import bench_network
from hw.fire.engine import check_parameters
from hw.flow.layers import network_system
from hw.flow.memories import design_memories
from hw.flow.outputs import OutputError, make_output_dir, prepare_file, write_files
from hw.flow.planner import plan_memories
from hw.network.program import NetworkProgram
from hw.plots import MIB

__all__ = ["DesignPoint", "GRIDS", "paper_grid", "tiny_grid", "float32_mib", "quick_plan",
           "explore_point", "explore", "format_table", "main"]

#: Figure 3(a): SR -> MB of float32 weights printed in the paper (3x3 share 0.5).
PAPER_SR_MB = {0.125: 4.8, 0.25: 7.6, 0.5: 13.0, 0.75: 19.0, 1.0: 24.0}
#: Figure 3(b): the 3x3 shares swept (SR 0.5), and the MB printed for some of them.
PAPER_PCT3X3 = (0.01, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 0.99)
PAPER_PCT3X3_MB = {0.01: 5.7, 0.5: 13.0, 0.99: 21.0}

CHANNELS_PER_BEAT = 8
CLOCK_MHZ = 100.0
# Side of the noise image the quick plan is calibrated on (any size the network accepts).
_CALIBRATION_SIZE = 63


@dataclass(frozen=True)
class DesignPoint:
    """One network of a sweep: ``metaparameters`` for :func:`from_metaparameters` (as sorted
    ``(name, value)`` pairs, so points are hashable), the MB the paper prints (or None)."""
    label: str
    sweep: str
    metaparameters: tuple
    paper_mb: float | None = None

    def network(self):
        return from_metaparameters(**dict(self.metaparameters))


def _point(label, sweep, paper_mb=None, **meta):
    return DesignPoint(label, sweep, tuple(sorted(meta.items())), paper_mb)


def paper_grid():
    """Figure 3's 14 points (SR 0.5 with 50% 3x3 is in both sweeps)."""
    points = [_point(f"SR {sr:g}", "SR", mb, sr=sr, pct3x3=0.5) for sr, mb in PAPER_SR_MB.items()]
    points += [_point(f"3x3 {pct:.1%}".replace(".0%", "%"), "pct3x3", PAPER_PCT3X3_MB.get(pct),
                      sr=0.5, pct3x3=pct) for pct in PAPER_PCT3X3]
    return points


def tiny_grid():
    """Two small networks (SqueezeNet's layer names, base_e 16, 10 classes) for quick checks."""
    small = dict(base_e=16, incr_e=16, num_classes=10)
    return [_point("tiny SR 0.125", "SR", sr=0.125, **small),
            _point("tiny SR 0.25", "SR", sr=0.25, **small)]


#: Grids by name, with the image size each is run at unless ``--input-size`` says otherwise.
GRIDS = {"paper": (paper_grid, 227), "tiny": (tiny_grid, 63)}


def float32_mib(network):
    """(parameters, float32 MiB) of ``network``: weights and biases, 4 bytes each."""
    params = sum(c.weight_count + c.out_channels for c in conv_layers(network))
    return params, params * 4 / MIB


def quick_plan(model):
    """A quantisation plan of ``model`` calibrated on one deterministic noise image (fast;
    valid shifts, meaningless accuracy: for cycle counting and memory planning)."""
    image = np.random.default_rng(0).integers(
        0, 256, (3, _CALIBRATION_SIZE, _CALIBRATION_SIZE), dtype=np.uint8)
    return calibrate.calibrate(model, [image], image_names=["noise"])


def explore_point(point, *, code_bits=8, lanes=64, input_size=227, seed=DEFAULT_SEED,
                  boards=None, log=None):
    """Every figure of one design point, as a JSON-ready dict (see the module docstring)."""
    boards = list((boards or BOARDS).values())
    times = {}
    t0 = time.perf_counter()
    network = point.network()
    params, mib = float32_mib(network)
    data = synthetic_model_bytes(network, seed, code_bits)
    model = decode(data, network, code_bits)
    qmodel = fixed.quantize(model, quick_plan(model))
    program = NetworkProgram(qmodel, input_size=input_size, channels_per_beat=CHANNELS_PER_BEAT,
                             code_bits=code_bits)
    times["model"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows, summary = bench_network(program, lanes=lanes, clock_mhz=CLOCK_MHZ)
    times["cycles"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine_config = {"lanes": lanes, "channels_per_beat": CHANNELS_PER_BEAT}
    memories = design_memories(network_system(program, engine_config))
    bram = {}
    for board in boards:
        plan = plan_memories(memories, board.device)
        budget = int(board.bram_budget * board.device.bram_sites)
        bram[board.name] = {
            "sites": plan.sites, "budget_sites": budget, "fits_device": plan.fits,
            "bits_used": plan.bits_used, "bits_allocated": plan.bits_allocated,
            "holds": plan.fits and plan.sites <= budget and lanes <= board.device.dsps,
        }
    times["memories"] = time.perf_counter() - t0
    if log:
        log(f"{point.label}: model {times['model']:.1f} s, cycle model "
            f"{times['cycles']:.1f} s, design memories and plans {times['memories']:.1f} s")
    eprog = program.engine_program
    return {
        "label": point.label, "sweep": point.sweep,
        "metaparameters": dict(point.metaparameters),
        "paper_mb": point.paper_mb, "parameters": params, "float32_mib": mib,
        "float32_mb_1e6": params * 4 / 1e6,
        "compressed_bytes": len(data), "compressed_mib": len(data) / MIB,
        "code_bits": code_bits, "entries": model.entries, "nonzero_weights": model.nonzero,
        "entry_bits": model.entries * (code_bits + 4),
        "codebook_bits": len(eprog.codebooks) * eprog.weight_bits,
        "activation_store_bits": program.store_bits,
        "cycles": summary["cycles"], "utilisation": summary["utilisation"],
        "frames_per_second": summary["frames_per_second"],
        "dense_macs_per_mult_cycle": summary["dense_macs_per_mult_cycle"],
        "multipliers": lanes, "bram": bram,
        "holds": [name for name, b in bram.items() if b["holds"]],
        "seconds": times, "layers": rows,
    }


def explore(points, *, code_bits=8, lanes=64, input_size=227, seed=DEFAULT_SEED, log=None):
    """Figures of every point; a network in several sweeps is computed once."""
    done, results = {}, []
    unique = list(dict.fromkeys(p.metaparameters for p in points))
    for point in points:
        if point.metaparameters not in done:
            if log:
                log(f"[{unique.index(point.metaparameters) + 1}/{len(unique)}] ", end="")
            done[point.metaparameters] = explore_point(
                point, code_bits=code_bits, lanes=lanes, input_size=input_size, seed=seed,
                log=log)
        first = done[point.metaparameters]
        results.append({**first, "label": point.label, "sweep": point.sweep,
                        "paper_mb": point.paper_mb})
    return results


def boards_summary(boards=None):
    """Each board's device, block RAM and budget, as JSON-ready dicts."""
    return [{"name": b.name, "device": b.device.name, "family": b.device.family,
             "bram_sites": b.device.bram_sites, "bram_bits": b.device.bram_bits,
             "budget_sites": int(b.bram_budget * b.device.bram_sites),
             "multipliers": b.device.dsps}
            for b in (boards or BOARDS).values()]


def format_table(results, *, code_bits, lanes, input_size):
    first_board = {}
    for b in BOARDS.values():
        first_board.setdefault(b.device.family, b.name)
    families = [f for f in ("xc7", "ecp5") if f in first_board]
    head = (f"{'point':<13} {'MiB f32':>7} {'paper':>5} {'.net MiB':>8} {'entry Mbit':>10} "
            f"{'cycles':>11} {'util':>5} {'fps':>5} {'mults':>5} "
            + " ".join(f"{f + ' sites':>10}" for f in families) + "  holds the whole network")
    lines = [head, "-" * len(head)]
    for r in results:
        paper = f"{r['paper_mb']:g}" if r["paper_mb"] is not None else "-"
        sites = " ".join(f"{r['bram'][first_board[f]]['sites']:>10,}" for f in families)
        lines.append(
            f"{r['label']:<13} {r['float32_mib']:>7.2f} {paper:>5} {r['compressed_mib']:>8.3f} "
            f"{r['entry_bits'] / 1e6:>10.2f} {r['cycles']:>11,} {r['utilisation']:>5.3f} "
            f"{r['frames_per_second']:>5.1f} {r['multipliers']:>5} {sites}  "
            f"{', '.join(r['holds']) or 'none'}")
    budgets = ", ".join(f"{b['name']} {b['budget_sites']:,}" + (
        f" of {b['bram_sites']:,}" if b["budget_sites"] != b["bram_sites"] else "")
        for b in boards_summary())
    notes = [
        f"{code_bits}-bit codes, {lanes} lanes, {input_size}x{input_size} images, "
        f"{CHANNELS_PER_BEAT} channels per beat, fps at {CLOCK_MHZ:g} MHz.",
        "MiB f32: parameters (weights + biases) x 4 bytes / 2**20 (the paper's MB); "
        ".net MiB: the synthetic compressed file at the real model's densities; entry Mbit: "
        f"stored entries x {code_bits + 4} bits.",
        "sites: block-RAM sites the whole-network design needs (xc7: RAMB36, ecp5: EBR); "
        f"budgets (sites): {budgets}; a board holds a point when the plan fits its budget and "
        "its multipliers.",
    ]
    lines.append("-" * len(head))
    lines += [line for note in notes for line in textwrap.wrap(note, 100)]
    return "\n".join(lines)


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _ArgumentError(message)


def main(argv=None):
    parser = _Parser(prog="python -m hw.explore", description=__doc__.split("\n")[0])
    parser.add_argument("--grid", choices=sorted(GRIDS), default="paper",
                        help="paper: Figure 3's 14 points; tiny: two small networks")
    parser.add_argument("--code-bits", type=int, choices=(8, 6), default=8)
    parser.add_argument("--lanes", type=int, default=64)
    parser.add_argument("--input-size", type=int,
                        help="image side (default: 227 for the paper grid, 63 for tiny)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--json", help="write every figure here")
    parser.add_argument("--plots", help="write design_space.png and layer_cycles.png here")
    try:
        args = parser.parse_args(argv)
        check_parameters(lanes=args.lanes, channels_per_beat=CHANNELS_PER_BEAT)
        grid, default_size = GRIDS[args.grid]
        input_size = default_size if args.input_size is None else args.input_size
        if not 35 <= input_size <= 1024:
            raise ValueError(f"input size must be 35..1024, not {input_size}")
        if args.json:
            prepare_file(args.json, "--json")
        plots = make_output_dir(args.plots, "--plots") if args.plots else None
    except (_ArgumentError, ValueError, TypeError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    def log(text, end="\n"):
        print(text, end=end, file=sys.stderr, flush=True)

    start = time.perf_counter()
    results = explore(grid(), code_bits=args.code_bits, lanes=args.lanes,
                      input_size=input_size, seed=args.seed, log=log)
    elapsed = time.perf_counter() - start
    print(format_table(results, code_bits=args.code_bits, lanes=args.lanes,
                       input_size=input_size))
    log(f"{len(results)} points in {elapsed:.1f} s")
    title = (f"{args.grid} grid: {args.code_bits}-bit codes, {args.lanes} lanes, "
             f"{input_size}x{input_size} images")
    try:
        if args.json:
            report = {"grid": args.grid, "code_bits": args.code_bits, "lanes": args.lanes,
                      "input_size": input_size, "channels_per_beat": CHANNELS_PER_BEAT,
                      "clock_mhz": CLOCK_MHZ, "seed": args.seed, "mb_unit": "MiB (2**20 bytes)",
                      "seconds": elapsed, "boards": boards_summary(), "points": results}
            write_files({Path(args.json): json.dumps(report, indent=1)}, "--json")
            log(f"wrote {args.json}")
        if plots is not None:
            from hw.plots import plot_design_space, plot_layer_cycles
            for path in (plot_design_space(results, boards_summary(), plots / "design_space.png",
                                           title=title),
                         plot_layer_cycles(results, plots / "layer_cycles.png", title=title)):
                log(f"wrote {path}")
    except (OSError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
