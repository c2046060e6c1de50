"""PC side of the UART host link: run layers on the board (no Amaranth needed).

``EngineLink`` speaks the protocol of :mod:`hw.board.protocol` over any byte transport with
``write(data)`` and ``read(n)``, where ``read`` returns fewer than ``n`` bytes only when it timed
out (as pyserial's ``Serial`` does). ``SerialTransport`` is such a transport for a serial port
on any operating system, built on pyserial; the tests plug in a simulated UART instead
(:class:`testkit.uart_bridge.SimUARTBridge`).
"""

import errno
import numbers
from dataclasses import dataclass

import numpy as np
import serial

from hw.board.protocol import (ACK, CHECK_BYTES, CMD_PING, CMD_RUN, CREDIT, DONE,
                               DONE_FRAMING, DONE_OVERRUN, DONE_RX_ERROR, ERR_TIMEOUT,
                               ERR_UNKNOWN, FINAL_MASK, LINK_ID, NAK, PING_HEADER_BYTES,
                               PING_LAYER_BYTES, PIXEL, LayerShape, checksum, padded_channels)

__all__ = [
    "LinkError", "LinkTimeout", "LinkCorrupted", "LinkInfo", "EngineLink", "SerialTransport",
    "encode_input", "decode_output",
]


class LinkError(Exception):
    """The link answered something the protocol does not allow, or reported a failure."""


class LinkTimeout(LinkError):
    """The link did not answer in time (or abandoned a run for lack of input)."""


class LinkCorrupted(LinkError):
    """A run's check values differ: bytes were changed on the wire."""


@dataclass(frozen=True)
class LinkInfo:
    """What a link reports in its PING reply.

    Members
    -------
    channels_per_beat : int
        Channels per engine beat (``L``).
    layers : tuple of (int, int)
        ``(cin, e)`` per layer index.
    shapes : tuple of LayerShape
        Everything the link reports per layer index (fixed geometry, tag).
    rx_window : int
        Input bytes the host may send beyond the confirmed ones (``D``).
    credit_chunk : int
        Input bytes one CREDIT message confirms (``K``).
    """
    channels_per_beat: int
    layers: tuple
    rx_window: int
    credit_chunk: int
    shapes: tuple = ()


def encode_input(x, channels_per_beat):
    """Bytes the link expects for input ``x`` of shape ``(height, width, cin)``, ``uint8``.

    Each pixel's channels are zero padded to a whole number of ``channels_per_beat``-channel beats.
    """
    h, w, cin = x.shape
    padded = np.zeros((h, w, padded_channels(cin, channels_per_beat)), dtype=np.uint8)
    padded[:, :, :cin] = x
    return padded.tobytes()


def decode_output(pixels, height, width, e, channels_per_beat):
    """Output array ``(height, width, e)`` ``uint8`` from the pixel packets' payload bytes."""
    stride = padded_channels(e, channels_per_beat)
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
        head = self._read(PING_HEADER_BYTES, "the PING reply")
        if head[0] != LINK_ID:
            raise LinkError(f"not a host link: PING answered 0x{head[0]:02X}, "
                            f"expected 0x{LINK_ID:02X}")
        channels_per_beat, n_layers, log_window, log_chunk = head[1:]
        table = self._read(PING_LAYER_BYTES * n_layers, "the PING reply's layer table")
        shapes = []
        for k in range(n_layers):
            entry = table[PING_LAYER_BYTES * k:PING_LAYER_BYTES * (k + 1)]
            shapes.append(LayerShape(int.from_bytes(entry[0:2], "little"),
                                     int.from_bytes(entry[2:4], "little"), *entry[4:]))
        layers = tuple((s.cin, s.e) for s in shapes)
        info = LinkInfo(channels_per_beat=channels_per_beat, layers=layers,
                        rx_window=1 << log_window, credit_chunk=1 << log_chunk,
                        shapes=tuple(shapes))
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
            Input activations, integers 0..255, height and width 1 to 255 (the layer's
            ``in_h`` x ``in_w`` if its geometry is fixed).

        Returns
        -------
        numpy.ndarray
            ``(out_h, out_w, e)`` ``uint8`` (``height x width`` unless the geometry is fixed).

        Raises
        ------
        ValueError, TypeError
            Bad ``layer`` or ``x`` (nothing is sent).
        LinkTimeout
            The link stopped answering, or abandoned the run for lack of input.
        LinkError
            The link refused the run, broke the protocol, flagged a corrupted run, or its check
            bytes differ from the host's (:class:`LinkCorrupted`). The line may then hold
            stray bytes: call :meth:`recover` before the next command.
        """
        info = self._info if self._info is not None else self.ping()
        if not isinstance(layer, (int, np.integer)) or isinstance(layer, bool):
            raise TypeError(f"Layer must be an integer, not {layer!r}")
        if not 0 <= layer < len(info.layers):
            raise ValueError(f"Layer must be 0 to {len(info.layers) - 1}, not {layer!r}")
        shape = info.shapes[layer] if info.shapes else LayerShape(*info.layers[layer])
        x = _as_layer_input(x, shape.cin, layer)
        height, width = x.shape[:2]
        if shape.fixed and (height, width) != (shape.in_h, shape.in_w):
            raise ValueError(f"Layer {layer} takes a {shape.in_h}x{shape.in_w} input, not "
                             f"{height}x{width}")
        out_h, out_w = shape.out_size(height, width)
        header = bytes([layer, height, width])
        payload = encode_input(x, info.channels_per_beat)
        pixel_bytes = padded_channels(shape.e, info.channels_per_beat)

        self._transport.write(bytes([CMD_RUN]) + header)
        answer = self._read(1, "the RUN acknowledgement")[0]
        if answer == NAK:
            raise LinkError(f"link refused layer {layer} of {height}x{width}")
        if answer == ERR_UNKNOWN:
            raise LinkError("link does not know the RUN command")
        if answer != ACK:
            raise LinkError(f"RUN answered 0x{answer:02X}, expected ACK 0x{ACK:02X}")
        tag, sent, pixels, n_pixels = self._exchange(layer, payload, out_h * out_w,
                                                     pixel_bytes)
        check = self._read(CHECK_BYTES, f"the check bytes of layer {layer}")
        problems = [text for bit, text in ((DONE_FRAMING, "engine output framing"),
                                           (DONE_RX_ERROR, "UART framing error"),
                                           (DONE_OVERRUN, "input bytes lost"))
                    if tag & bit]
        if tag & FINAL_MASK == ERR_TIMEOUT:
            raise LinkTimeout(f"link abandoned layer {layer}: its input stopped after {sent} "
                              f"of {len(payload)} bytes were sent"
                              + (f" ({', '.join(problems)})" if problems else ""))
        if problems:
            raise LinkError(f"layer {layer} finished with errors: {', '.join(problems)}")
        if n_pixels != out_h * out_w or sent != len(payload):
            raise LinkError(f"layer {layer} finished after {n_pixels} of {out_h * out_w} "
                            f"pixels and {sent} of {len(payload)} input bytes")
        link_in = int.from_bytes(check[:2], "little")
        link_out = int.from_bytes(check[2:], "little")
        host_in, host_out = checksum(header + payload), checksum(pixels)
        if (link_in, link_out) != (host_in, host_out):
            raise LinkCorrupted(
                f"layer {layer}: check values differ (input: link 0x{link_in:04X}, host "
                f"0x{host_in:04X}; output: link 0x{link_out:04X}, host 0x{host_out:04X})")
        return decode_output(pixels, out_h, out_w, shape.e, info.channels_per_beat)

    def _exchange(self, layer, payload, n_out, pixel_bytes):
        """Send the input within the credit window while reading output; returns the final
        byte, the input bytes sent, the pixel payload and the pixel count."""
        info = self._info
        sent = 0
        allowed = info.rx_window
        pixels = bytearray()
        n_pixels = 0
        while True:
            if sent < len(payload) and sent < allowed:
                end = min(len(payload), allowed)
                self._transport.write(payload[sent:end])
                sent = end
            tag = self._read(1, f"output of layer {layer} (pixel {n_pixels} of {n_out}, "
                                f"{sent} of {len(payload)} input bytes sent)")[0]
            if tag == CREDIT:
                allowed += info.credit_chunk
            elif tag == PIXEL:
                if n_pixels == n_out:
                    raise LinkError(f"link sent more than {n_pixels} pixels")
                pixels += self._read(pixel_bytes, f"pixel {n_pixels} of layer {layer}")
                n_pixels += 1
            elif tag & FINAL_MASK in (DONE, ERR_TIMEOUT):
                return tag, sent, bytes(pixels), n_pixels
            else:
                raise LinkError(f"unexpected byte 0x{tag:02X} during layer {layer}")

    def recover(self, attempts=3):
        """Bring the link back to a known state after a failed run.

        Reads until the line is quiet for a whole read timeout (the link abandons a run
        whose input stopped, and answers stray bytes), then PINGs; repeated up to
        ``attempts`` times. Raises the last :class:`LinkError` if no PING succeeds.
        """
        error = None
        for _ in range(attempts):
            while self._transport.read(1):
                pass
            try:
                return self.ping()
            except LinkError as exc:
                error = exc
        raise error

    def run_layer_retrying(self, layer, x, *, retries=3, on_retry=None):
        """:meth:`run_layer`, repeated after :meth:`recover` when the link fails or a check
        value differs, up to ``retries`` more times.

        ``on_retry(attempt, error)`` is called before each retry. Returns ``(output,
        attempts)``. Raises :class:`LinkError` naming the last failure when every attempt
        failed; ``ValueError`` / ``TypeError`` for bad arguments are not retried.
        """
        attempt = 1
        while True:
            try:
                return self.run_layer(layer, x), attempt
            except LinkError as exc:
                if attempt > retries:
                    raise LinkError(f"layer {layer} failed {attempt} times, last: {exc}") \
                        from None
                if on_retry is not None:
                    on_retry(attempt, exc)
                self.recover()
                attempt += 1


class SerialTransport:
    """Raw 8N1 serial port (pyserial), no flow control, on any operating system.

    Parameters
    ----------
    port : str
        Device name, e.g. ``/dev/ttyUSB1`` or ``COM3``.
    baud : int
        A standard rate (one of pyserial's ``Serial.BAUDRATES``, e.g. 115200).
    timeout : float
        Seconds a :meth:`read` may wait in all, and a :meth:`write` for the driver to take
        the data.

    Raises
    ------
    TypeError
        If ``baud`` is not an integer or ``timeout`` not a number.
    ValueError
        If ``baud`` is not a standard rate or ``timeout`` is not positive.
    LinkError
        If the port cannot be opened (``"no serial port ..."`` if it does not exist).
    """

    def __init__(self, port, baud=115200, timeout=2.0):
        if not isinstance(baud, int) or isinstance(baud, bool):
            raise TypeError(f"Baud rate must be an integer, not {baud!r}")
        if baud not in serial.Serial.BAUDRATES:
            raise ValueError(f"Baud rate {baud!r} is not supported: use a standard rate "
                             f"such as 115200")
        if not isinstance(timeout, numbers.Real) or isinstance(timeout, bool):
            raise TypeError(f"Timeout must be a number of seconds, not {timeout!r}")
        if not timeout > 0:
            raise ValueError(f"Timeout must be a positive number of seconds, not {timeout!r}")
        self.timeout = timeout
        try:
            self._port = serial.Serial(port, baud, timeout=timeout, write_timeout=timeout)
        except serial.SerialException as exc:
            if exc.errno == errno.ENOENT:
                raise LinkError(f"no serial port {port}") from None
            raise LinkError(f"cannot open {port}: {exc.strerror or exc}") from None

    def write(self, data):
        """Send all of ``data``; :class:`LinkTimeout` if the driver takes none for a while."""
        try:
            self._port.write(bytes(data))
        except serial.SerialTimeoutException:
            raise LinkTimeout(f"serial port took no data for {self.timeout} s") from None
        except serial.SerialException as exc:
            raise LinkError(f"serial port failed: {exc}") from None

    def read(self, n):
        """Up to ``n`` bytes; fewer only if :attr:`timeout` seconds pass first."""
        try:
            return bytes(self._port.read(n))
        except serial.SerialException as exc:      # e.g. a USB adapter unplugged
            raise LinkError(f"serial port failed: {exc}") from None

    def reset_input_buffer(self):
        """Drop bytes received but not read yet."""
        self._port.reset_input_buffer()

    def close(self):
        self._port.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
