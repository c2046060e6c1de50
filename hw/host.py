"""Command line of the UART host link: classify an image, or run one layer, on the board.

The driver itself is :mod:`hw.board.driver` (no Amaranth needed); its names are importable
from here too.

Command line::

    python -m hw.host --port /dev/ttyUSB1 --baud 115200 ping
    python -m hw.host --port /dev/ttyUSB1 classify IMAGE [--model PATH] [--topk 5] [--retries 3]
    python -m hw.host --port /dev/ttyUSB1 run --layer 2 --input x.npy --output y.npy

``classify`` runs the network host-driven (:mod:`hw.board.network_host`): the layers the board
holds on the board, the others on this computer with the golden fixed-point model, so the
result is exact either way; it prints the same tab-separated lines as ``python -m
golden.classify --mode fixed`` (rank, class, WordNet id, name, probability), then which layers
ran where and how many runs the board repeated after a transmission error. ``--model`` must be
the model the board was built with (default: the embedded synthetic one).

``x.npy`` holds a layer input as ``(height, width, cin)`` integers 0..255; ``y.npy`` receives
the output as ``(height, width, e)`` ``uint8``. Failures print one ``error:`` line and exit 2.
"""

import argparse
import contextlib
import sys
import time

import numpy as np

from hw.board.driver import EngineLink, LinkError, LinkTimeout, SerialTransport
from hw.board.protocol import NO_TAG
from hw.board.network_host import classify_on_board, network_steps

__all__ = ["main"]


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m hw.host", description="Classify images or run layers on the board "
        "over its UART link.")
    parser.add_argument("--port", required=True, help="serial device, e.g. /dev/ttyUSB1")
    parser.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200)")
    parser.add_argument("--timeout", type=float, default=3.0,
                        help="seconds to wait for each answer (default 3)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("ping", help="check the link and print its configuration")
    classify = commands.add_parser("classify", help="classify an image, host-driven")
    classify.add_argument("image", help="skimage.data name (chelsea, coffee, ...) or image file")
    classify.add_argument("--model", help="compressed .net file the board was built with "
                          "(default: the embedded synthetic model)")
    classify.add_argument("--topk", type=int, default=5, help="classes to print (default 5)")
    classify.add_argument("--retries", type=int, default=3,
                          help="repeats of a board layer after a transmission error (default 3)")
    run = commands.add_parser("run", help="run one layer")
    run.add_argument("--layer", type=int, required=True, help="layer index")
    run.add_argument("--input", required=True, help=".npy with (height, width, cin) 0..255")
    run.add_argument("--output", required=True, help=".npy to write (height, width, e) uint8")
    return parser


def _load_input(path):
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise LinkError(f"cannot read input {path}: {exc}") from None
    if not isinstance(x, np.ndarray):
        raise LinkError(f"cannot read input {path}: not a single array (.npz?)")
    return x


def _load_classify(args):
    """(quantised model, BGR image) for ``classify``; ValueError/OSError naming the problem."""
    from golden import calibrate, codec, fixed
    from golden.preprocess import load_image, preprocess
    if args.retries < 0:
        raise ValueError(f"--retries must be 0 or more, not {args.retries}")
    bgr = preprocess(load_image(args.image))
    model = codec.load(args.model)
    classes = model.layers[-1].spec.out_channels
    if not 1 <= args.topk <= classes:
        raise ValueError(f"--topk must be between 1 and {classes}, not {args.topk}")
    return fixed.quantize(model, calibrate.load_plan(model)), bgr


def _classify(link, qmodel, bgr, args):
    """Run the network host-driven; print the classes and where the layers ran."""
    from golden.classify import class_labels, top_k
    from golden.fixed import logits_from_sums
    from golden.float_ref import softmax
    sums, runs = classify_on_board(
        link, qmodel, bgr, retries=args.retries,
        progress=lambda text: print(text, file=sys.stderr, flush=True))
    from golden.network import spatial_sizes
    last = network_steps(qmodel, bgr.shape[1])[-1].name         # the last convolution
    pixels = spatial_sizes(qmodel.network, bgr.shape[1])[last] ** 2
    probabilities = softmax(logits_from_sums(sums, qmodel.layers[last].out_frac, pixels))
    labels = class_labels(len(probabilities))
    for rank, index in enumerate(top_k(probabilities, args.topk), start=1):
        wnid, label = labels[index]
        print(f"{rank}\t{index}\t{wnid}\t{label}\t{probabilities[index]:.4f}")
    board = [r for r in runs if r.where == "board"]
    host = [r.name for r in runs if r.where == "host"]
    repeats = sum(r.attempts - 1 for r in board)
    print(f"layers on the board: {', '.join(r.name for r in board) or 'none'}; on the host "
          f"(golden fixed-point): {', '.join(host) or 'none'}; {repeats} board run(s) repeated "
          f"after transmission errors; {sum(r.seconds for r in runs):.1f} s")


def main(argv=None, transport=None):
    """Command-line entry point; returns the exit status (0, or 2 on any failure).

    ``transport`` replaces the serial port (tests pass a simulated UART)."""
    args = _parser().parse_args(argv)
    try:
        x = _load_input(args.input) if args.command == "run" else None
        if args.command == "classify":
            qmodel, bgr = _load_classify(args)
        with (contextlib.nullcontext(transport) if transport is not None else
              SerialTransport(args.port, args.baud, args.timeout)) as transport:
            link = EngineLink(transport)
            info = link.ping()
            if args.command == "classify":
                _classify(link, qmodel, bgr, args)
                return 0
            if args.command == "ping":
                print(f"link protocol 2 on {args.port}: "
                      f"{info.channels_per_beat} channels per beat, {len(info.layers)} layers, "
                      f"window {info.rx_window} B, credit {info.credit_chunk} B")
                for k, shape in enumerate(info.shapes):
                    size = (f", {shape.in_h}x{shape.in_w} -> {shape.out_h}x{shape.out_w}"
                            if shape.fixed else "")
                    tag = f", network step {shape.tag}" if shape.tag != NO_TAG else ""
                    print(f"  layer {k}: cin {shape.cin}, e {shape.e}{size}{tag}")
                return 0
            began = time.monotonic()
            y = link.run_layer(args.layer, x)
            seconds = time.monotonic() - began
        try:
            np.save(args.output, y)
        except OSError as exc:
            raise LinkError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(f"layer {args.layer}: {x.shape} -> {y.shape} in {seconds:.2f} s, "
              f"saved {args.output}")
        return 0
    except LinkTimeout as exc:
        print(f"error: timeout: {exc}", file=sys.stderr)
    except (LinkError, ValueError, TypeError, OSError) as exc:
        print("error: " + " ".join(str(exc).split("\n")), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
