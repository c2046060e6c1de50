"""The UART host-link protocol, version 1: byte values and message shapes, no Amaranth.

Both ends import this module: the link (:class:`hw.board.link.HostLink`) and the PC-side driver
(:class:`hw.board.driver.EngineLink`), which therefore runs without Amaranth installed.

Bytes, 8N1. Host to link, a command byte and its arguments:

``0x00`` PING
    Reply: ``0xF1`` (link identifier, protocol version 1), ``L`` (channels per beat),
    ``N`` (number of layers), ``log2(D)`` (receive window in bytes), ``log2(K)`` (credit
    chunk in bytes), then for each layer ``cin`` and ``e`` as 16-bit little-endian numbers
    (``5 + 4 * N`` bytes in all); see :func:`ping_reply`.
``0x01 layer height width`` RUN
    Reply ``0xA1`` (ACK) once the engine has accepted the start, or ``0xE1`` (NAK) for an
    unknown layer or a zero height or width, after which the link is back to waiting for a
    command. After the ACK the host sends the layer's input: ``height * width`` pixels in
    raster order, each ``ceil(cin / L) * L`` bytes (channels in order, zero padded).

Any other command byte is answered with ``0xE0``.

During a run the link sends, in any interleaving:

``0xC0`` CREDIT
    The link has passed another ``K`` input bytes to the engine.
``0xB0`` + ``ceil(e / L) * L`` bytes, PIXEL
    One output pixel in raster order, channels in order (the channels past ``e`` are padding).
``0xD0 | flags`` DONE
    Always last: the engine has finished. Flags: bit 0, the engine's ``first`` / ``last``
    framing or beat count was not the expected one; bit 1, a UART framing error happened
    during the run; bit 2, an input byte was lost (the host overran its window). Any flag
    means the output must not be trusted.
``0xE8 | flags`` TIMEOUT
    Always last: no input byte arrived for ``timeout`` cycles while the engine waited for
    one (or in the middle of a RUN header); flags as for DONE (bit 2 tells that input was
    lost, the usual reason). The link fed the engine zeros for the rest of the layer,
    discarded its output and any input still arriving, and is back to waiting for a command.

Flow control: the link cannot stop the host's transmitter, and the engine stops taking input
whenever its output waits for the (equally slow) UART transmitter, which happens in every
layer with more output than input bytes per pixel. So the link buffers input in a ``D``-byte
FIFO and the host keeps at most ``D`` bytes unconfirmed: having received ``c`` CREDIT bytes in
this run, it may have sent at most ``D + c * K`` input bytes. Credits go out between pixel
packets, never inside one.
"""

__all__ = [
    "CMD_PING", "CMD_RUN", "LINK_ID", "ACK", "NAK", "CREDIT", "PIXEL", "DONE",
    "DONE_FRAMING", "DONE_RX_ERROR", "DONE_OVERRUN", "ERR_UNKNOWN", "ERR_TIMEOUT",
    "FINAL_MASK", "MAX_LAYERS", "PING_HEADER_BYTES", "ping_reply", "padded_channels",
]

CMD_PING = 0x00
CMD_RUN = 0x01

LINK_ID = 0xF1          # identifies the link and protocol version 1
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

#: PING reply bytes before the layer table.
PING_HEADER_BYTES = 5


def padded_channels(channels, channels_per_beat):
    """Bytes per pixel on the wire: ``channels`` rounded up to whole beats."""
    return -(-channels // channels_per_beat) * channels_per_beat


def ping_reply(channels_per_beat, layers, rx_depth, credit_chunk):
    """The bytes a link with these parameters answers PING with.

    ``rx_depth`` and ``credit_chunk`` are powers of two (sent as their base-2 logarithms);
    ``layers`` holds ``(cin, e)`` pairs of 16-bit numbers.
    """
    reply = [LINK_ID, channels_per_beat, len(layers),
             rx_depth.bit_length() - 1, credit_chunk.bit_length() - 1]
    for cin, e in layers:
        reply += [cin & 0xFF, cin >> 8, e & 0xFF, e >> 8]
    return bytes(reply)
