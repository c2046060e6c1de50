"""The host link with a stand-in engine in a simulator, driven through simulated UART pins."""

from amaranth.sim import Simulator

from hw.board.link import HostLink
from hw.board.protocol import CHECK_BYTES, CREDIT, PIXEL
from testkit.stand_in_engine import StandInEngine
from testkit.uart_bridge import LinkedEngine, SimUARTBridge

__all__ = ["DIVISOR", "LAYERS", "link_bench", "read_until_final"]

#: Clock cycles per UART bit in the link tests: the fastest the UART allows.
DIVISOR = 4
#: ``(cin, e)`` per layer: output-bound, input-bound, square, one input channel.
LAYERS = [(3, 8), (10, 3), (4, 4), (1, 9)]


def link_bench(layers=LAYERS, channels_per_beat=4, *, engine_kw=None, timeout_cycles=None,
               **link_kw):
    """Link + stand-in engine in a simulator, with the bridge attached; returns (sim, bridge)."""
    link = HostLink(layers, channels_per_beat, DIVISOR, **link_kw)
    engine = StandInEngine(layers, channels_per_beat, **(engine_kw or {}))
    sim = Simulator(LinkedEngine(link, engine))
    sim.add_clock(1e-6)
    bridge = SimUARTBridge(sim, link.rx, link.tx, DIVISOR, timeout_cycles=timeout_cycles)

    async def watch_framing(ctx):
        await ctx.posedge(engine.bad)
        raise AssertionError("link sent the engine wrong first/last framing")
    sim.add_testbench(watch_framing, background=True)
    return sim, bridge


def read_until_final(bridge, pixel_bytes):
    """Raw bytes from the link up to and including a run's last byte (DONE or TIMEOUT); the
    check bytes after it are read and dropped."""
    got = bytearray()
    while True:
        tag = bridge.read(1)
        assert tag, f"link went quiet after {got.hex()}"
        got += tag
        if tag[0] == PIXEL:
            pixel = bridge.read(pixel_bytes)
            assert len(pixel) == pixel_bytes, f"link went quiet inside a pixel: {got.hex()}"
            got += pixel
        elif tag[0] != CREDIT:
            check = bridge.read(CHECK_BYTES)
            assert len(check) == CHECK_BYTES, "link went quiet before the check bytes"
            return bytes(got)
