"""Fire engine performance on a model's Fire layers at full size, from the exact cycle model.

``python -m hw.bench [--model PATH] [--lanes 64] [--channels-per-beat 8] [--clock-mhz 100]
[--json FILE]`` prints one row per Fire layer and writes the same as JSON:

- ``cycles``: one layer run, start to done (the cycle model equals simulation, tests assert it);
- ``nonzero_macs``: output pixels x non-zero weights (what must be computed);
- ``utilisation``: ``nonzero_macs / (multipliers * cycles)``;
- ``dense_macs_per_mult_cycle``: dense-equivalent MACs per multiplier per cycle (above 1 means
  skipping zero weights beats any dense engine with as many multipliers);
- where the cycles go: entry issue (fillers included), waiting for input, waiting for the output
  buffer, and fixed overhead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from hw.fire.cycle_model import fire_cycles
from hw.fire.engine import check_parameters
from hw.fire.program import EngineProgram
from hw.flow.outputs import OutputError, prepare_file, write_files

__all__ = ["bench", "main"]


def bench(program, *, lanes, channels_per_beat, clock_mhz=100.0):
    """Rows of per-layer figures and a summary, for every Fire layer of ``program``."""
    rows = []
    for fire in program.fires:
        pixels = fire.height * fire.width
        counts = [c.entry_count for c in fire.convs]
        model = fire_cycles(fire, lanes=lanes, channels_per_beat=channels_per_beat)
        code_mask = (1 << program.code_bits) - 1
        nonzero = sum(int(np.count_nonzero(
            program.entries[c.entry_base:c.entry_base + c.entry_count] & code_mask))
            for c in fire.convs)
        dense = sum(c.out_channels * c.in_channels * c.kernel ** 2 for c in fire.convs)
        lane_slots = model.groups * lanes
        rows.append({
            "layer": fire.name, "height": fire.height, "width": fire.width,
            "cycles": model.cycles, "multipliers": lanes,
            "entries": sum(counts), "nonzero_weights": nonzero,
            "nonzero_macs": pixels * nonzero, "dense_macs": pixels * dense,
            "utilisation": pixels * nonzero / (lanes * model.cycles),
            "dense_macs_per_mult_cycle": pixels * dense / (lanes * model.cycles),
            "issue_cycles": model.issue, "wait_input_cycles": model.wait_input,
            "wait_output_cycles": model.wait_output, "overhead_cycles": model.overhead,
            "idle_lane_share": 1 - pixels / lane_slots,
            "filler_share": 1 - nonzero / sum(counts),
        })
    cycles = sum(r["cycles"] for r in rows)
    nonzero_macs = sum(r["nonzero_macs"] for r in rows)
    summary = {
        "lanes": lanes, "channels_per_beat": channels_per_beat, "clock_mhz": clock_mhz,
        "cycles": cycles, "nonzero_macs": nonzero_macs,
        "utilisation": nonzero_macs / (lanes * cycles),
        "dense_macs_per_mult_cycle": sum(r["dense_macs"] for r in rows) / (lanes * cycles),
        "fire_stack_ms": cycles / (clock_mhz * 1e3),
        "fire_stack_fps": clock_mhz * 1e6 / cycles,
    }
    return rows, summary


def format_table(rows, summary):
    head = (f"{'layer':<7} {'HxW':>6} {'cycles':>10} {'mults':>5} {'nz MACs':>12} {'util':>6} "
            f"{'dense/m/c':>9} {'issue':>6} {'in':>5} {'out':>5} {'ovh':>5} {'idle':>5}")
    lines = [head, "-" * len(head)]
    for r in rows:
        c = r["cycles"]
        lines.append(
            f"{r['layer']:<7} {r['height']:>3}x{r['width']:<2} {c:>10,} {r['multipliers']:>5} "
            f"{r['nonzero_macs']:>12,} {r['utilisation']:>6.3f} "
            f"{r['dense_macs_per_mult_cycle']:>9.3f} {r['issue_cycles'] / c:>6.1%} "
            f"{r['wait_input_cycles'] / c:>5.1%} {r['wait_output_cycles'] / c:>5.1%} "
            f"{r['overhead_cycles'] / c:>5.1%} {r['idle_lane_share']:>5.1%}")
    s = summary
    lines.append("-" * len(head))
    lines.append(f"{'all':<7} {'':>6} {s['cycles']:>10,} {s['lanes']:>5} {s['nonzero_macs']:>12,} "
                 f"{s['utilisation']:>6.3f} {s['dense_macs_per_mult_cycle']:>9.3f}")
    layers = _layer_span([r["layer"] for r in rows])
    lines.append(f"Fire stack {layers}: {s['fire_stack_ms']:.2f} ms per image at "
                 f"{s['clock_mhz']:g} MHz ({s['fire_stack_fps']:.1f} frames/s), "
                 f"{s['lanes']} lanes, {s['channels_per_beat']} channels per beat.")
    lines.append("issue = cycles issuing entries (all lanes busy, fillers included); in/out = "
                 "waiting for the input loader / output drainer; ovh = control and pipeline "
                 "drains; idle = lanes without a pixel in the last group.")
    return "\n".join(lines)


def _layer_span(names):
    """``fire2..fire9`` for a run of consecutively numbered layers, else the names listed."""
    numbers = [name.removeprefix("fire") for name in names]
    if len(names) > 1 and all(n.isdigit() for n in numbers):
        first = int(numbers[0])
        if [int(n) for n in numbers] == list(range(first, first + len(names))):
            return f"{names[0]}..{names[-1]}"
    return ", ".join(names)


def main(argv=None):
    from golden import calibrate, codec, fixed

    parser = argparse.ArgumentParser(prog="python -m hw.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="Deep Compression .net file (default: the embedded "
                        "synthetic model)")
    parser.add_argument("--lanes", type=int, default=64)
    parser.add_argument("--channels-per-beat", type=int, default=8)
    parser.add_argument("--clock-mhz", type=float, default=100.0)
    parser.add_argument("--json", help="write the figures here (default build/bench.json)",
                        default="build/bench.json")
    args = parser.parse_args(argv)
    try:
        model = codec.load(args.model)
        qmodel = fixed.quantize(model, calibrate.load_plan(model))
        program = EngineProgram.from_model(qmodel)
        check_parameters(lanes=args.lanes, channels_per_beat=args.channels_per_beat)
        if args.json:
            prepare_file(args.json, "--json")
    except (OSError, ValueError, TypeError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.model is None:
        print("model: the embedded synthetic SqueezeNet (pass --model for the real one)",
              file=sys.stderr)
    rows, summary = bench(program, lanes=args.lanes, channels_per_beat=args.channels_per_beat,
                          clock_mhz=args.clock_mhz)
    if args.json:
        text = json.dumps({"model": args.model or "synthetic", "summary": summary,
                           "layers": rows}, indent=2)
        try:
            write_files({Path(args.json): text}, "--json")
        except OutputError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    print(format_table(rows, summary))
    if args.json:
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
