"""The link's transmit side: replies, PING reply, credits, pixel packets and check bytes, one
byte stream."""

from amaranth.hdl import Array, Cat, Const, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.crc.catalog import CRC16_XMODEM
from amaranth.lib.wiring import In, Out

from hw.blocks.layouts import beat_layout
from hw.board.protocol import CREDIT, PIXEL

__all__ = ["LinkTransmitter"]


class LinkTransmitter(wiring.Component):
    """Merge the link's messages into the byte stream to the UART transmitter.

    Whenever its output register is free (empty, or emptying this cycle) and no pixel packet is
    under way, it sends, in this order of priority: a pending ``reply`` byte; the next byte of
    the PING reply while ``ping`` is requested; a CREDIT byte while credits are owed; or, while
    ``running``, a PIXEL packet for the engine's next output pixel (the tag, then ``out_beats``
    beats of ``channels_per_beat`` bytes, lane 0 first). Engine beats arriving after
    ``out_done`` or after ``abort`` are taken and dropped. Owed credits are forgotten when a
    reply goes out while not ``running`` (a run's final reply): left over, they would land
    where the host expects the next command's answer. A ``final`` reply is followed by the four
    check bytes: ``crc_in`` and the CRC-16/XMODEM of the pixel payload bytes sent since
    ``begin``, each little-endian (see :mod:`hw.board.protocol`).

    Parameters
    ----------
    channels_per_beat : int
        Bytes per engine beat.
    max_beats : int
        Largest number of output beats per pixel of any layer.
    ping_reply : bytes
        The PING reply (see :func:`hw.board.protocol.ping_reply`).
    max_credits : int
        Most credits that can be owed at once (receive depth / credit chunk).

    Members
    -------
    o : ``Out(stream.Signature(unsigned(8)))``
        To the UART transmitter; ``valid`` and ``payload`` come from a register.
    reply : ``In(stream.Signature(unsigned(8)))``
        One-byte replies (ACK, NAK, DONE, ...).
    final : ``In(1)``
        With ``reply.valid``: the check bytes follow this reply.
    begin : ``In(1)``
        A run starts: restart the payload CRC.
    crc_in : ``In(16)``
        The CRC of the run's received bytes, steady when a ``final`` reply is offered.
    ping : ``In(stream.Signature(unsigned(0)))``
        A PING reply is wanted; ``ready`` with its last byte.
    credit : ``In(1)``
        One-cycle pulse: one more CREDIT is owed.
    engine : ``In(stream.Signature(beat_layout(channels_per_beat)))``
        From the engine's ``o``.
    running, abort, out_done : ``In(1)``
        A run is in progress; it was abandoned; the engine's last output beat has been taken.
    out_beats : ``In(range(max_beats + 1))``
        Output beats per pixel of the running layer.

    Latency: a byte is on ``o`` the cycle after it is chosen, a beat's first byte two cycles
    after the beat's transfer. Throughput: whatever the UART takes, one byte per
    ``10 * divisor`` cycles; a pixel packet is one byte longer than its data.

    Raises
    ------
    TypeError
        If ``ping_reply`` is not bytes.
    ValueError
        If ``ping_reply`` is empty.
    """

    def __init__(self, channels_per_beat, max_beats, ping_reply, max_credits):
        if not isinstance(ping_reply, bytes):
            raise TypeError(f"PING reply must be bytes, not {ping_reply!r}")
        if not ping_reply:
            raise ValueError(f"PING reply must not be empty, not {ping_reply!r}")
        self._channels_per_beat = channels_per_beat
        self._max_beats = max_beats
        self._ping_reply = ping_reply
        self._max_credits = max_credits
        super().__init__({
            "o": Out(stream.Signature(unsigned(8))),
            "reply": In(stream.Signature(unsigned(8))),
            "final": In(1),
            "begin": In(1),
            "crc_in": In(16),
            "ping": In(stream.Signature(unsigned(0))),
            "credit": In(1),
            "engine": In(stream.Signature(beat_layout(channels_per_beat))),
            "running": In(1),
            "abort": In(1),
            "out_done": In(1),
            "out_beats": In(range(max_beats + 1)),
        })

    @property
    def ping_reply(self):
        """The PING reply bytes."""
        return self._ping_reply

    def elaborate(self, platform):
        m = Module()
        channels_per_beat = self._channels_per_beat
        engine = self.engine

        credits_pending = Signal(range(self._max_credits + 3))
        credit_take = Signal()
        m.d.sync += credits_pending.eq(credits_pending + self.credit - credit_take)

        # A registered byte in front of the UART keeps valid and payload steady whatever the
        # sources do; ``free`` means the register empties (or is empty) this cycle.
        tx_valid = self.o.valid
        tx_byte = self.o.payload
        free = ~tx_valid | self.o.ready

        ping_rom = Array(Const(b, 8) for b in self._ping_reply)
        ping_idx = Signal(range(len(ping_rom)))

        obuf = Signal(8 * channels_per_beat)
        obytes_left = Signal(range(channels_per_beat + 1))
        obeats_left = Signal(range(self._max_beats + 1))

        m.submodules.crc_out = crc_out = CRC16_XMODEM(data_width=8).create()
        m.d.comb += [crc_out.start.eq(self.begin), crc_out.data.eq(obuf[:8])]
        check = Signal(32)
        check_left = Signal(range(5))

        with m.FSM(name="tx_fsm"):
            with m.State("IDLE"):
                with m.If(free):
                    m.d.sync += tx_valid.eq(0)
                    with m.If(self.reply.valid):
                        m.d.comb += self.reply.ready.eq(1)
                        m.d.sync += [tx_valid.eq(1), tx_byte.eq(self.reply.payload)]
                        with m.If(~self.running):
                            m.d.sync += credits_pending.eq(0)
                        with m.If(self.final):
                            m.d.sync += [check.eq(Cat(self.crc_in, crc_out.crc)),
                                         check_left.eq(4)]
                            m.next = "CHECK"
                    with m.Elif(self.ping.valid):
                        m.d.sync += [tx_valid.eq(1), tx_byte.eq(ping_rom[ping_idx]),
                                     ping_idx.eq(ping_idx + 1)]
                        with m.If(ping_idx == len(ping_rom) - 1):
                            m.d.comb += self.ping.ready.eq(1)
                            m.d.sync += ping_idx.eq(0)
                    with m.Elif(credits_pending != 0):
                        m.d.comb += credit_take.eq(1)
                        m.d.sync += [tx_valid.eq(1), tx_byte.eq(CREDIT)]
                    with m.Elif(self.running & engine.valid):
                        with m.If(self.out_done | self.abort):
                            # Extra beats (flagged by the framing check) and an abandoned
                            # run's output.
                            m.d.comb += engine.ready.eq(1)
                        with m.Else():
                            m.d.sync += [tx_valid.eq(1), tx_byte.eq(PIXEL),
                                         obeats_left.eq(self.out_beats), obytes_left.eq(0)]
                            m.next = "PIXEL"

            with m.State("PIXEL"):
                with m.If(free):
                    m.d.sync += tx_valid.eq(0)
                with m.If(obytes_left == 0):
                    with m.If(obeats_left == 0):
                        m.next = "IDLE"
                    with m.Elif(engine.valid):
                        m.d.comb += engine.ready.eq(1)
                        m.d.sync += [obuf.eq(engine.payload.data),
                                     obytes_left.eq(channels_per_beat),
                                     obeats_left.eq(obeats_left - 1)]
                with m.Elif(free):
                    m.d.comb += crc_out.valid.eq(1)
                    m.d.sync += [tx_valid.eq(1), tx_byte.eq(obuf[:8]),
                                 obuf.eq(obuf >> 8), obytes_left.eq(obytes_left - 1)]

            with m.State("CHECK"):
                with m.If(free):
                    m.d.sync += tx_valid.eq(0)
                    with m.If(check_left == 0):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [tx_valid.eq(1), tx_byte.eq(check[:8]),
                                     check.eq(check >> 8), check_left.eq(check_left - 1)]
        return m
