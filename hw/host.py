"""Host side of the UART link: run Fire layers on the board from a PC.

``EngineLink`` speaks the protocol of :mod:`hw.board.link` over any byte transport with
``write(data)`` and ``read(n)`` (``read`` returns fewer than ``n`` bytes only when it timed out,
as pyserial's ``Serial`` does, so a pyserial port works too). ``SerialTransport`` is such a
transport for a POSIX serial device, built on ``termios`` so that no extra package is needed.

Command line::

    python -m hw.host --port /dev/ttyUSB1 --baud 115200 ping
    python -m hw.host --port /dev/ttyUSB1 run --layer 2 --input x.npy --output y.npy

``x.npy`` holds the layer input as ``(height, width, cin)`` integers 0..255; ``y.npy`` receives
the output as ``(height, width, e)`` ``uint8``. Failures print one ``error:`` line and exit 2.
"""

import argparse
import os
import select
import sys
import time
from dataclasses import dataclass

import numpy as np

from hw.board.link import (ACK, CMD_PING, CMD_RUN, CREDIT, DONE, DONE_FRAMING, DONE_OVERRUN,
                   DONE_RX_ERROR, ERR_TIMEOUT, ERR_UNKNOWN, LINK_ID, NAK, PIXEL)

__all__ = [
    "LinkError", "LinkTimeout", "LinkInfo", "EngineLink", "SerialTransport",
    "encode_input", "decode_output", "main",
]


class LinkError(Exception):
    """The link answered something the protocol does not allow, or reported a failure."""


class LinkTimeout(LinkError):
    """The link did not answer in time (or abandoned a run for lack of input)."""


@dataclass(frozen=True)
class LinkInfo:
    """What a link reports in its PING reply.

    Members
    -------
    channels_per_beat : int
        Channels per engine beat (``L``).
    layers : tuple of (int, int)
        ``(cin, e)`` per layer index.
    rx_window : int
        Input bytes the host may send beyond the confirmed ones (``D``).
    credit_chunk : int
        Input bytes one CREDIT message confirms (``K``).
    """
    channels_per_beat: int
    layers: tuple
    rx_window: int
    credit_chunk: int


def _ceil_div(a, b):
    return -(-a // b)


def encode_input(x, channels_per_beat):
    """Bytes the link expects for input ``x`` of shape ``(height, width, cin)``, ``uint8``.

    Each pixel's channels are zero padded to a whole number of ``channels_per_beat``-channel beats.
    """
    h, w, cin = x.shape
    padded = np.zeros((h, w, _ceil_div(cin, channels_per_beat) * channels_per_beat), dtype=np.uint8)
    padded[:, :, :cin] = x
    return padded.tobytes()


def decode_output(pixels, height, width, e, channels_per_beat):
    """Output array ``(height, width, e)`` ``uint8`` from the pixel packets' payload bytes."""
    stride = _ceil_div(e, channels_per_beat) * channels_per_beat
    out = np.frombuffer(bytes(pixels), dtype=np.uint8).reshape(height, width, stride)
    return out[:, :, :e].copy()


def _as_layer_input(x, cin, layer):
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != cin:
        raise ValueError(f"Input of layer {layer} must have shape (height, width, {cin}), "
                         f"not {x.shape}")
    if not 1 <= x.shape[0] <= 255 or not 1 <= x.shape[1] <= 255:
        raise ValueError(f"Height and width must be 1 to 255, not {x.shape[:2]}")
    if x.dtype != np.uint8:
        if not np.issubdtype(x.dtype, np.integer):
            raise TypeError(f"Input must hold integers 0..255, not {x.dtype}")
        if x.size and (x.min() < 0 or x.max() > 255):
            raise ValueError(f"Input must hold integers 0..255, not {x.min()}..{x.max()}")
        x = x.astype(np.uint8)
    return x


class EngineLink:
    """Driver for a :class:`hw.board.link.HostLink` on the other end of ``transport``.

    Parameters
    ----------
    transport : object
        Has ``write(data)`` and ``read(n)``; ``read`` returns fewer than ``n`` bytes only on
        timeout. ``reset_input_buffer()``, if present, is called before a PING to drop stale
        bytes.
    layers : sequence of (int, int) or None
        ``(cin, e)`` per layer the caller expects; :meth:`ping` raises :class:`LinkError`
        if the link reports a different table.
    """

    def __init__(self, transport, layers=None):
        self._transport = transport
        self._expected = None if layers is None else tuple(tuple(p) for p in layers)
        self._info = None

    @property
    def info(self):
        """The last :class:`LinkInfo` from :meth:`ping`, or ``None``."""
        return self._info

    def _read(self, n, what):
        data = bytes(self._transport.read(n))
        if len(data) < n:
            raise LinkTimeout(f"timed out waiting for {what} "
                              f"(got {len(data)} of {n} bytes)")
        return data

    def ping(self):
        """Check the link and read its configuration.

        Returns
        -------
        LinkInfo

        Raises
        ------
        LinkTimeout
            No (complete) reply.
        LinkError
            The reply is not a link's, or its layer table is not the expected one.
        """
        reset = getattr(self._transport, "reset_input_buffer", None)
        if reset is not None:
            reset()
        self._transport.write(bytes([CMD_PING]))
        head = self._read(5, "the PING reply")
        if head[0] != LINK_ID:
            raise LinkError(f"not a Fire engine link: PING answered 0x{head[0]:02X}, "
                            f"expected 0x{LINK_ID:02X}")
        channels_per_beat, n_layers, log_window, log_chunk = head[1:]
        table = self._read(4 * n_layers, "the PING reply's layer table")
        layers = tuple(
            (int.from_bytes(table[4 * k:4 * k + 2], "little"),
             int.from_bytes(table[4 * k + 2:4 * k + 4], "little"))
            for k in range(n_layers))
        info = LinkInfo(channels_per_beat=channels_per_beat, layers=layers, rx_window=1 << log_window,
                        credit_chunk=1 << log_chunk)
        if self._expected is not None and self._expected != layers:
            raise LinkError(f"link runs layers {layers}, expected {self._expected}")
        self._info = info
        return info

    def run_layer(self, layer, x):
        """Run one layer on the engine.

        Parameters
        ----------
        layer : int
            Layer index in the link's table.
        x : array of shape (height, width, cin)
            Input activations, integers 0..255, height and width 1 to 255.

        Returns
        -------
        numpy.ndarray
            ``(height, width, e)`` ``uint8``.

        Raises
        ------
        ValueError, TypeError
            Bad ``layer`` or ``x`` (nothing is sent).
        LinkTimeout
            The link stopped answering, or abandoned the run for lack of input.
        LinkError
            The link refused the run, broke the protocol or flagged a corrupted run.
        """
        info = self._info if self._info is not None else self.ping()
        if not isinstance(layer, (int, np.integer)) or isinstance(layer, bool):
            raise TypeError(f"Layer must be an integer, not {layer!r}")
        if not 0 <= layer < len(info.layers):
            raise ValueError(f"Layer must be 0 to {len(info.layers) - 1}, not {layer!r}")
        cin, e = info.layers[layer]
        x = _as_layer_input(x, cin, layer)
        height, width = x.shape[:2]
        payload = encode_input(x, info.channels_per_beat)
        pixel_bytes = _ceil_div(e, info.channels_per_beat) * info.channels_per_beat

        self._transport.write(bytes([CMD_RUN, layer, height, width]))
        answer = self._read(1, "the RUN acknowledgement")[0]
        if answer == NAK:
            raise LinkError(f"link refused layer {layer} of {height}x{width}")
        if answer == ERR_UNKNOWN:
            raise LinkError("link does not know the RUN command")
        if answer != ACK:
            raise LinkError(f"RUN answered 0x{answer:02X}, expected ACK 0x{ACK:02X}")

        sent = 0
        allowed = info.rx_window
        pixels = bytearray()
        n_pixels = 0
        while True:
            if sent < len(payload) and sent < allowed:
                end = min(len(payload), allowed)
                self._transport.write(payload[sent:end])
                sent = end
            tag = self._read(1, f"output of layer {layer} (pixel {n_pixels} of "
                                f"{height * width}, {sent} of {len(payload)} input bytes sent)")[0]
            if tag == CREDIT:
                allowed += info.credit_chunk
            elif tag == PIXEL:
                if n_pixels == height * width:
                    raise LinkError(f"link sent more than {n_pixels} pixels")
                pixels += self._read(pixel_bytes, f"pixel {n_pixels} of layer {layer}")
                n_pixels += 1
            elif tag & 0xF8 in (DONE, ERR_TIMEOUT):
                break
            else:
                raise LinkError(f"unexpected byte 0x{tag:02X} during layer {layer}")

        problems = [text for bit, text in ((DONE_FRAMING, "engine output framing"),
                                           (DONE_RX_ERROR, "UART framing error"),
                                           (DONE_OVERRUN, "input bytes lost"))
                    if tag & bit]
        if tag & 0xF8 == ERR_TIMEOUT:
            raise LinkTimeout(f"link abandoned layer {layer}: its input stopped after {sent} "
                              f"of {len(payload)} bytes were sent"
                              + (f" ({', '.join(problems)})" if problems else ""))
        if problems:
            raise LinkError(f"layer {layer} finished with errors: {', '.join(problems)}")
        if n_pixels != height * width or sent != len(payload):
            raise LinkError(f"layer {layer} finished after {n_pixels} of {height * width} "
                            f"pixels and {sent} of {len(payload)} input bytes")
        return decode_output(pixels, height, width, e, info.channels_per_beat)


class SerialTransport:
    """Raw 8N1 serial port on a POSIX system, no flow control.

    Parameters
    ----------
    port : str
        Device path, e.g. ``/dev/ttyUSB1``.
    baud : int
        A rate ``termios`` knows (``termios.B115200`` and so on).
    timeout : float
        Seconds a :meth:`read` may wait in all.

    Raises
    ------
    ValueError
        Unsupported baud rate.
    OSError
        The device cannot be opened or configured.
    """

    def __init__(self, port, baud=115200, timeout=2.0):
        try:
            import termios
        except ImportError:
            raise OSError("the serial transport needs a POSIX system (termios)") from None
        speed = getattr(termios, f"B{baud}", None) if isinstance(baud, int) else None
        if speed is None:
            raise ValueError(f"Baud rate {baud!r} is not supported by termios")
        self.timeout = timeout
        self._fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            iflag, oflag, cflag, lflag, _, _, cc = termios.tcgetattr(self._fd)
            iflag &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP |
                       termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON |
                       termios.IXOFF | termios.IXANY | termios.INPCK)
            oflag &= ~termios.OPOST
            lflag &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG |
                       termios.IEXTEN)
            cflag &= ~(termios.CSIZE | termios.PARENB | termios.CSTOPB |
                       getattr(termios, "CRTSCTS", 0))
            cflag |= termios.CS8 | termios.CREAD | termios.CLOCAL
            cc[termios.VMIN] = 0
            cc[termios.VTIME] = 0
            termios.tcsetattr(self._fd, termios.TCSANOW,
                              [iflag, oflag, cflag, lflag, speed, speed, cc])
            termios.tcflush(self._fd, termios.TCIOFLUSH)
        except BaseException:
            os.close(self._fd)
            raise

    def write(self, data):
        """Send all of ``data``, waiting while the driver's buffer is full.

        Raises :class:`LinkTimeout` if the driver takes no byte for :attr:`timeout` seconds.
        """
        view = memoryview(bytes(data))
        while view:
            if not select.select([], [self._fd], [], self.timeout)[1]:
                raise LinkTimeout(f"serial port took no data for {self.timeout} s")
            try:
                n = os.write(self._fd, view)
            except BlockingIOError:
                continue
            view = view[n:]

    def read(self, n):
        """Up to ``n`` bytes; fewer only if :attr:`timeout` seconds pass first."""
        data = bytearray()
        deadline = time.monotonic() + self.timeout
        while len(data) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ready, _, _ = select.select([self._fd], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self._fd, n - len(data))
                except BlockingIOError:
                    continue
                if not chunk:
                    break       # the device went away
                data += chunk
        return bytes(data)

    def reset_input_buffer(self):
        """Drop bytes received but not read yet."""
        import termios
        termios.tcflush(self._fd, termios.TCIFLUSH)

    def close(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


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
        try:
            transport = SerialTransport(args.port, args.baud, args.timeout)
        except FileNotFoundError:
            raise LinkError(f"no serial port {args.port}") from None
        except OSError as exc:
            raise LinkError(f"cannot open {args.port}: {exc.strerror or exc}") from None
        with transport:
            link = EngineLink(transport)
            info = link.ping()
            if args.command == "ping":
                print(f"link protocol 1 on {args.port}: {info.channels_per_beat} channels per beat, "
                      f"{len(info.layers)} layers, window {info.rx_window} B, "
                      f"credit {info.credit_chunk} B")
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
