"""The link's command side: PING and RUN commands, run set-up, the final reply, the timeout."""

from amaranth.hdl import Array, Const, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hw.blocks.layouts import start_layout
from hw.board.protocol import (ACK, CMD_PING, CMD_RUN, DONE, ERR_TIMEOUT, ERR_UNKNOWN, NAK,
                               LayerShape)

__all__ = ["CommandDecoder"]


class CommandDecoder(wiring.Component):
    """Decode commands, start the engine and sequence a run until its final reply.

    In its idle state the decoder takes a command byte from ``i``. PING raises ``ping`` until
    the transmitter has sent the reply (no command is taken meanwhile, so no reply lands inside
    it). RUN takes three header bytes, checks them (layer below the table size judged on all
    eight bits, height and width not zero, and equal to the layer's ``in_h`` / ``in_w`` if its
    geometry is fixed) and either replies NAK or latches the run's
    geometry, pulses ``begin``, starts the engine and replies ACK once it accepts the start.
    The run ends when the input is in (``in_done``), the output is out (``out_done``), the
    engine pulsed ``done`` and the ACK has gone: the reply is ``DONE | flags``, or
    ``ERR_TIMEOUT | flags`` after ``abort``. Unknown commands get ``ERR_UNKNOWN``.

    Timeout: while the decoder waits for a header byte, or the packer reports ``starving``,
    ``timeout`` cycles without a byte on ``i`` end the wait: a header is answered with
    ``ERR_TIMEOUT``, a run is marked ``abort`` (the packer then feeds zeros).

    Parameters
    ----------
    layers : sequence of LayerShape
        Per layer index (already checked by :class:`~hw.board.link.HostLink`); 2-tuples
        ``(cin, e)`` are layers of any size.
    channels_per_beat : int
        Channels per engine beat.
    timeout : int
        Cycles without an input byte after which a wait is abandoned, at least 1.

    Members
    -------
    i : ``In(stream.Signature(unsigned(8)))``
        Input bytes; the decoder takes them only between runs. ``valid`` is also watched
        during a run, for the timeout.
    start : ``Out(stream.Signature(start_layout()))``
        To the engine's ``start``.
    reply : ``Out(stream.Signature(unsigned(8)))``
        One-byte replies, to the transmitter.
    final : ``Out(1)``
        With ``reply.valid``: the reply is a run's last byte (DONE or TIMEOUT after an ACK),
        which the check bytes follow.
    command : ``Out(1)``
        The decoder is idle: a byte it takes now is a command (not part of a run).
    ping : ``Out(stream.Signature(unsigned(0)))``
        PING reply wanted, to the transmitter.
    begin : ``Out(1)``
        One-cycle pulse: a RUN header was accepted, ``last_*`` and ``out_beats`` change.
    running, abort : ``Out(1)``
        From the engine's start to the final reply; the run's input timed out.
    last_row, last_col : ``Out(8)``
        Input ``height - 1`` and ``width - 1``.
    out_last_row, out_last_col : ``Out(8)``
        The same for the output (the input's, unless the layer's geometry is fixed).
    in_last_beat : ``Out(range(max input beats))``
    out_beats : ``Out(range(max output beats + 1))``
    out_last_beat : ``Out(range(max output beats))``
        The running layer's geometry, registered.
    starving, in_done, out_done, engine_done : ``In(1)``
        From the packer, the packer, the framing check and the engine.
    framing_error, rx_error, rx_overrun : ``In(1)``
        Pulses that set the DONE flags.

    Latency: a command byte is decoded the cycle after it is taken (it is compared into two
    registers first); ``start.valid`` rises three cycles after the last header byte is taken;
    a reply is queued the cycle its cause is seen. Throughput: one command byte per two cycles
    (the UART delivers one per 10 bit times).

    Raises
    ------
    ValueError
        If ``timeout`` is below 1.
    """

    def __init__(self, layers, channels_per_beat, timeout):
        if not isinstance(timeout, int) or isinstance(timeout, bool):
            raise TypeError(f"Timeout must be a positive integer, not {timeout!r}")
        if timeout < 1:
            raise ValueError(f"Timeout must be a positive integer, not {timeout!r}")
        self._layers = tuple(LayerShape(*layer) for layer in layers)
        self._timeout = timeout
        self._in_beats = [-(-s.cin // channels_per_beat) for s in self._layers]
        self._out_beats = [-(-s.e // channels_per_beat) for s in self._layers]
        max_in, max_out = max(self._in_beats), max(self._out_beats)
        super().__init__({
            "i": In(stream.Signature(unsigned(8))),
            "start": Out(stream.Signature(start_layout())),
            "reply": Out(stream.Signature(unsigned(8))),
            "final": Out(1),
            "command": Out(1),
            "ping": Out(stream.Signature(unsigned(0))),
            "begin": Out(1),
            "running": Out(1),
            "abort": Out(1),
            "last_row": Out(8),
            "last_col": Out(8),
            "out_last_row": Out(8),
            "out_last_col": Out(8),
            "in_last_beat": Out(range(max_in)),
            "out_beats": Out(range(max_out + 1)),
            "out_last_beat": Out(range(max_out)),
            "starving": In(1),
            "in_done": In(1),
            "out_done": In(1),
            "engine_done": In(1),
            "framing_error": In(1),
            "rx_error": In(1),
            "rx_overrun": In(1),
        })

    @property
    def timeout(self):
        """Cycles without an input byte after which a wait is abandoned."""
        return self._timeout

    def elaborate(self, platform):
        m = Module()
        n_layers = len(self._layers)

        start = self.start.payload
        layer_ok = Signal()
        is_ping, is_run = Signal(), Signal()    # the command byte taken in IDLE
        done_seen = Signal()
        flags = Signal(3)           # DONE flags
        running, abort = self.running, self.abort

        starving = Signal()
        m.d.comb += starving.eq(self.starving)
        timed_out = self._silence_timeout(m, starving)

        with m.If(self.reply.ready):
            m.d.sync += self.reply.valid.eq(0)
        with m.If(self.ping.ready):
            m.d.sync += self.ping.valid.eq(0)

        def reply(byte, next_state, final=0):
            m.d.sync += [self.reply.valid.eq(1), self.reply.payload.eq(byte),
                         self.final.eq(final)]
            m.next = next_state

        with m.FSM(name="cmd_fsm"):
            with m.State("IDLE"):
                m.d.comb += [self.i.ready.eq(1), self.command.eq(1)]
                with m.If(self.i.valid):
                    # Only compares reach registers here: the byte comes from the receive
                    # FIFO's block RAM (its output register), and from there through the
                    # state logic into the reply was the 48-lane ECP5 build's critical path.
                    m.d.sync += [is_ping.eq(self.i.payload == CMD_PING),
                                 is_run.eq(self.i.payload == CMD_RUN)]
                    m.next = "DECODE"

            with m.State("DECODE"):
                with m.If(is_ping):
                    m.d.sync += self.ping.valid.eq(1)
                    m.next = "PING"
                with m.Elif(is_run):
                    m.next = "HDR_LAYER"
                with m.Else():
                    reply(ERR_UNKNOWN, "REPLY")

            with m.State("PING"):
                # Hold further commands so that no reply lands inside the PING reply.
                with m.If(~self.ping.valid):
                    m.next = "IDLE"

            for state, field, next_state in (("HDR_LAYER", start.layer, "HDR_HEIGHT"),
                                             ("HDR_HEIGHT", start.height, "HDR_WIDTH"),
                                             ("HDR_WIDTH", start.width, "CHECK")):
                with m.State(state):
                    m.d.comb += [starving.eq(1), self.i.ready.eq(1)]
                    with m.If(self.i.valid):
                        m.d.sync += field.eq(self.i.payload)
                        if state == "HDR_LAYER":
                            # Judged on all 8 bits: 17 must not alias to layer 1.
                            m.d.sync += layer_ok.eq(self.i.payload < n_layers)
                        m.next = next_state
                    with m.Elif(timed_out):
                        reply(ERR_TIMEOUT, "REPLY")

            with m.State("CHECK"):
                size_ok, latch = self._run_geometry(m)
                with m.If(layer_ok & size_ok):
                    m.d.comb += self.begin.eq(1)
                    m.d.sync += [*latch, abort.eq(0), done_seen.eq(0), flags.eq(0)]
                    m.next = "START"
                with m.Else():
                    reply(NAK, "REPLY")

            with m.State("START"):
                m.d.comb += self.start.valid.eq(1)
                with m.If(self.start.ready):
                    m.d.sync += running.eq(1)
                    reply(ACK, "RUN")

            with m.State("RUN"):
                with m.If(timed_out):
                    m.d.sync += abort.eq(1)
                with m.If(self.in_done & self.out_done & done_seen & ~self.reply.valid):
                    m.d.sync += running.eq(0)
                    with m.If(abort):
                        reply(ERR_TIMEOUT | flags, "REPLY", final=1)
                    with m.Else():
                        reply(DONE | flags, "REPLY", final=1)

            with m.State("REPLY"):
                with m.If(~self.reply.valid):
                    m.next = "IDLE"

        self._track_flags(m, done_seen, flags)
        return m

    def _run_geometry(self, m):
        """(the RUN header's height and width are acceptable for its layer, the statements
        that latch the run's geometry), from per-layer tables indexed by ``start.layer``."""
        start = self.start.payload
        layer = start.layer
        max_in, max_out = max(self._in_beats), max(self._out_beats)
        in_last = Array(Const(b - 1, range(max_in)) for b in self._in_beats)
        out_beats = Array(Const(b, range(max_out + 1)) for b in self._out_beats)
        fixed = Array(Const(s.fixed, 1) for s in self._layers)[layer]
        geometry = {name: Array(Const(getattr(s, name), 8) for s in self._layers)[layer]
                    for name in ("in_h", "in_w", "out_h", "out_w")}
        size_ok = Signal()
        m.d.comb += size_ok.eq(Mux(
            fixed,
            (start.height == geometry["in_h"]) & (start.width == geometry["in_w"]),
            (start.height != 0) & (start.width != 0)))
        latch = [
            self.last_row.eq(start.height - 1),
            self.last_col.eq(start.width - 1),
            self.out_last_row.eq(Mux(fixed, geometry["out_h"], start.height) - 1),
            self.out_last_col.eq(Mux(fixed, geometry["out_w"], start.width) - 1),
            self.in_last_beat.eq(in_last[layer]),
            self.out_beats.eq(out_beats[layer]),
            self.out_last_beat.eq(out_beats[layer] - 1),
        ]
        return size_ok, latch

    def _silence_timeout(self, m, starving):
        """Input silence while something waits for a byte; see ``timeout``. Returns the
        condition that ends the wait."""
        silence = Signal(range(self._timeout + 1))
        with m.If(starving & ~self.i.valid):
            m.d.sync += silence.eq(silence + 1)
        with m.Else():
            m.d.sync += silence.eq(0)
        return starving & ~self.i.valid & (silence == self._timeout - 1)

    def _track_flags(self, m, done_seen, flags):
        """The engine's ``done`` and the DONE flags seen during a run."""
        running = self.running
        # Registered first: the engine's done is combinational through its sequencers, and
        # from there into done_seen was an ECP5 critical path (the reply leaves a cycle later).
        engine_done = Signal(name="engine_done_r")
        m.d.sync += engine_done.eq(self.engine_done)
        with m.If(running & engine_done):
            m.d.sync += done_seen.eq(1)
        with m.If(running & self.rx_error):
            m.d.sync += flags[1].eq(1)
        with m.If(running & self.rx_overrun):
            m.d.sync += flags[2].eq(1)
        with m.If(self.framing_error):
            m.d.sync += flags[0].eq(1)
