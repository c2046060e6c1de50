"""Run a design in the Amaranth simulator with a 100 MHz clock, some testbenches, and the
project's waveform switch (``WAVES=1``)."""

from amaranth.sim import Simulator

from testkit.waves import waves

__all__ = ["simulate"]


def simulate(dut, *testbenches, background=(), deadline_cycles=None, name=None):
    """Run ``testbenches`` (async functions of ``ctx``) on ``dut`` until they all return, or for
    ``deadline_cycles`` cycles when given (a stalled design then ends the run instead of hanging
    it); ``background`` testbenches do not keep the simulation going."""
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    for bench in testbenches:
        sim.add_testbench(bench)
    for bench in background:
        sim.add_testbench(bench, background=True)
    with waves(sim, name):
        if deadline_cycles is None:
            sim.run()
        else:
            sim.run_until(1e-8 * deadline_cycles)
