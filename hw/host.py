"""Command line of the UART host link: run Fire layers on the board from a PC.

The driver itself is :mod:`hw.board.driver` (no Amaranth needed); its names are importable
from here too.

Command line::

    python -m hw.host --port /dev/ttyUSB1 --baud 115200 ping
    python -m hw.host --port /dev/ttyUSB1 run --layer 2 --input x.npy --output y.npy

``x.npy`` holds the layer input as ``(height, width, cin)`` integers 0..255; ``y.npy`` receives
the output as ``(height, width, e)`` ``uint8``. Failures print one ``error:`` line and exit 2.
"""

import argparse
import sys
import time

import numpy as np

from hw.board.driver import EngineLink, LinkError, LinkTimeout, SerialTransport

__all__ = ["main"]


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m hw.host", description="Run Fire layers on the board over its UART link.")
    parser.add_argument("--port", required=True, help="serial device, e.g. /dev/ttyUSB1")
    parser.add_argument("--baud", type=int, default=115200, help="baud rate (default 115200)")
    parser.add_argument("--timeout", type=float, default=3.0,
                        help="seconds to wait for each answer (default 3)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("ping", help="check the link and print its configuration")
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


def main(argv=None):
    """Command-line entry point; returns the exit status (0, or 2 on any failure)."""
    args = _parser().parse_args(argv)
    try:
        x = _load_input(args.input) if args.command == "run" else None
        with SerialTransport(args.port, args.baud, args.timeout) as transport:
            link = EngineLink(transport)
            info = link.ping()
            if args.command == "ping":
                print(f"link protocol 2 on {args.port}: "
                      f"{info.channels_per_beat} channels per beat, {len(info.layers)} layers, "
                      f"window {info.rx_window} B, credit {info.credit_chunk} B")
                for k, (cin, e) in enumerate(info.layers):
                    print(f"  layer {k}: cin {cin}, e {e}")
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
    except (LinkError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
