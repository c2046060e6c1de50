"""Classify a photograph on the simulated whole-network accelerator, bit for bit.

``python -m sim.classify IMAGE [--model PATH] [--network v1.0|v1.1] [--lanes 64]
[--channels-per-beat 8] [--channels-per-cycle 1] [--patch-runs] [--simulator verilator|icarus]
[--topk 5] [--clock-mhz 100]``

Builds the whole-network hardware (conv1 on patches, the fused pools, fire2..fire9, conv10 and
the global sum, weights and activations on chip), runs the image through its generated Verilog
in cycle-accurate simulation, and prints the same tab-separated lines as
``python -m golden.classify --mode fixed`` (rank, class index, WordNet id, name, probability),
computed from the hardware's sums. ``--network v1.1`` reads ``--model`` as SqueezeNet v1.1 (no
compressed v1.1 file is published; without ``--model`` it is the synthetic v1.1, calibrated on
the fly). Then one line: whether the logits equal the golden
fixed-point logits, the simulated cycles, the cycle model's cycles and frames per second at
``--clock-mhz`` (100 MHz unless given). Progress goes to stderr.

Exit status: 0 when the logits are equal, 1 when they differ (or the simulation fails), 2 on
bad arguments or input.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

__all__ = ["main"]


def _parser():
    parser = argparse.ArgumentParser(prog="python -m sim.classify",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("image", help="skimage.data name (chelsea, coffee, ...) or image file")
    parser.add_argument("--model", help="compressed .net file (default: the embedded synthetic "
                        "model)")
    parser.add_argument("--network", choices=("v1.0", "v1.1"), default="v1.0",
                        help="SqueezeNet version of the model (default v1.0)")
    parser.add_argument("--lanes", type=int, default=64, help="engine lanes (default 64)")
    parser.add_argument("--channels-per-beat", type=int, default=8,
                        help="bytes per activation beat, 3..64 (default 8)")
    parser.add_argument("--channels-per-cycle", type=int, default=1,
                        help="channels of a pixel the input loader and output drainer move per "
                        "cycle (default 1; a power of two dividing --channels-per-beat, which "
                        "must be at least 3 times it)")
    parser.add_argument("--patch-runs", action="store_true",
                        help="stream conv1's patches a kernel row per cycle instead of a byte")
    parser.add_argument("--simulator", choices=("verilator", "icarus"), default="verilator")
    parser.add_argument("--topk", type=int, default=5, help="classes to print (default 5)")
    parser.add_argument("--clock-mhz", type=float, default=None,
                        help="clock for frames/s (default: 100 MHz, labelled as assumed)")
    parser.add_argument("--trace", action="store_true",
                        help="also record every layer's output and compare it with the golden "
                        "model (slower; names the first layer that differs)")
    return parser


def _prepare(args):
    """Model, program and image, or ValueError/OSError naming the problem."""
    from golden import calibrate, codec, fixed
    from golden.preprocess import load_image, preprocess
    from hw.arch import Arch
    from hw.fire.engine import check_parameters
    from hw.network.cycle_model import check_channels_per_cycle
    from hw.network.program import NetworkProgram
    from sim import toolchain

    check_parameters(lanes=args.lanes, channels_per_beat=args.channels_per_beat)
    if args.channels_per_cycle != 1:
        check_channels_per_cycle(args.lanes, args.channels_per_beat, args.channels_per_cycle)
    args.arch = Arch(channels_per_cycle=args.channels_per_cycle)
    if args.clock_mhz is not None and not args.clock_mhz > 0:
        raise ValueError(f"--clock-mhz must be positive, not {args.clock_mhz}")
    reason = toolchain.missing_reason(args.simulator)
    if reason:
        raise ValueError(f"--simulator {args.simulator}: {reason}")
    bgr = preprocess(load_image(args.image))
    model = codec.load(args.model, version=args.network[1:])
    classes = model.layers[-1].spec.out_channels
    if not 1 <= args.topk <= classes:
        raise ValueError(f"--topk must be between 1 and {classes}, not {args.topk}")
    qmodel = fixed.quantize(model, calibrate.load_plan(model))
    program = NetworkProgram(qmodel, input_size=bgr.shape[1],
                             channels_per_beat=args.channels_per_beat,
                             patch_runs=args.patch_runs)
    return qmodel, program, bgr


def main(argv=None):
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        qmodel, program, bgr = _prepare(args)
    except (OSError, ValueError, TypeError) as exc:
        print("error: " + " ".join(str(exc).split("\n")), file=sys.stderr)
        return 2
    if args.model is None:
        print("using the embedded synthetic model (random weights, meaningless classes); "
              "pass --model for real weights", file=sys.stderr)

    from golden.classify import class_labels, top_k
    from golden.fixed import logits_from_sums
    from golden.float_ref import softmax
    from sim import toolchain
    from sim.network import simulate

    golden = qmodel.run(bgr)
    name = (f"classify-{args.network}-{args.simulator}-P{args.lanes}-"
            f"L{args.channels_per_beat}-W{args.channels_per_cycle}"
            + ("-runs" if args.patch_runs else ""))
    try:
        run = simulate(program, args.lanes, bgr, args.simulator, name, in_pytest=False,
                       progress=lambda text: print(text, file=sys.stderr, flush=True),
                       trace=args.trace, arch=args.arch)
    except toolchain.SimulationFailed as exc:
        print(f"error: the simulation failed: {str(exc).splitlines()[0]} "
              f"(log under sim_build/runs/{name}/)", file=sys.stderr)
        return 1
    for line in _compare_layers(program, run.traced, golden):
        print(line, file=sys.stderr)
    last = program.last
    pixels = golden[last.name].shape[1] * golden[last.name].shape[2]
    logits = logits_from_sums(run.sums, last.out_frac, pixels)
    probabilities = softmax(logits)
    labels = class_labels(len(probabilities))
    for rank, index in enumerate(top_k(probabilities, args.topk), start=1):
        wnid, label = labels[index]
        print(f"{rank}\t{index}\t{wnid}\t{label}\t{probabilities[index]:.4f}")
    equal = np.array_equal(run.sums, golden["global_sum"])
    differ = int(np.count_nonzero(run.sums != golden["global_sum"]))
    mhz = args.clock_mhz or 100.0
    clock = f"{mhz:g} MHz" + ("" if args.clock_mhz else " (assumed: no board clock given)")
    verdict = ("equal to the golden fixed-point logits" if equal else
               f"DIFFER from the golden fixed-point logits in {differ} of {len(run.sums)}")
    print(f"hardware logits {verdict}; {run.cycles:,} cycles simulated, {run.predicted:,} by "
          f"the cycle model; {mhz * 1e6 / run.cycles:.1f} frames/s at {clock}; "
          f"{args.lanes} lanes, simulated in {run.stats['total_seconds']:.0f} s "
          f"({args.simulator}, compile included)")
    return 0 if equal else 1


def _compare_layers(program, traced, golden):
    """Lines saying, per traced layer, whether the engine's output equals the golden one."""
    lines = []
    for step in program.steps if traced else ():
        expected = golden[step.name]
        pad = (expected.shape[1] - step.height) // 2
        if pad:
            expected = expected[:, pad:-pad, pad:-pad]
        got = traced[step.name]
        wrong = np.argwhere(got != expected)
        if not wrong.size:
            lines.append(f"layer {step.name}: equal to golden ({got.size:,} values)")
            continue
        c, y, x = (int(v) for v in wrong[0])
        lines.append(f"layer {step.name}: {len(wrong):,} of {got.size:,} values differ; first "
                     f"at channel {c}, row {y}, column {x}: {got[c, y, x]} instead of "
                     f"{expected[c, y, x]}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
