"""The UART host-link protocol, version 2: byte values and message shapes, no Amaranth.

Both ends import this module: the link (:class:`hw.board.link.HostLink`) and the PC-side driver
(:class:`hw.board.driver.EngineLink`), which therefore runs without Amaranth installed.

Bytes, 8N1. Host to link, a command byte and its arguments:

``0x00`` PING
    Reply: ``0xF2`` (link identifier, protocol version 2), ``L`` (channels per beat),
    ``N`` (number of layers), ``log2(D)`` (receive window in bytes), ``log2(K)`` (credit
    chunk in bytes), then for each layer (:class:`LayerShape`) ``cin`` and ``e`` as 16-bit
    little-endian numbers and ``in_h``, ``in_w``, ``out_h``, ``out_w``, ``tag`` one byte each
    (``5 + 9 * N`` bytes in all); see :func:`ping_reply`.
``0x01 layer height width`` RUN
    Reply ``0xA1`` (ACK) once the engine has accepted the start, or ``0xE1`` (NAK) for an
    unknown layer, a zero height or width, or, for a layer of fixed geometry, a height and
    width other than its ``in_h`` and ``in_w``; after a NAK the link is back to waiting for a
    command. After the ACK the host sends the layer's input: ``height * width`` pixels in
    raster order, each ``ceil(cin / L) * L`` bytes (channels in order, zero padded).

Any other command byte is answered with ``0xE0``.

During a run the link sends, in any interleaving:

``0xC0`` CREDIT
    The link has passed another ``K`` input bytes to the engine.
``0xB0`` + ``ceil(e / L) * L`` bytes, PIXEL
    One output pixel in raster order, channels in order (the channels past ``e`` are padding).
    A layer of fixed geometry sends ``out_h * out_w`` pixels, any other ``height * width``.
``0xD0 | flags`` DONE, then 4 check bytes
    Always last: the engine has finished. Flags: bit 0, the engine's ``first`` / ``last``
    framing or beat count was not the expected one; bit 1, a UART framing error happened
    during the run; bit 2, an input byte was lost (the host overran its window). Any flag
    means the output must not be trusted.
``0xE8 | flags`` TIMEOUT, then 4 check bytes
    Always last: no input byte arrived for ``timeout`` cycles while the engine waited for
    one; flags as for DONE (bit 2 tells that input was lost, the usual reason). The link fed
    the engine zeros for the rest of the layer, discarded its output and any input still
    arriving, and is back to waiting for a command. (A RUN header that stops half way is
    answered with a lone ``0xE8``, before any ACK.)

The 4 check bytes after a run's last byte are two CRC-16/XMODEM values (``binascii.crc_hqx``
with initial value 0), little-endian: of the bytes the link received for the run (the three
header bytes, then the input bytes, as taken), and of the PIXEL payload bytes it sent (tags
excluded). UART framing has no parity: a flipped data bit is caught only by these checks.

Flow control: the link cannot stop the host's transmitter, and the engine stops taking input
whenever its output waits for the (equally slow) UART transmitter, which happens in every
layer with more output than input bytes per pixel. So the link buffers input in a ``D``-byte
FIFO and the host keeps at most ``D`` bytes unconfirmed: having received ``c`` CREDIT bytes in
this run, it may have sent at most ``D + c * K`` input bytes. Credits go out between pixel
packets, never inside one.
"""

import binascii
from typing import NamedTuple

__all__ = [
    "CMD_PING", "CMD_RUN", "LINK_ID", "ACK", "NAK", "CREDIT", "PIXEL", "DONE",
    "DONE_FRAMING", "DONE_RX_ERROR", "DONE_OVERRUN", "ERR_UNKNOWN", "ERR_TIMEOUT",
    "FINAL_MASK", "MAX_LAYERS", "PING_HEADER_BYTES", "PING_LAYER_BYTES", "CHECK_BYTES",
    "NO_TAG", "LayerShape", "ping_reply", "padded_channels", "checksum",
]

CMD_PING = 0x00
CMD_RUN = 0x01

LINK_ID = 0xF2          # identifies the link and protocol version 2
ACK = 0xA1
NAK = 0xE1
CREDIT = 0xC0
PIXEL = 0xB0
DONE = 0xD0             # | DONE flags
DONE_FRAMING = 0x01     # DONE flag: engine output framing was not the expected one
DONE_RX_ERROR = 0x02    # DONE flag: UART framing error during the run
DONE_OVERRUN = 0x04     # DONE flag: input byte lost
ERR_UNKNOWN = 0xE0
ERR_TIMEOUT = 0xE8      # | DONE flags
#: ``byte & FINAL_MASK`` is ``DONE`` or ``ERR_TIMEOUT`` for a run's last byte.
FINAL_MASK = 0xF8

#: The engine's ``start.layer`` field is 4 bits wide.
MAX_LAYERS = 16

#: PING reply bytes before the layer table, and per layer.
PING_HEADER_BYTES = 5
PING_LAYER_BYTES = 9

#: Check bytes after a run's DONE or TIMEOUT.
CHECK_BYTES = 4

#: A layer's tag when it names no step of a network.
NO_TAG = 0xFF


class LayerShape(NamedTuple):
    """What the link moves for one layer index.

    ``cin`` / ``e``: bytes per input / output pixel before padding to whole beats. ``in_h``,
    ``in_w``, ``out_h``, ``out_w``: a fixed geometry (each 1..255), or all 0: any input size,
    the output the same size. ``tag``: the layer's position in the network the board was built
    for (so a host can check it drives the layers it means), or :data:`NO_TAG`.
    """
    cin: int
    e: int
    in_h: int = 0
    in_w: int = 0
    out_h: int = 0
    out_w: int = 0
    tag: int = NO_TAG

    @property
    def fixed(self):
        """The layer has a fixed geometry."""
        return self.in_h != 0

    def out_size(self, height, width):
        """(rows, columns) of output for an input of ``height`` x ``width``."""
        return (self.out_h, self.out_w) if self.fixed else (height, width)


def padded_channels(channels, channels_per_beat):
    """Bytes per pixel on the wire: ``channels`` rounded up to whole beats."""
    return -(-channels // channels_per_beat) * channels_per_beat


def checksum(data):
    """CRC-16/XMODEM of ``data``, as the link computes its check values."""
    return binascii.crc_hqx(bytes(data), 0)


def ping_reply(channels_per_beat, layers, rx_depth, credit_chunk):
    """The bytes a link with these parameters answers PING with.

    ``rx_depth`` and ``credit_chunk`` are powers of two (sent as their base-2 logarithms);
    ``layers`` holds :class:`LayerShape` values (or tuples of their fields).
    """
    reply = [LINK_ID, channels_per_beat, len(layers),
             rx_depth.bit_length() - 1, credit_chunk.bit_length() - 1]
    for layer in layers:
        s = LayerShape(*layer)
        reply += [s.cin & 0xFF, s.cin >> 8, s.e & 0xFF, s.e >> 8,
                  s.in_h, s.in_w, s.out_h, s.out_w, s.tag]
    return bytes(reply)
