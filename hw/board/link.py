"""UART host link: runs Fire layers on the engine from a PC over a serial line.

``HostLink`` sits between a UART's two pins and the engine's ``start`` / ``i`` / ``o`` /
``done`` ports. The host side of the protocol is :class:`hw.host.EngineLink`.

Protocol (version 1)
--------------------
Bytes, 8N1. Host to link, a command byte and its arguments:

``0x00`` PING
    Reply: ``0xF1`` (link identifier, protocol version 1), ``L`` (channels_per_beat: channels per beat),
    ``N`` (number of layers), ``log2(D)`` (receive window in bytes), ``log2(K)`` (credit
    chunk in bytes), then for each layer ``cin`` and ``e`` as 16-bit little-endian numbers
    (``5 + 4 * N`` bytes in all).
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
    One output pixel in raster order, channels in order (channels_per_beat past ``e`` are padding).
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

Latency and throughput are the UART's: one byte per ``10 * divisor`` cycles each way, full
duplex; a pixel packet costs one byte more than its data.
"""

from amaranth.hdl import Array, Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hw.blocks.layouts import beat_layout, start_layout

from hw.board.uart import BITS_PER_BYTE, UARTRx, UARTTx, check_divisor

__all__ = [
    "HostLink", "start_layout", "beat_layout",
    "CMD_PING", "CMD_RUN", "LINK_ID", "ACK", "NAK", "CREDIT", "PIXEL", "DONE",
    "DONE_FRAMING", "DONE_RX_ERROR", "DONE_OVERRUN", "ERR_UNKNOWN", "ERR_TIMEOUT",
    "MAX_LAYERS",
]

CMD_PING = 0x00
CMD_RUN = 0x01

LINK_ID = 0xF1          # identifies the link and protocol version 1
ACK = 0xA1
NAK = 0xE1
CREDIT = 0xC0
PIXEL = 0xB0
DONE = 0xD0
DONE_FRAMING = 0x01     # DONE flag: engine output framing was not the expected one
DONE_RX_ERROR = 0x02    # DONE flag: UART framing error during the run
DONE_OVERRUN = 0x04     # DONE flag: input byte lost
ERR_UNKNOWN = 0xE0
ERR_TIMEOUT = 0xE8     # | DONE flags

#: The engine's ``start.layer`` field is 4 bits wide.
MAX_LAYERS = 16


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_pow2(value):
    return _is_int(value) and value >= 1 and value & (value - 1) == 0


class HostLink(wiring.Component):
    """Serial host link for the Fire engine; protocol in the module docstring.

    Parameters
    ----------
    layers : sequence of (int, int)
        ``(cin, e)`` for each layer index the engine runs: input and output channels per pixel,
        each 1 to 65535. At most 16 layers.
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

    def __init__(self, layers, channels_per_beat, divisor, *, rx_depth=512, credit_chunk=None, timeout=None):
        try:
            layers = [tuple(pair) for pair in layers]
        except TypeError:
            raise TypeError(f"Layers must be a sequence of (cin, e) pairs, not {layers!r}") \
                from None
        if not layers or len(layers) > MAX_LAYERS:
            raise ValueError(f"Layers must hold 1 to {MAX_LAYERS} (cin, e) pairs, "
                             f"not {len(layers)}")
        for pair in layers:
            if len(pair) != 2 or not all(_is_int(v) for v in pair):
                raise TypeError(f"Each layer must be a (cin, e) pair of integers, not {pair!r}")
            if not all(1 <= v <= 0xFFFF for v in pair):
                raise ValueError(f"Layer channel counts must be 1 to 65535, not {pair!r}")
        if not _is_int(channels_per_beat):
            raise TypeError(f"Channels per beat must be an integer from 1 to 255, not {channels_per_beat!r}")
        if not 1 <= channels_per_beat <= 255:
            raise ValueError(f"Channels per beat must be an integer from 1 to 255, not {channels_per_beat!r}")
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
        """``(cin, e)`` per layer index."""
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
        reply = [LINK_ID, self._channels_per_beat, len(self._layers),
                 ceil_log2(self._rx_depth), ceil_log2(self._credit_chunk)]
        for cin, e in self._layers:
            reply += [cin & 0xFF, cin >> 8, e & 0xFF, e >> 8]
        return bytes(reply)

    def elaborate(self, platform):
        m = Module()
        channels_per_beat = self._channels_per_beat
        n_layers = len(self._layers)

        m.submodules.uart_rx = urx = UARTRx(self._divisor)
        m.submodules.uart_tx = utx = UARTTx(self._divisor)
        m.submodules.rx_fifo = fifo = SyncFIFOBuffered(width=8, depth=self._rx_depth)
        m.d.comb += [
            urx.rx.eq(self.rx),
            self.tx.eq(utx.tx),
            fifo.w_data.eq(urx.o.payload),
            fifo.w_en.eq(urx.o.valid),
            urx.o.ready.eq(fifo.w_rdy),
        ]
        # A register in front of the FIFO's read side: the FIFO's block RAM output then feeds
        # one flip-flop instead of the command decoder (that path limited Fmax on ECP5).
        pop = Signal()
        head_valid = Signal()
        head = Signal(8)
        refill = ~head_valid | pop
        m.d.comb += fifo.r_en.eq(refill)
        with m.If(refill):
            m.d.sync += [head_valid.eq(fifo.r_rdy), head.eq(fifo.r_data)]

        # --- run parameters, latched from the RUN header -----------------------------------
        max_in = max(self.in_beats(n) for n in range(n_layers))
        max_out = max(self.out_beats(n) for n in range(n_layers))
        in_last_tab = Array(Const(self.in_beats(n) - 1, range(max_in)) for n in range(n_layers))
        out_beats_tab = Array(Const(self.out_beats(n), range(max_out + 1))
                              for n in range(n_layers))

        layer = Signal(4)
        layer_ok = Signal()
        height = Signal(8)
        width = Signal(8)
        last_row = Signal(8)
        last_col = Signal(8)
        in_last_beat = Signal(range(max_in))
        out_beats = Signal(range(max_out + 1))
        out_last_beat = Signal(range(max_out))

        # --- shared state between the command FSM, the input packer and the transmitter -----
        running = Signal()          # between the engine's start and the final reply
        abort = Signal()            # input starved: feed zeros, drop output
        in_done = Signal()
        out_done = Signal()
        done_seen = Signal()
        flags = Signal(3)           # DONE flags
        reply_pending = Signal()
        reply_byte = Signal(8)
        ping_active = Signal()
        credits_pending = Signal(range(self._rx_depth // self._credit_chunk + 3))
        credit_take = Signal()      # the transmitter sent one credit this cycle
        credit_give = Signal()      # another K input bytes left the FIFO this cycle
        m.d.comb += self.busy.eq(running)

        with m.If(running & self.done):
            m.d.sync += done_seen.eq(1)
        with m.If(running & urx.error):
            m.d.sync += flags[1].eq(1)
        with m.If(running & urx.overrun):
            m.d.sync += flags[2].eq(1)
        m.d.sync += credits_pending.eq(credits_pending + credit_give - credit_take)

        # Input silence while something waits for a byte; see ``timeout``.
        starving = Signal()
        silence = Signal(range(self._timeout + 1))
        with m.If(starving & ~head_valid):
            m.d.sync += silence.eq(silence + 1)
        with m.Else():
            m.d.sync += silence.eq(0)
        timed_out = starving & ~head_valid & (silence == self._timeout - 1)

        # --- command FSM --------------------------------------------------------------------
        m.d.comb += [
            self.start.payload.layer.eq(layer),
            self.start.payload.height.eq(height),
            self.start.payload.width.eq(width),
        ]

        def reply(byte, next_state):
            m.d.sync += [reply_pending.eq(1), reply_byte.eq(byte)]
            m.next = next_state

        with m.FSM(name="cmd_fsm"):
            with m.State("IDLE"):
                m.d.comb += pop.eq(head_valid)
                with m.If(head_valid):
                    with m.If(head == CMD_PING):
                        m.d.sync += ping_active.eq(1)
                        m.next = "PING"
                    with m.Elif(head == CMD_RUN):
                        m.next = "HDR_LAYER"
                    with m.Else():
                        reply(ERR_UNKNOWN, "REPLY")

            with m.State("PING"):
                # Hold further commands so that no reply lands inside the PING reply.
                with m.If(~ping_active):
                    m.next = "IDLE"

            for state, field, next_state in (("HDR_LAYER", layer, "HDR_HEIGHT"),
                                             ("HDR_HEIGHT", height, "HDR_WIDTH"),
                                             ("HDR_WIDTH", width, "CHECK")):
                with m.State(state):
                    m.d.comb += [starving.eq(1), pop.eq(head_valid)]
                    with m.If(head_valid):
                        m.d.sync += field.eq(head)
                        if field is layer:
                            # Judged on all 8 bits: 17 must not alias to layer 1.
                            m.d.sync += layer_ok.eq(head < n_layers)
                        m.next = next_state
                    with m.Elif(timed_out):
                        reply(ERR_TIMEOUT, "REPLY")

            with m.State("CHECK"):
                with m.If(layer_ok & (height != 0) & (width != 0)):
                    m.d.sync += [
                        last_row.eq(height - 1),
                        last_col.eq(width - 1),
                        in_last_beat.eq(in_last_tab[layer]),
                        out_beats.eq(out_beats_tab[layer]),
                        out_last_beat.eq(out_beats_tab[layer] - 1),
                        abort.eq(0), in_done.eq(0), out_done.eq(0), done_seen.eq(0),
                        flags.eq(0),
                    ]
                    m.next = "START"
                with m.Else():
                    reply(NAK, "REPLY")

            with m.State("START"):
                m.d.comb += self.start.valid.eq(1)
                with m.If(self.start.ready):
                    m.d.sync += running.eq(1)
                    reply(ACK, "RUN")

            with m.State("RUN"):
                with m.If(in_done & out_done & done_seen & ~reply_pending):
                    m.d.sync += running.eq(0)
                    with m.If(abort):
                        reply(ERR_TIMEOUT | flags, "REPLY")
                    with m.Else():
                        reply(DONE | flags, "REPLY")

            with m.State("REPLY"):
                with m.If(~reply_pending):
                    m.next = "IDLE"

        # --- input packer: FIFO bytes to engine beats ----------------------------------------
        row = Signal(8)
        col = Signal(8)
        beat = Signal(range(max_in))
        byte_idx = Signal(range(channels_per_beat))
        feeding = running & ~in_done
        take = Signal()
        with m.If(feeding & ~self.i.valid):
            m.d.comb += starving.eq(~abort)
            with m.If(abort):
                m.d.comb += take.eq(1)
            with m.Else():
                m.d.comb += [take.eq(head_valid), pop.eq(head_valid)]
                with m.If(timed_out):
                    m.d.sync += abort.eq(1)
        with m.If(running & abort):
            # Input still trickling in belongs to the abandoned run.
            m.d.comb += pop.eq(head_valid)

        chunk = Signal(range(self._credit_chunk))
        with m.If(take & ~abort):
            m.d.sync += chunk.eq(chunk + 1)
            if self._credit_chunk > 1:
                m.d.comb += credit_give.eq(chunk == self._credit_chunk - 1)
            else:
                m.d.comb += credit_give.eq(1)

        i_data = self.i.payload.data.as_value()
        with m.If(take):
            new_byte = head & ~abort.replicate(8)
            # Shift in from the top, so that the first byte ends up in lane 0.
            if channels_per_beat > 1:
                m.d.sync += i_data.eq(Cat(i_data[8:], new_byte))
            else:
                m.d.sync += i_data.eq(new_byte)
            with m.If(byte_idx == channels_per_beat - 1):
                m.d.sync += [
                    byte_idx.eq(0),
                    self.i.valid.eq(1),
                    self.i.payload.first.eq((row == 0) & (col == 0) & (beat == 0)),
                    self.i.payload.last.eq((row == last_row) & (col == last_col) &
                                           (beat == in_last_beat)),
                ]
            with m.Else():
                m.d.sync += byte_idx.eq(byte_idx + 1)

        with m.If(self.i.valid & self.i.ready):
            m.d.sync += self.i.valid.eq(0)
            with m.If(self.i.payload.last):
                m.d.sync += [in_done.eq(1), row.eq(0), col.eq(0), beat.eq(0)]
            with m.Elif(beat != in_last_beat):
                m.d.sync += beat.eq(beat + 1)
            with m.Else():
                m.d.sync += beat.eq(0)
                with m.If(col != last_col):
                    m.d.sync += col.eq(col + 1)
                with m.Else():
                    m.d.sync += [col.eq(0), row.eq(row + 1)]

        # --- engine output bookkeeping --------------------------------------------------------
        orow = Signal(8)
        ocol = Signal(8)
        obeat = Signal(range(max_out))
        o_take = self.o.valid & self.o.ready
        exp_first = (orow == 0) & (ocol == 0) & (obeat == 0)
        exp_last = (orow == last_row) & (ocol == last_col) & (obeat == out_last_beat)
        with m.If(o_take):
            with m.If(out_done | (self.o.payload.first != exp_first) |
                      (self.o.payload.last != exp_last)):
                m.d.sync += flags[0].eq(1)
            with m.If(out_done):
                pass
            with m.Elif(exp_last):
                m.d.sync += [out_done.eq(1), orow.eq(0), ocol.eq(0), obeat.eq(0)]
            with m.Elif(obeat != out_last_beat):
                m.d.sync += obeat.eq(obeat + 1)
            with m.Else():
                m.d.sync += obeat.eq(0)
                with m.If(ocol != last_col):
                    m.d.sync += ocol.eq(ocol + 1)
                with m.Else():
                    m.d.sync += [ocol.eq(0), orow.eq(orow + 1)]

        # --- transmitter: replies, credits and pixel packets -----------------------------------
        # A registered byte in front of the UART keeps valid and payload steady whatever the
        # sources do; ``free`` means the register empties (or is empty) this cycle.
        tx_valid = utx.i.valid
        tx_byte = utx.i.payload
        free = ~tx_valid | utx.i.ready

        ping_rom = Array(Const(b, 8) for b in self.ping_reply())
        ping_idx = Signal(range(len(ping_rom)))

        obuf = Signal(8 * channels_per_beat)
        obytes_left = Signal(range(channels_per_beat + 1))
        obeats_left = Signal(range(max_out + 1))

        with m.FSM(name="tx_fsm"):
            with m.State("IDLE"):
                with m.If(free):
                    m.d.sync += tx_valid.eq(0)
                    with m.If(reply_pending):
                        m.d.sync += [tx_valid.eq(1), tx_byte.eq(reply_byte),
                                     reply_pending.eq(0)]
                        # Credits left over at the end of a run would land after its last
                        # reply, where the host expects the next command's answer.
                        with m.If(~running):
                            m.d.sync += credits_pending.eq(0)
                    with m.Elif(ping_active):
                        m.d.sync += [tx_valid.eq(1), tx_byte.eq(ping_rom[ping_idx]),
                                     ping_idx.eq(ping_idx + 1)]
                        with m.If(ping_idx == len(ping_rom) - 1):
                            m.d.sync += [ping_active.eq(0), ping_idx.eq(0)]
                    with m.Elif(credits_pending != 0):
                        m.d.comb += credit_take.eq(1)
                        m.d.sync += [tx_valid.eq(1), tx_byte.eq(CREDIT)]
                    with m.Elif(running & self.o.valid):
                        with m.If(out_done | abort):
                            # Extra beats (flagged above) and an abandoned run's output.
                            m.d.comb += self.o.ready.eq(1)
                        with m.Else():
                            m.d.sync += [tx_valid.eq(1), tx_byte.eq(PIXEL),
                                         obeats_left.eq(out_beats), obytes_left.eq(0)]
                            m.next = "PIXEL"

            with m.State("PIXEL"):
                with m.If(free):
                    m.d.sync += tx_valid.eq(0)
                with m.If(obytes_left == 0):
                    with m.If(obeats_left == 0):
                        m.next = "IDLE"
                    with m.Elif(self.o.valid):
                        m.d.comb += self.o.ready.eq(1)
                        m.d.sync += [obuf.eq(self.o.payload.data), obytes_left.eq(channels_per_beat),
                                     obeats_left.eq(obeats_left - 1)]
                with m.Elif(free):
                    m.d.sync += [tx_valid.eq(1), tx_byte.eq(obuf[:8]),
                                 obuf.eq(obuf >> 8), obytes_left.eq(obytes_left - 1)]

        return m
