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

import numpy as np

from hw.fire.cycle_model import layer_cycles
from hw.fire.engine import FireEngine, check_parameters
from hw.fire.program import EngineProgram

__all__ = ["bench", "main"]


def bench(program, *, lanes, channels_per_beat, clock_mhz=100.0):
    """Rows of per-layer figures and a summary, for every Fire layer of ``program``."""
    rows = []
    for fire in program.fires:
        pixels = fire.height * fire.width
        counts = [c.entry_count for c in fire.convs]
        model = layer_cycles(lanes=lanes, channels_per_beat=channels_per_beat,
                             in_channels=fire.in_channels, out_channels=fire.out_channels,
                             entry_counts=counts, height=fire.height, width=fire.width,
                             drain=FireEngine.DRAIN)
        nonzero = sum(int(np.count_nonzero(program.entries[c.entry_base:c.entry_base + c.entry_count]
                                           & ((1 << program.code_bits) - 1)))
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
    lines.append(f"Fire stack fire2..fire9: {s['fire_stack_ms']:.2f} ms per image at "
                 f"{s['clock_mhz']:g} MHz ({s['fire_stack_fps']:.1f} frames/s), "
                 f"{s['lanes']} lanes, {s['channels_per_beat']} channels per beat.")
    lines.append("issue = cycles issuing entries (all lanes busy, fillers included); in/out = "
                 "waiting for the input loader / output drainer; ovh = control and pipeline "
                 "drains; idle = lanes without a pixel in the last group.")
    return "\n".join(lines)


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
    except (OSError, ValueError, TypeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.model is None:
        print("model: the embedded synthetic SqueezeNet (pass --model for the real one)",
              file=sys.stderr)
    rows, summary = bench(program, lanes=args.lanes, channels_per_beat=args.channels_per_beat,
                          clock_mhz=args.clock_mhz)
    print(format_table(rows, summary))
    if args.json:
        import os
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"model": args.model or "synthetic", "summary": summary, "layers": rows},
                      f, indent=2)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
