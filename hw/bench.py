"""Accelerator performance on a whole model at full size, from the exact cycle models.

``python -m hw.bench [--model PATH] [--network v1.0|v1.1] [--lanes 64] [--channels-per-beat 8]
[--clock-mhz 100] [--fire-stack] [--json FILE] [--plots DIR]`` prints one row per engine run of
the whole network (conv1 on patches with pool1, fire2..fire9 with their pools, conv10 with the
global sum) and totals for one image, and writes the same as JSON. ``--fire-stack`` benches the
Fire layers alone, each run on its own. ``--plots DIR`` writes ``DIR/bench_cycles.png``: each
layer's cycles as a stacked bar of where they go (:func:`hw.plots.plot_bench_cycles`).

- ``cycles``: one layer run, start to done (the cycle models equal simulation, tests assert it);
  the whole network's total also counts the steps' hand-overs and the global sum's output;
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

from hw.arch import SHARED, Arch
from hw.fire.cycle_model import run_cycles
from hw.fire.engine import check_parameters
from hw.fire.program import EngineProgram
from hw.flow.outputs import OutputError, make_output_dir, prepare_file, write_files
from hw.network.cycle_model import check_channels_per_cycle, network_cycles
from hw.network.program import NetworkProgram

__all__ = ["bench", "bench_network", "main"]


def layer_work(program, layer):
    """``entries`` (fillers included), ``nonzero_weights`` and ``dense_weights`` of a layer
    of an :class:`EngineProgram`."""
    code_mask = (1 << program.code_bits) - 1
    nonzero = sum(int(np.count_nonzero(
        program.entries[c.entry_base:c.entry_base + c.entry_count] & code_mask))
        for c in layer.convs)
    return {"entries": sum(c.entry_count for c in layer.convs), "nonzero_weights": nonzero,
            "dense_weights": sum(c.out_channels * c.in_channels * c.kernel ** 2
                                 for c in layer.convs),
            "filler_share": 1 - nonzero / sum(c.entry_count for c in layer.convs)}


def _row(program, layer, model, lanes):
    """Figures of one run of ``layer`` whose cycles are ``model`` (a LayerCycles)."""
    pixels = layer.height * layer.width
    work = layer_work(program, layer)
    nonzero, dense = work["nonzero_weights"], work["dense_weights"]
    lane_slots = model.groups * lanes
    return {
        "layer": layer.name, "height": layer.height, "width": layer.width,
        "cycles": model.cycles, "multipliers": lanes,
        "entries": work["entries"], "nonzero_weights": nonzero,
        "nonzero_macs": pixels * nonzero, "dense_macs": pixels * dense,
        "utilisation": pixels * nonzero / (lanes * model.cycles),
        "dense_macs_per_mult_cycle": pixels * dense / (lanes * model.cycles),
        "issue_cycles": model.issue, "wait_input_cycles": model.wait_input,
        "wait_output_cycles": model.wait_output, "overhead_cycles": model.overhead,
        "idle_lane_share": 1 - pixels / lane_slots,
        "filler_share": work["filler_share"],
    }


def bench(program, *, lanes, channels_per_beat, clock_mhz=100.0, channels_per_cycle=1):
    """Rows of per-layer figures and a summary, every Fire layer of ``program`` run alone."""
    rows = [_row(program, fire, run_cycles(fire, lanes=lanes, channels_per_beat=channels_per_beat,
                                           channels_per_cycle=channels_per_cycle), lanes)
            for fire in program.fires]
    summary = _summary(rows, sum(r["cycles"] for r in rows), lanes=lanes,
                       channels_per_beat=channels_per_beat, clock_mhz=clock_mhz)
    summary["channels_per_cycle"] = channels_per_cycle
    return rows, summary


def bench_network(netprog, *, lanes, clock_mhz=100.0, arch=SHARED):
    """Rows per step of the whole network (conv1 paced by the patch streamer) and a summary
    whose ``cycles`` is one image, start to done."""
    model = network_cycles(netprog, lanes=lanes, arch=arch)
    program = netprog.engine_program
    rows = []
    for step, (_, start, run) in zip(netprog.steps, model.steps):
        row = _row(program, program.layers[step.layer], run, lanes)
        row["start_cycle"] = start
        row["then"] = "global sum" if step.dest is None else "pool" if step.pool else ""
        rows.append(row)
    summary = _summary(rows, model.cycles, lanes=lanes,
                       channels_per_beat=netprog.channels_per_beat, clock_mhz=clock_mhz)
    summary["activation_store_bits"] = netprog.store_bits
    summary["whole_network"] = True
    summary["channels_per_cycle"] = arch.channels_per_cycle
    return rows, summary


def _summary(rows, cycles, *, lanes, channels_per_beat, clock_mhz):
    nonzero_macs = sum(r["nonzero_macs"] for r in rows)
    summary = {
        "lanes": lanes, "channels_per_beat": channels_per_beat, "clock_mhz": clock_mhz,
        "cycles": cycles, "nonzero_macs": nonzero_macs,
        "utilisation": nonzero_macs / (lanes * cycles),
        "dense_macs_per_mult_cycle": sum(r["dense_macs"] for r in rows) / (lanes * cycles),
        "ms_per_image": cycles / (clock_mhz * 1e3),
        "frames_per_second": clock_mhz * 1e6 / cycles,
        "whole_network": False,
    }
    return summary


def format_table(rows, summary):
    head = (f"{'layer':<10} {'HxW':>7} {'cycles':>10} {'mults':>5} {'nz MACs':>12} {'util':>6} "
            f"{'dense/m/c':>9} {'issue':>6} {'in':>5} {'out':>5} {'ovh':>5} {'idle':>5}")
    lines = [head, "-" * len(head)]
    for r in rows:
        c = r["cycles"]
        lines.append(
            f"{r['layer']:<10} {r['height']:>3}x{r['width']:<3} {c:>10,} {r['multipliers']:>5} "
            f"{r['nonzero_macs']:>12,} {r['utilisation']:>6.3f} "
            f"{r['dense_macs_per_mult_cycle']:>9.3f} {r['issue_cycles'] / c:>6.1%} "
            f"{r['wait_input_cycles'] / c:>5.1%} {r['wait_output_cycles'] / c:>5.1%} "
            f"{r['overhead_cycles'] / c:>5.1%} {r['idle_lane_share']:>5.1%}")
    s = summary
    lines.append("-" * len(head))
    lines.append(f"{'all':<10} {'':>7} {s['cycles']:>10,} {s['lanes']:>5} {s['nonzero_macs']:>12,} "
                 f"{s['utilisation']:>6.3f} {s['dense_macs_per_mult_cycle']:>9.3f}")
    layers = _layer_span([r["layer"] for r in rows])
    what = (f"Whole network ({layers}, pools and global sum fused)" if s["whole_network"]
            else f"Fire stack {layers}")
    lines.append(f"{what}: {s['ms_per_image']:.2f} ms per image at "
                 f"{s['clock_mhz']:g} MHz ({s['frames_per_second']:.1f} frames/s), "
                 f"{s['lanes']} lanes, {s['channels_per_beat']} channels per beat.")
    if s["whole_network"]:
        lines.append(f"The total counts the hand-over between layers and the logits leaving; "
                     f"activation store {s['activation_store_bits']:,} bits.")
    lines.append("issue = cycles issuing entries (all lanes busy, fillers included); in/out = "
                 "waiting for the input loader / output drainer; ovh = control and pipeline "
                 "drains; idle = lanes without a pixel in the last group.")
    return "\n".join(lines)


def _layer_span(names):
    """The names listed, each run of consecutively numbered Fire layers as ``fire2..fire9``."""
    parts, run = [], []
    for name in names + [None]:
        number = name.removeprefix("fire") if name else ""
        if name and name.startswith("fire") and number.isdigit() and \
                (not run or int(number) == run[-1] + 1):
            run.append(int(number))
            continue
        if run:
            parts.append(f"fire{run[0]}..fire{run[-1]}" if len(run) > 1 else f"fire{run[0]}")
            run = []
        if name and name.startswith("fire") and number.isdigit():
            run = [int(number)]
        elif name:
            parts.append(name)
    return ", ".join(parts)


def _budgets(text):
    try:
        budgets = [int(v) for v in text.split(",")]
    except ValueError:
        raise ValueError(f"--multipliers takes comma-separated integers, not {text!r}") \
            from None
    if not budgets or min(budgets) < 3:
        raise ValueError(f"--multipliers: every budget must be at least 3, not {text!r}")
    return budgets


def _parser():
    parser = argparse.ArgumentParser(prog="python -m hw.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="Deep Compression .net file (default: the embedded "
                        "synthetic model)")
    parser.add_argument("--arch", choices=("shared", "dataflow", "both"), default="shared",
                        help="the shared-lane engine (default), the dataflow datapath (the "
                        "best one within --lanes multipliers), or both at every --multipliers")
    parser.add_argument("--lanes", type=int, default=64,
                        help="shared: lanes; dataflow: most multipliers (default 64)")
    parser.add_argument("--multipliers", default="16,64,128,240",
                        help="with --arch both: the multiplier budgets (default 16,64,128,240)")
    parser.add_argument("--balance", choices=("all", "expand", "strict"), default="all",
                        help="dataflow: how layers are split between the units (default all)")
    parser.add_argument("--channels-per-beat", type=int, default=8)
    parser.add_argument("--channels-per-cycle", type=int, default=1,
                        help="shared: channels of a pixel the input loader and output drainer "
                        "move per cycle, W (default 1; a power of two dividing "
                        "--channels-per-beat, which must be at least 3 W for a whole network)")
    parser.add_argument("--patch-runs", action="store_true",
                        help="stream conv1's patches a kernel row per cycle instead of a byte "
                        "(--channels-per-beat a multiple of 8 for v1.0)")
    parser.add_argument("--clock-mhz", type=float, default=100.0)
    parser.add_argument("--fire-stack", action="store_true",
                        help="bench the Fire layers alone instead of the whole network")
    parser.add_argument("--json", help="write the figures here (default build/bench.json)",
                        default="build/bench.json")
    parser.add_argument("--plots", help="write bench_cycles.png (cycles per layer, where they "
                        "go) in this directory")
    return parser


def _run(args, netprog, fire_program):
    """The bench the arguments ask for: ``(text, json object, [(rows, summary)] to plot)``."""
    from hw import bench_arch
    common = {"clock_mhz": args.clock_mhz, "fire_program": fire_program}
    if args.arch == "both":
        results = bench_arch.bench_both(netprog, _budgets(args.multipliers),
                                        channels_per_beat=args.channels_per_beat,
                                        balance=args.balance, **common)
        return (bench_arch.format_comparison(results),
                {"configs": [{"summary": s, "layers": r} for r, s in results]}, results)
    if args.arch == "dataflow":
        rows, summary = bench_arch.bench_dataflow(netprog, args.lanes, balance=args.balance,
                                                  channels_per_beat=args.channels_per_beat,
                                                  **common)
        text = bench_arch.format_dataflow_table(rows, summary)
    elif fire_program is not None:
        rows, summary = bench(fire_program, lanes=args.lanes,
                              channels_per_beat=args.channels_per_beat, clock_mhz=args.clock_mhz,
                              channels_per_cycle=args.channels_per_cycle)
        text = format_table(rows, summary)
    else:
        rows, summary = bench_network(netprog, lanes=args.lanes, clock_mhz=args.clock_mhz,
                                      arch=Arch(channels_per_cycle=args.channels_per_cycle))
        text = format_table(rows, summary)
    return text, {"summary": summary, "layers": rows}, [(rows, summary)]


def main(argv=None):
    from golden import calibrate, codec, fixed

    args = _parser().parse_args(argv)
    try:
        model = codec.load(args.model)
        qmodel = fixed.quantize(model, calibrate.load_plan(model))
        if args.arch == "shared":
            check_parameters(lanes=args.lanes, channels_per_beat=args.channels_per_beat)
            check_channels_per_cycle(args.lanes, args.channels_per_beat, args.channels_per_cycle,
                                     network=not args.fire_stack)
        elif args.channels_per_cycle != 1:
            raise ValueError("--channels-per-cycle is for the shared engine (--arch shared)")
        else:
            check_parameters(lanes=1, channels_per_beat=args.channels_per_beat)
            if args.arch == "dataflow" and args.lanes < 3:
                raise ValueError(f"a dataflow datapath needs at least 3 multipliers, not "
                                 f"--lanes {args.lanes}")
            _budgets(args.multipliers)
        netprog = fire_program = None
        if args.fire_stack:
            fire_program = EngineProgram.from_model(qmodel)
        else:
            netprog = NetworkProgram(qmodel, channels_per_beat=args.channels_per_beat,
                                     patch_runs=args.patch_runs)
        if args.json:
            prepare_file(args.json, "--json")
        plots = make_output_dir(args.plots, "--plots") if args.plots else None
    except (OSError, ValueError, TypeError, OutputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.model is None:
        print("model: the embedded synthetic SqueezeNet (pass --model for the real one)",
              file=sys.stderr)
    text, figures, to_plot = _run(args, netprog, fire_program)
    if args.json:
        figures = {"model": args.model or "synthetic", **figures}
        try:
            write_files({Path(args.json): json.dumps(figures, indent=2)}, "--json")
        except OutputError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    print(text)
    if args.json:
        print(f"wrote {args.json}", file=sys.stderr)
    if plots is not None:
        from hw.plots import plot_bench_cycles
        for rows, summary in to_plot:
            name = ("bench_cycles.png" if len(to_plot) == 1 else
                    f"bench_cycles_{summary['arch']}_{summary['budget']}.png")
            try:
                path = plot_bench_cycles(rows, summary, plots / name)
            except OSError as e:
                print(f"error: cannot write {plots / name}: {e}", file=sys.stderr)
                return 2
            print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
