"""Drive a simulated UART link from the real host driver.

``SimUARTBridge`` is a byte transport (``write`` / ``read`` / ``reset_input_buffer``, the
interface :class:`hw.board.driver.EngineLink` uses) whose other end is a pair of UART pins in an
Amaranth simulation: written bytes are bit-banged onto the design's receive pin, bytes the
design transmits are decoded from its transmit pin. ``read`` advances the simulation until
the bytes are there, so host code runs unchanged and in step with the simulated hardware,
in one thread.

``LinkedEngine`` wires a :class:`hw.board.link.HostLink` to any engine with the Fire engine's ports.

Typical use::

    top = LinkedEngine(HostLink(layers, channels_per_beat, divisor), engine)
    sim = Simulator(top)
    sim.add_clock(1e-6)
    bridge = SimUARTBridge(sim, top.link.rx, top.link.tx, divisor)
    y = EngineLink(bridge).run_layer(0, x)
"""

from collections import deque

from amaranth.hdl import Elaboratable, Module
from amaranth.lib.wiring import connect

__all__ = ["SimUARTBridge", "LinkedEngine"]


class SimUARTBridge:
    """Byte transport to the UART pins of a simulated design (8N1).

    Parameters
    ----------
    sim : amaranth.sim.Simulator
        Not yet started; the bridge adds two background testbenches to it.
    rx : Signal
        The design's receive pin; the bridge drives it (idle high).
    tx : Signal
        The design's transmit pin; the bridge decodes it.
    divisor : int
        Clock cycles per bit, as the design's UART.
    timeout_cycles : int or None
        ``read`` gives up (returns fewer bytes, like a serial port's timeout) after this many
        cycles without a new byte. Default: 4096 byte times, more than an engine's
        fill latency for small test layers.
    gap_cycles : int
        Idle cycles the bridge leaves between the bytes it sends.
    faults : dict or None
        Faults on the wire, ``{(direction, n): (kind, bit)}``: the ``n``-th byte (from 0) sent
        to the design (``"to_link"``) or by it (``"to_host"``) gets bit ``bit`` flipped
        (``"flip"``), is lost (``"drop"``), or (to the link only) is sent with a low stop bit,
        a UART framing error (``"break"``). Each fault happens once.

    Members
    -------
    cycles : int
        Clock cycles simulated so far.
    sent, received : int
        Bytes put on ``rx`` / decoded from ``tx`` so far.
    """

    def __init__(self, sim, rx, tx, divisor, *, timeout_cycles=None, gap_cycles=0, faults=None):
        self._sim = sim
        self._rx = rx
        self._tx = tx
        self._divisor = divisor
        self._gap = gap_cycles
        self._timeout = 4096 * 10 * divisor if timeout_cycles is None else timeout_cycles
        self._to_dut = deque()
        self._from_dut = deque()
        self.cycles = 0
        self.sent = 0
        self.received = 0
        self.faults = dict(faults or {})
        self.injected = []
        sim.add_testbench(self._drive, background=True)
        sim.add_testbench(self._listen, background=True)

    async def _drive(self, ctx):
        ctx.set(self._rx, 1)
        while True:
            if not self._to_dut:
                await ctx.tick()
                self.cycles += 1
                continue
            byte = self._to_dut.popleft()
            kind, flip = self._fault("to_link", self.sent, byte)
            if kind == "drop":
                self.sent += 1
                continue
            byte ^= 1 << flip if kind == "flip" else 0
            for bit in [0, *((byte >> n) & 1 for n in range(8)), int(kind != "break")]:
                ctx.set(self._rx, bit)
                await ctx.tick().repeat(self._divisor)
                self.cycles += self._divisor
            if self._gap:
                await ctx.tick().repeat(self._gap)
                self.cycles += self._gap
            self.sent += 1

    async def _listen(self, ctx):
        divisor = self._divisor
        while True:
            await ctx.negedge(self._tx)
            # The design changes ``tx`` right after a clock edge; from here, half a bit lands
            # in the middle of the start bit and whole bits in the middle of the next ones.
            await ctx.tick().repeat(divisor // 2)
            assert ctx.get(self._tx) == 0, "start bit shorter than half a bit on tx"
            byte = 0
            for n in range(8):
                await ctx.tick().repeat(divisor)
                byte |= ctx.get(self._tx) << n
            await ctx.tick().repeat(divisor)
            assert ctx.get(self._tx) == 1, f"framing error on tx (byte 0x{byte:02X})"
            kind, flip = self._fault("to_host", self.received, byte)
            self.received += 1
            if kind != "drop":
                self._from_dut.append(byte ^ (1 << flip if kind == "flip" else 0))

    def _fault(self, direction, n, byte):
        """(kind, bit) of the fault planned for this byte, or (None, 0); records it."""
        kind, bit = self.faults.pop((direction, n), (None, 0))
        if kind is not None:
            self.injected.append((direction, n, kind, bit, byte))
        return kind, bit

    def write(self, data):
        """Queue ``data`` to be sent; the simulation sends it while :meth:`read` waits."""
        self._to_dut.extend(bytes(data))

    def read(self, n):
        """Run the simulation until ``n`` bytes arrived or the line stayed quiet too long."""
        last_count = len(self._from_dut)
        last_change = self.cycles
        while len(self._from_dut) < n:
            if len(self._from_dut) != last_count:
                last_count = len(self._from_dut)
                last_change = self.cycles
            elif self.cycles - last_change > self._timeout:
                break
            self._sim.advance()
        return bytes(self._from_dut.popleft() for _ in range(min(n, len(self._from_dut))))

    def reset_input_buffer(self):
        """Forget bytes received but not read yet."""
        self._from_dut.clear()

    def run_cycles(self, count):
        """Advance the simulation by at least ``count`` clock cycles."""
        end = self.cycles + count
        while self.cycles < end:
            self._sim.advance()

    @property
    def pending(self):
        """Bytes written but not yet on the line."""
        return len(self._to_dut)


class LinkedEngine(Elaboratable):
    """A :class:`hw.board.link.HostLink` connected to an engine with the Fire engine's ports.

    Parameters
    ----------
    link : HostLink
    engine : wiring.Component
        Has ``start`` / ``i`` stream sinks, an ``o`` stream source and a ``done`` pulse, with
        the payload layouts of :func:`hw.blocks.layouts.start_layout` and
        :func:`hw.blocks.layouts.beat_layout`.
    """

    def __init__(self, link, engine):
        self.link = link
        self.engine = engine

    def elaborate(self, platform):
        m = Module()
        m.submodules.link = self.link
        m.submodules.engine = self.engine
        connect(m, self.link.start, self.engine.start)
        connect(m, self.link.i, self.engine.i)
        connect(m, self.engine.o, self.link.o)
        m.d.comb += self.link.done.eq(self.engine.done)
        return m
