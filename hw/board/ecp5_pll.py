"""ECP5 clock: a clock from an EHXPLLL, the design held in reset (GSR) until the PLL locks.

The ULX3S has a 25 MHz oscillator; the design runs faster. :func:`pll_parameters` finds the
dividers (input divider, feedback divider, output divider) that give the output frequency
exactly within the ECP5 PLL's limits (phase detector 3.125-400 MHz, VCO 400-800 MHz, per the
ECP5 sysCLOCK PLL usage guide), preferring the VCO nearest 600 MHz.

:class:`ECP5PLL` instantiates the PLL with its output as its own feedback (FEEDBK_PATH CLKOP),
gives the output to its parent for the ``sync`` domain, and adds the output's clock
constraint so nextpnr times the design at that frequency. Like Amaranth's own Lattice clock
domain, ``sync`` is reset-less: the global set/reset (SGSR), driven by a two-flip-flop
synchroniser of the PLL's lock, puts every register at its initial value until the clock is
stable.
"""

from amaranth.hdl import Const, Elaboratable, Instance, Module, Signal
from amaranth.lib import io

__all__ = ["pll_parameters", "ECP5PLL"]

_PFD_HZ = (3.125e6, 400e6)
_VCO_HZ = (400e6, 800e6)


def pll_parameters(in_hz, out_hz):
    """``{"CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV"}`` giving exactly ``out_hz`` from ``in_hz``;
    ValueError if no divider set does."""
    best = None
    for clki in range(1, 129):
        pfd = in_hz / clki
        if not _PFD_HZ[0] <= pfd <= _PFD_HZ[1]:
            continue
        for fb in range(1, 81):
            if abs(pfd * fb - out_hz) > 1e-6 * out_hz:
                continue
            for op in range(1, 129):
                vco = out_hz * op
                if _VCO_HZ[0] <= vco <= _VCO_HZ[1]:
                    key = abs(vco - 600e6)
                    if best is None or key < best[0]:
                        best = (key, {"CLKI_DIV": clki, "CLKFB_DIV": fb, "CLKOP_DIV": op})
    if best is None:
        raise ValueError(f"the ECP5 PLL cannot make {out_hz / 1e6:g} MHz from "
                         f"{in_hz / 1e6:g} MHz exactly: choose another clock")
    return best[1]


class ECP5PLL(Elaboratable):
    """A clock at ``out_hz`` from the platform's default clock (see the module docstring), for
    the parent to make its ``sync`` domain from (a reset-less domain: GSR holds every register
    until the PLL locks). No data path: latency and throughput do not apply.

    Members
    -------
    clk : Signal
        The PLL's output.
    """

    def __init__(self, out_hz):
        self.out_hz = out_hz
        self.clk = Signal()

    def elaborate(self, platform):
        m = Module()
        params = pll_parameters(platform.default_clk_frequency, self.out_hz)
        clk_io = platform.request(platform.default_clk, dir="-")
        m.submodules.clk_buffer = clk_buffer = io.Buffer("i", clk_io)
        clk = Signal()
        locked = Signal()
        m.submodules.pll = Instance(
            "EHXPLLL",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_CLKOP_ENABLE="ENABLED",
            p_CLKI_DIV=params["CLKI_DIV"], p_CLKFB_DIV=params["CLKFB_DIV"],
            p_CLKOP_DIV=params["CLKOP_DIV"], p_CLKOP_CPHASE=params["CLKOP_DIV"] // 2 - 1,
            p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            i_CLKI=clk_buffer.i, i_CLKFB=clk, o_CLKOP=clk, i_RST=Const(0), i_STDBY=Const(0),
            i_PHASESEL0=Const(0), i_PHASESEL1=Const(0), i_PHASEDIR=Const(1),
            i_PHASESTEP=Const(1), i_PHASELOADREG=Const(1), i_PLLWAKESYNC=Const(0),
            i_ENCLKOP=Const(0), o_LOCK=locked,
            a_FREQUENCY_PIN_CLKI=f"{platform.default_clk_frequency / 1e6:g}",
            a_FREQUENCY_PIN_CLKOP=f"{self.out_hz / 1e6:g}")
        # GSR is active low: registers sit at their initial values until two clocks after
        # the lock (the synchroniser's flip-flops themselves are outside GSR).
        sync0, sync1 = Signal(), Signal()
        m.submodules += [
            Instance("FD1S3AX", p_GSR="DISABLED", i_CK=clk, i_D=locked, o_Q=sync0),
            Instance("FD1S3AX", p_GSR="DISABLED", i_CK=clk, i_D=sync0, o_Q=sync1),
            Instance("SGSR", i_CLK=clk, i_GSR=sync1),
        ]
        m.d.comb += self.clk.eq(clk)
        platform.add_clock_constraint(clk, self.out_hz)
        return m
