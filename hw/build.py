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
4. Write ``DIR/report.json`` and ``DIR/report.md`` (default ``DIR`` = ``build/BOARD``); a
   ``DIR`` that cannot be written is an error (exit status 2) too. A tool that fails or is
   missing ends the command with one line naming the step, the tool and its log (exit status 1).

The flow itself is :mod:`hw.flow.build` (steps and tools), :mod:`hw.flow.layers` (layer
choice), :mod:`hw.flow.report` (the report) and :mod:`hw.flow.logs` (log parsing).
"""

from __future__ import annotations

import argparse
import sys

from hw.flow.build import BuildError, ToolError, build

__all__ = ["main"]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m hw.build", description=__doc__.split("\n")[0])
    parser.add_argument("--board", required=True,
                        help="arty_a7, arty_a7_100, ulx3s_85f, icebreaker, xc7a200t, xc7vx1140t")
    parser.add_argument("--model", help="Deep Compression .net file (default: the embedded "
                        "synthetic model)")
    parser.add_argument("--layers", help="comma-separated layers for the host-driven design "
                        "(default: the whole network where it fits, else the longest fire2, "
                        "fire3, ... that fits, then conv1 and conv_final if they fit)")
    parser.add_argument("--out", help="output directory (default build/BOARD)")
    parser.add_argument("--arch", choices=("shared", "dataflow"),
                        help="the Fire datapath: the shared-lane engine or the dataflow one "
                        "(squeeze PE array || expand-1x1 || expand-3x3 units); default: the "
                        "board's")
    parser.add_argument("--lanes", type=int, help="shared: pixel lanes; dataflow: most "
                        "multipliers (default: the board's)")
    parser.add_argument("--channels-per-beat", type=int, help="stream width (default 8)")
    parser.add_argument("--channels-per-cycle", type=int, help="shared: channels of a pixel "
                        "the input loader and output drainer move per cycle (default: the "
                        "board's, 1; at most a third of --channels-per-beat)")
    parser.add_argument("--patch-runs", action="store_true", default=None,
                        help="stream conv1's patches a kernel row per cycle instead of a byte")
    parser.add_argument("--code-bits", type=int, default=8,
                        help="code width of the model file, 4..8 (default 8; 6 for a "
                        "python -m golden.recode ... --code-bits 6 file)")
    parser.add_argument("--no-synth", action="store_true",
                        help="plan and report only, without running any tool")
    args = parser.parse_args(argv)
    layers = [s.strip() for s in args.layers.split(",") if s.strip()] if args.layers else None
    try:
        build(args.board, model=args.model, layers=layers, out=args.out, lanes=args.lanes,
              channels_per_beat=args.channels_per_beat, code_bits=args.code_bits,
              synthesize=not args.no_synth, arch=args.arch,
              channels_per_cycle=args.channels_per_cycle, patch_runs=args.patch_runs)
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
