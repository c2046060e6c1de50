"""Board-level design: the Fire engine behind the UART host link.

:class:`FireSystem` is platform independent (two UART pins and a busy flag), so synthesis-only
devices and simulation use it directly; :class:`BoardTop` puts it on an amaranth-boards
platform (its UART and first LED).
"""

from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io, wiring
from amaranth.lib.wiring import In, Out, connect

from hw.fire.engine import FireEngine
from hw.board.link import HostLink

__all__ = ["FireSystem", "BoardTop", "DEFAULT_BAUD"]

DEFAULT_BAUD = 115200


class FireSystem(wiring.Component):
    """Engine + host link: run any Fire layer of ``program`` from a PC over a serial line.

    Parameters
    ----------
    program : hw.fire.program.EngineProgram
    lanes, channels_per_beat : int
        Engine parameters (see :class:`~hw.fire.engine.FireEngine`).
    clk_hz : float
        Clock frequency, for the UART divisor.
    baud : int

    Members
    -------
    rx : In(1)
    tx : Out(1)
    busy : Out(1)
        A layer run is in progress.
    """

    def __init__(self, program, *, lanes, channels_per_beat, clk_hz, baud=DEFAULT_BAUD):
        self.engine = FireEngine(program, lanes=lanes, channels_per_beat=channels_per_beat)
        divisor = int(round(clk_hz / baud))
        self.link = HostLink([(f.in_channels, f.out_channels) for f in program.fires],
                             channels_per_beat, divisor)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self.engine
        m.submodules.link = link = self.link
        connect(m, link.start, engine.start)
        connect(m, link.i, engine.i)
        connect(m, engine.o, link.o)
        m.d.comb += [
            link.done.eq(engine.done),
            link.rx.eq(self.rx),
            self.tx.eq(link.tx),
            self.busy.eq(engine.busy),
        ]
        return m


class BoardTop(Elaboratable):
    """:class:`FireSystem` on a board: UART 0 to the host, LED 0 lit while a layer runs."""

    def __init__(self, program, *, lanes, channels_per_beat, baud=DEFAULT_BAUD):
        self._args = dict(program=program, lanes=lanes, channels_per_beat=channels_per_beat,
                          baud=baud)

    def elaborate(self, platform):
        m = Module()
        m.submodules.system = system = FireSystem(clk_hz=platform.default_clk_frequency,
                                                  **self._args)
        # Raw pins for every subsignal (some boards add rts/dtr), buffered below.
        resource = platform.lookup("uart", 0)
        uart = platform.request("uart", 0, dir={io.name: "-" for io in resource.ios})
        m.submodules.rx_buffer = rx = io.Buffer("i", uart.rx)
        m.submodules.tx_buffer = tx = io.Buffer("o", uart.tx)
        m.d.comb += [system.rx.eq(rx.i), tx.o.eq(system.tx)]
        if "uart_tx_enable" in {r.name for r in platform.resources.values()}:
            # ULX3S: the FTDI only listens to the FPGA's TX while this is high.
            enable = platform.request("uart_tx_enable", 0, dir="-")
            m.submodules.tx_enable = en = io.Buffer("o", enable)
            m.d.comb += en.o.eq(1)
        led = platform.request("led", 0, dir="-")
        m.submodules.led = led_buffer = io.Buffer("o", led)
        m.d.comb += led_buffer.o.eq(system.busy)
        return m
