"""Board-level design: an engine behind the UART host link.

:class:`LinkSystem` is platform independent (two UART pins and a busy flag), so synthesis-only
devices and simulation use it directly: :class:`FireSystem` with the Fire engine (any Fire
layer, any size), :class:`NetworkStepSystem` with the network steps a board holds (host-driven
whole network). :class:`BoardTop` puts one on an amaranth-boards platform (its UART and first
LED).
"""

from amaranth.hdl import ClockDomain, ClockSignal, Elaboratable, Module, Shape
from amaranth.lib import io, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out, connect

from hw.board.ecp5_pll import ECP5PLL
from hw.fire.engine import FireEngine
from hw.board.link import HostLink

__all__ = ["LinkSystem", "FireSystem", "NetworkStepSystem", "BoardTop", "DEFAULT_BAUD"]

DEFAULT_BAUD = 115200


class LinkSystem(wiring.Component):
    """An engine behind the host link: run its layers from a PC over a serial line.

    Parameters
    ----------
    engine : wiring.Component
        Has the Fire engine's ``start`` / ``i`` / ``o`` / ``done`` / ``busy`` ports.
    layers : sequence of tuples
        The link's layer table (see :class:`~hw.board.link.HostLink`).
    channels_per_beat : int
    clk_hz : float
        Clock frequency, for the UART divisor.
    baud : int
    timeout : int or None
        The link's input timeout in cycles (default: the link's).

    Members
    -------
    rx : In(1)
    tx : Out(1)
    busy : Out(1)
        A layer run is in progress.
    """

    def __init__(self, engine, layers, *, channels_per_beat, clk_hz, baud=DEFAULT_BAUD,
                 timeout=None):
        self.engine = engine
        divisor = int(round(clk_hz / baud))
        self.link = HostLink(layers, channels_per_beat, divisor, timeout=timeout)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self.engine
        m.submodules.link = link = self.link
        connect(m, link.start, engine.start)
        # A two-beat FIFO each way between the engine and the link. Out: the UART
        # transmitter's ready reached the engine's drainer (through the max-pool)
        # combinationally, the ECP5 critical path of the host-driven design at 74 MHz. In:
        # the patch streamer's ready (a compare of its row count) reached the link's input
        # packer's counters, the 32-lane ULX3S build's critical path at 90.6 MHz. The link
        # sends each run exactly its beats (zeros after an abort), so none is left over.
        self._fifo(m, "in_fifo", link.i, engine.i)
        self._fifo(m, "out_fifo", engine.o, link.o)
        m.d.comb += [
            link.done.eq(engine.done),
            link.rx.eq(self.rx),
            self.tx.eq(link.tx),
            self.busy.eq(engine.busy),
        ]
        return m

    @staticmethod
    def _fifo(m, name, src, dst):
        """``src`` -> a two-beat FIFO -> ``dst`` (streams): every path between them starts or
        ends at a register."""
        width = Shape.cast(src.payload.shape()).width
        m.submodules[name] = fifo = SyncFIFOBuffered(width=width, depth=2)
        m.d.comb += [
            fifo.w_data.eq(src.payload), fifo.w_en.eq(src.valid), src.ready.eq(fifo.w_rdy),
            dst.payload.eq(fifo.r_data), dst.valid.eq(fifo.r_rdy), fifo.r_en.eq(dst.ready),
        ]


class FireSystem(LinkSystem):
    """Fire engine + host link: any Fire layer of ``program``, any size.

    Parameters
    ----------
    program : hw.fire.program.EngineProgram
    lanes, channels_per_beat : int
        Engine parameters (see :class:`~hw.fire.engine.FireEngine`).
    clk_hz, baud :
        As for :class:`LinkSystem`.
    """

    def __init__(self, program, *, lanes, channels_per_beat, clk_hz, baud=DEFAULT_BAUD):
        super().__init__(FireEngine(program, lanes=lanes, channels_per_beat=channels_per_beat),
                         [(f.in_channels, f.out_channels) for f in program.fires],
                         channels_per_beat=channels_per_beat, clk_hz=clk_hz, baud=baud)


class NetworkStepSystem(LinkSystem):
    """Host-driven network: the steps ``steps`` of a network program on a
    :class:`~hw.network.step_engine.StepEngine` behind the host link, each a link layer of
    fixed geometry tagged with its position in the network (what
    :func:`hw.board.network_host.classify_on_board` drives).

    Parameters
    ----------
    program : hw.network.program.NetworkProgram
    steps : sequence of str
        Names of the steps on the board.
    lanes : int
    clk_hz, baud, timeout :
        As for :class:`LinkSystem`.
    arch : hw.arch.Arch, optional
        The engine's datapath (default: the shared-lane engine).
    """

    def __init__(self, program, steps, *, lanes, clk_hz, baud=DEFAULT_BAUD, timeout=None,
                 arch=None):
        from hw.arch import SHARED
        from hw.network.step_engine import StepEngine
        engine = StepEngine(program, steps, lanes=lanes, arch=arch or SHARED)
        names = [s.name for s in program.steps]
        layers = [(*shape, names.index(name))
                  for shape, name in zip(engine.link_layers, engine.step_names)]
        super().__init__(engine, layers, channels_per_beat=program.channels_per_beat,
                         clk_hz=clk_hz, baud=baud, timeout=timeout)


class BoardTop(Elaboratable):
    """A :class:`LinkSystem` on a board: UART 0 to the host, LED 0 lit while a layer runs.

    ``make_system(clk_hz)`` returns the system for the design's clock: ``pll_hz`` if given
    (ECP5: :class:`~hw.board.ecp5_pll.ECP5PLL` makes it from the board's clock), else the
    platform's default clock.
    """

    def __init__(self, make_system, pll_hz=None):
        self._make_system = make_system
        self._pll_hz = pll_hz

    def elaborate(self, platform):
        m = Module()
        clk_hz = platform.default_clk_frequency
        if self._pll_hz:
            if getattr(platform, "family", None) != "ecp5":
                raise ValueError("a PLL clock (pll_hz) is only made on ECP5 boards")
            m.submodules.clock = pll = ECP5PLL(self._pll_hz)
            m.domains.sync = ClockDomain("sync", reset_less=True)
            m.d.comb += ClockSignal("sync").eq(pll.clk)
            clk_hz = self._pll_hz
        m.submodules.system = system = self._make_system(clk_hz)
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
