"""UART host link: runs layers on the engine from a PC over a serial line.

``HostLink`` sits between a UART's two pins and the engine's ``start`` / ``i`` / ``o`` /
``done`` ports; the protocol is described (and its byte values defined) in
:mod:`hw.board.protocol`, and the PC side is :class:`hw.board.driver.EngineLink`.

The link wires four blocks around the UART and its receive FIFO:
:class:`~hw.board.command_decoder.CommandDecoder` (commands, run set-up, final reply, timeout),
:class:`~hw.board.input_packer.InputPacker` (input bytes to engine beats, credits),
:class:`~hw.board.framing_check.FramingCheck` (the engine's output framing) and
:class:`~hw.board.transmitter.LinkTransmitter` (replies, credits and pixel packets).

Latency and throughput are the UART's: one byte per ``10 * divisor`` cycles each way, full
duplex; a pixel packet costs one byte more than its data, a run four check bytes.
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.crc.catalog import CRC16_XMODEM
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out, connect

from hw.blocks.layouts import beat_layout, start_layout
from hw.board import protocol
from hw.board.command_decoder import CommandDecoder
from hw.board.framing_check import FramingCheck
from hw.board.input_packer import InputPacker
from hw.board.protocol import MAX_LAYERS, LayerShape
from hw.board.transmitter import LinkTransmitter
from hw.board.uart import BITS_PER_BYTE, UARTRx, UARTTx, check_divisor

__all__ = ["HostLink"]


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_layer(pair):
    """A :class:`~hw.board.protocol.LayerShape` from ``(cin, e)``, ``(cin, e, in_h, in_w,
    out_h, out_w)`` or that and a tag; TypeError / ValueError if it is not one."""
    if len(pair) not in (2, 6, 7) or not all(_is_int(v) for v in pair):
        raise TypeError(f"Each layer must be a (cin, e) pair of integers, optionally followed "
                        f"by in_h, in_w, out_h, out_w and a tag, not {pair!r}")
    shape = LayerShape(*pair)
    if not (1 <= shape.cin <= 0xFFFF and 1 <= shape.e <= 0xFFFF):
        raise ValueError(f"Layer channel counts must be 1 to 65535, not {pair!r}")
    sizes = shape[2:6]
    if any(sizes) and not all(1 <= v <= 255 for v in sizes):
        raise ValueError(f"A layer's fixed sizes must all be 1 to 255 (or all 0), not {pair!r}")
    if not 0 <= shape.tag <= 255:
        raise ValueError(f"A layer's tag must be 0 to 255, not {pair!r}")
    return shape


def _is_pow2(value):
    return _is_int(value) and value >= 1 and value & (value - 1) == 0


class HostLink(wiring.Component):
    """Serial host link for the Fire engine; protocol in the module docstring.

    Parameters
    ----------
    layers : sequence of tuples
        For each layer index the engine runs, the fields of a
        :class:`~hw.board.protocol.LayerShape`: ``(cin, e)`` (input and output bytes per pixel,
        each 1 to 65535; any size, output as large as the input), optionally followed by a
        fixed geometry ``in_h, in_w, out_h, out_w`` (each 1 to 255) and a ``tag`` (0 to 255).
        At most 16 layers.
    channels_per_beat : int
        Channels per engine beat (``L``), 1 to 255.
    divisor : int
        Clock cycles per UART bit (clock frequency / baud rate), at least 4.
    rx_depth : int
        Input FIFO size ``D`` in bytes, a power of two from 4 to 32768; the host's window.
        It should cover the host's round-trip time (a USB serial adapter's is milliseconds).
    credit_chunk : int or None
        Input bytes per CREDIT message ``K``, a power of two no larger than ``rx_depth``.
        Default ``rx_depth // 4``.
    timeout : int or None
        Cycles without an input byte, while the engine or a RUN header waits for one, after
        which the run is abandoned (TIMEOUT). Default: 16384 byte times, which is about 1.4 s
        at 115200 Bd. At least one byte time.

    Members
    -------
    rx : ``In(1)``
        UART receive pin (from the host), idle high.
    tx : ``Out(1)``
        UART transmit pin (to the host), idle high.
    start : ``Out(stream.Signature(start_layout()))``
        To the engine's ``start``.
    i : ``Out(stream.Signature(beat_layout(channels_per_beat)))``
        To the engine's ``i``: the input, one beat per ``channels_per_beat`` bytes, framed with
        ``first`` / ``last`` over the whole layer.
    o : ``In(stream.Signature(beat_layout(channels_per_beat)))``
        From the engine's ``o``.
    done : ``In(1)``
        From the engine's ``done`` pulse.
    busy : ``Out(1)``
        High from a RUN command until its last reply byte is queued (for an LED).

    Latency: an input beat reaches ``i`` one cycle after its last byte leaves the FIFO (about
    one UART byte after the byte arrives); an output byte starts on ``tx`` two cycles after
    the transmitter frees up. Throughput: one byte per ``10 * divisor`` cycles each way.

    Raises
    ------
    TypeError
        If a parameter has the wrong type.
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, layers, channels_per_beat, divisor, *, rx_depth=512, credit_chunk=None,
                 timeout=None):
        try:
            layers = [tuple(pair) for pair in layers]
        except TypeError:
            raise TypeError(f"Layers must be a sequence of (cin, e) pairs, not {layers!r}") \
                from None
        if not layers or len(layers) > MAX_LAYERS:
            raise ValueError(f"Layers must hold 1 to {MAX_LAYERS} (cin, e) pairs, "
                             f"not {len(layers)}")
        layers = [_check_layer(pair) for pair in layers]
        if not _is_int(channels_per_beat):
            raise TypeError(f"Channels per beat must be an integer from 1 to 255, "
                            f"not {channels_per_beat!r}")
        if not 1 <= channels_per_beat <= 255:
            raise ValueError(f"Channels per beat must be an integer from 1 to 255, "
                             f"not {channels_per_beat!r}")
        check_divisor(divisor)
        if not _is_int(rx_depth):
            raise TypeError(f"Receive depth must be a power of two from 4 to 32768, "
                            f"not {rx_depth!r}")
        if not (_is_pow2(rx_depth) and 4 <= rx_depth <= 32768):
            raise ValueError(f"Receive depth must be a power of two from 4 to 32768, "
                             f"not {rx_depth!r}")
        if credit_chunk is None:
            credit_chunk = rx_depth // 4
        if not _is_int(credit_chunk):
            raise TypeError(f"Credit chunk must be a power of two no larger than the receive "
                            f"depth, not {credit_chunk!r}")
        if not (_is_pow2(credit_chunk) and credit_chunk <= rx_depth):
            raise ValueError(f"Credit chunk must be a power of two no larger than the receive "
                             f"depth, not {credit_chunk!r}")
        if timeout is None:
            timeout = 16384 * BITS_PER_BYTE * divisor
        if not _is_int(timeout):
            raise TypeError(f"Timeout must be an integer number of cycles, not {timeout!r}")
        if timeout < BITS_PER_BYTE * divisor:
            raise ValueError(f"Timeout must be at least one byte time "
                             f"({BITS_PER_BYTE * divisor} cycles), not {timeout!r}")

        self._layers = tuple(layers)
        self._channels_per_beat = channels_per_beat
        self._divisor = divisor
        self._rx_depth = rx_depth
        self._credit_chunk = credit_chunk
        self._timeout = timeout

        super().__init__({
            "rx": In(1, init=1),
            "tx": Out(1, init=1),
            "start": Out(stream.Signature(start_layout())),
            "i": Out(stream.Signature(beat_layout(channels_per_beat))),
            "o": In(stream.Signature(beat_layout(channels_per_beat))),
            "done": In(1),
            "busy": Out(1),
        })

    @property
    def layers(self):
        """:class:`~hw.board.protocol.LayerShape` per layer index."""
        return self._layers

    @property
    def channels_per_beat(self):
        """Channels per engine beat."""
        return self._channels_per_beat

    @property
    def divisor(self):
        """Clock cycles per UART bit."""
        return self._divisor

    @property
    def rx_depth(self):
        """Input FIFO size in bytes: the host's send window."""
        return self._rx_depth

    @property
    def credit_chunk(self):
        """Input bytes confirmed by one CREDIT message."""
        return self._credit_chunk

    @property
    def timeout(self):
        """Input starvation, in cycles, after which a run is abandoned."""
        return self._timeout

    @property
    def cycles_per_byte(self):
        """Clock cycles per UART byte, each direction."""
        return BITS_PER_BYTE * self._divisor

    def in_beats(self, layer):
        """Input beats per pixel of ``layer``."""
        return -(-self._layers[layer][0] // self._channels_per_beat)

    def out_beats(self, layer):
        """Output beats per pixel of ``layer``."""
        return -(-self._layers[layer][1] // self._channels_per_beat)

    def ping_reply(self):
        """The bytes the link answers PING with."""
        return protocol.ping_reply(self._channels_per_beat, self._layers, self._rx_depth,
                                   self._credit_chunk)

    def elaborate(self, platform):
        m = Module()
        n_layers = len(self._layers)
        max_in = max(self.in_beats(n) for n in range(n_layers))
        max_out = max(self.out_beats(n) for n in range(n_layers))

        m.submodules.uart_rx = urx = UARTRx(self._divisor)
        m.submodules.uart_tx = utx = UARTTx(self._divisor)
        m.submodules.rx_fifo = fifo = SyncFIFOBuffered(width=8, depth=self._rx_depth)
        m.submodules.decoder = dec = CommandDecoder(self._layers, self._channels_per_beat,
                                                    self._timeout)
        m.submodules.packer = packer = InputPacker(self._channels_per_beat, max_in,
                                                   self._credit_chunk)
        m.submodules.framing = framing = FramingCheck(max_out)
        m.submodules.transmitter = tx = LinkTransmitter(
            self._channels_per_beat, max_out, self.ping_reply(),
            self._rx_depth // self._credit_chunk)

        m.d.comb += [
            urx.rx.eq(self.rx),
            self.tx.eq(utx.tx),
            fifo.w_data.eq(urx.o.payload),
            fifo.w_en.eq(urx.o.valid),
            urx.o.ready.eq(fifo.w_rdy),
        ]
        # A register in front of the FIFO's read side: the FIFO's block RAM output then feeds
        # one flip-flop instead of the command decoder (that path limited Fmax on ECP5). The
        # decoder takes its bytes between runs, the packer during one.
        head = stream.Signature(8).create()
        refill = ~head.valid | head.ready
        m.d.comb += [fifo.r_en.eq(refill), head.ready.eq(dec.i.ready | packer.i.ready)]
        with m.If(refill):
            m.d.sync += [head.valid.eq(fifo.r_rdy), head.payload.eq(fifo.r_data)]
        for sink in (dec.i, packer.i):
            m.d.comb += [sink.valid.eq(head.valid), sink.payload.eq(head.payload)]
        # The check value of a run's received bytes: from the RUN command to the last input byte.
        m.submodules.crc_in = crc_in = CRC16_XMODEM(data_width=8).create()
        take = head.valid & head.ready
        m.d.comb += [
            crc_in.start.eq(take & dec.command & (head.payload == protocol.CMD_RUN)),
            crc_in.valid.eq(take & ~dec.command),
            crc_in.data.eq(head.payload),
        ]

        connect(m, dec.start, wiring.flipped(self.start))
        connect(m, dec.reply, tx.reply)
        connect(m, dec.ping, tx.ping)
        connect(m, packer.o, wiring.flipped(self.i))
        connect(m, tx.o, utx.i)
        connect(m, wiring.flipped(self.o), tx.engine)
        m.d.comb += [
            self.busy.eq(dec.running),
            packer.begin.eq(dec.begin),
            packer.running.eq(dec.running),
            packer.abort.eq(dec.abort),
            packer.last_row.eq(dec.last_row),
            packer.last_col.eq(dec.last_col),
            packer.last_beat.eq(dec.in_last_beat),
            framing.begin.eq(dec.begin),
            framing.last_row.eq(dec.out_last_row),
            framing.last_col.eq(dec.out_last_col),
            framing.last_beat.eq(dec.out_last_beat),
            framing.take.eq(self.o.valid & self.o.ready),
            framing.first.eq(self.o.payload.first),
            framing.last.eq(self.o.payload.last),
            tx.credit.eq(packer.credit),
            tx.running.eq(dec.running),
            tx.abort.eq(dec.abort),
            tx.out_done.eq(framing.done),
            tx.out_beats.eq(dec.out_beats),
            tx.final.eq(dec.final),
            tx.begin.eq(dec.begin),
            tx.crc_in.eq(crc_in.crc),
            dec.starving.eq(packer.starving),
            dec.in_done.eq(packer.done),
            dec.out_done.eq(framing.done),
            dec.engine_done.eq(self.done),
            dec.framing_error.eq(framing.error),
            dec.rx_error.eq(urx.error),
            dec.rx_overrun.eq(urx.overrun),
        ]
        return m
