"""8N1 UART receiver and transmitter with ``amaranth.lib.stream`` byte ports.

Both blocks run from one clock and take ``divisor`` = clock frequency / baud rate (an integer
number of clock cycles per bit). A byte on the line is a start bit (0), eight data bits LSB
first and one stop bit (1): ten bit periods, so each direction moves at most one byte per
``10 * divisor`` cycles.
"""

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UARTRx", "UARTTx", "UARTTiming", "check_divisor", "BITS_PER_BYTE"]

#: Start bit, eight data bits, stop bit.
BITS_PER_BYTE = 10


def check_divisor(divisor):
    """Validate a clock-cycles-per-bit divisor.

    Four cycles per bit is the least that still leaves the receiver a sample point away from
    both bit edges after its two-flop synchroniser.

    Raises
    ------
    TypeError
        If ``divisor`` is not an integer (``bool`` included).
    ValueError
        If ``divisor`` is below 4.
    """
    if not isinstance(divisor, int) or isinstance(divisor, bool):
        raise TypeError(f"Divisor must be an integer >= 4, not {divisor!r}")
    if divisor < 4:
        raise ValueError(f"Divisor must be an integer >= 4, not {divisor!r}")
    return divisor


class UARTTiming:
    """Bit timing shared by the receiver and the transmitter.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (clock frequency / baud rate), at least 4.

    Raises
    ------
    TypeError, ValueError
        See :func:`check_divisor`.
    """

    def __init__(self, divisor):
        self._divisor = check_divisor(divisor)
        super().__init__()

    @property
    def divisor(self):
        """Clock cycles per bit."""
        return self._divisor

    @property
    def cycles_per_byte(self):
        """Clock cycles per byte on the line."""
        return BITS_PER_BYTE * self._divisor


class UARTRx(UARTTiming, wiring.Component):
    """UART receiver, 8N1.

    The line passes a two-flop synchroniser; a falling edge on an idle line starts a byte. The
    start bit is re-sampled half a bit later (a shorter glitch is ignored), then each data bit
    and the stop bit are sampled once, in the middle of their bit period. A stop bit of 0 is a
    framing error: the byte is discarded, ``error`` pulses and the receiver waits for the line
    to return high (a break does not retrigger it).

    The receiver cannot hold the sender back. The received byte waits on ``o`` until taken;
    if the next byte completes before that, the new byte is dropped and ``overrun`` pulses.

    Parameters and errors: see :class:`UARTTiming` (``divisor``, clock cycles per bit).

    Members
    -------
    rx : ``In(1)``
        Serial line, idle high. Asynchronous to the clock.
    o : ``Out(stream.Signature(unsigned(8)))``
        Received bytes. ``o.valid`` rises ``latency`` cycles after the start bit's falling
        edge (the middle of the stop bit) and stays up until ``o.ready``.
    error : ``Out(1)``
        One-cycle pulse: a byte was discarded because its stop bit was 0.
    overrun : ``Out(1)``
        One-cycle pulse: a byte was dropped because the previous one was still on ``o``.

    Throughput: one byte per ``10 * divisor`` cycles (line rate).
    """

    rx: In(1, init=1)
    o: Out(stream.Signature(unsigned(8)))
    error: Out(1)
    overrun: Out(1)

    @property
    def latency(self):
        """Cycles from the start bit's falling edge on ``rx`` to ``o.valid``.

        Two synchroniser cycles, half a bit to the middle of the start bit, nine bits to the
        middle of the stop bit, one cycle to register the byte.
        """
        return 2 + self._divisor // 2 + 9 * self._divisor + 1

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor

        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)

        timer = Signal(range(divisor))
        bit = Signal(range(8))
        shreg = Signal(8)

        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.FSM(name="rx_fsm"):
            with m.State("IDLE"):
                with m.If(~line):
                    # The first low sample is the edge; its middle is half a bit on.
                    m.d.sync += timer.eq(divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [timer.eq(divisor - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [
                        shreg.eq(Cat(shreg[1:], line)),
                        timer.eq(divisor - 1),
                        bit.eq(bit + 1),
                    ]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):
                    # Back to IDLE in the middle of the stop bit, so that a start bit sent
                    # by a slightly fast transmitter is not missed.
                    with m.If(self.o.valid & ~self.o.ready):
                        # The stream payload must not change under a pending transfer.
                        m.d.comb += self.overrun.eq(1)
                    with m.Else():
                        m.d.sync += [self.o.payload.eq(shreg), self.o.valid.eq(1)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.comb += self.error.eq(1)
                    m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(line):
                    m.next = "IDLE"

        return m


class UARTTx(UARTTiming, wiring.Component):
    """UART transmitter, 8N1.

    ``i.ready`` is high while the transmitter is idle and in the last cycle of a stop bit, so a
    steady stream of bytes goes out back to back with no idle time between stop and start bits.

    Parameters and errors: as :class:`UARTRx`.

    Members
    -------
    i : ``In(stream.Signature(unsigned(8)))``
        Bytes to send. The start bit begins on ``tx`` the cycle after the transfer.
    tx : ``Out(1)``
        Serial line, idle high, driven straight from a flip-flop.

    Latency: 1 cycle from transfer to start bit. Throughput: one byte per ``10 * divisor``
    cycles.
    """

    i: In(stream.Signature(unsigned(8)))
    tx: Out(1, init=1)

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor

        # Bit 0 is on the line; ones shift in behind the stop bit, so an idle register is all
        # ones and the line idles high without a separate mux.
        shreg = Signal(BITS_PER_BYTE, init=(1 << BITS_PER_BYTE) - 1)
        bits_left = Signal(range(BITS_PER_BYTE + 1))
        timer = Signal(range(divisor))

        # ``ready`` is a register, computed from the next state: decoded from the timer, it
        # headed the ECP5 build's critical path (through the link transmitter's choice of what
        # to send into the framing check's counters).
        ready = Signal(init=1)
        bits_next = Signal.like(bits_left)
        timer_next = Signal.like(timer)
        m.d.comb += [
            self.tx.eq(shreg[0]),
            self.i.ready.eq(ready),
            bits_next.eq(bits_left),
            timer_next.eq(timer),
        ]

        with m.If(self.i.valid & self.i.ready):
            m.d.sync += shreg.eq(Cat(0, self.i.payload, 1))
            m.d.comb += [bits_next.eq(BITS_PER_BYTE), timer_next.eq(divisor - 1)]
        with m.Elif(bits_left != 0):
            with m.If(timer != 0):
                m.d.comb += timer_next.eq(timer - 1)
            with m.Else():
                m.d.sync += shreg.eq(Cat(shreg[1:], 1))
                m.d.comb += [bits_next.eq(bits_left - 1), timer_next.eq(divisor - 1)]
        m.d.sync += [
            bits_left.eq(bits_next),
            timer.eq(timer_next),
            ready.eq((bits_next == 0) | ((bits_next == 1) & (timer_next == 0))),
        ]

        return m
