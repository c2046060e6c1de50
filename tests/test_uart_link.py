# amaranth: UnusedElaboratable=no
"""UART, host link and host driver, in the Amaranth simulator.

The link tests run the real host driver (``hw.host.EngineLink``) against ``HostLink`` through
``uart_bridge.SimUARTBridge``, with ``StandInEngine`` below in place of the Fire engine: same
ports, a simple known function of each pixel, random stalls, and a few pixels of latency so
that input runs ahead of output as it does in the real engine.

Waveforms: set ``SQUEEZEFIRE_VCD`` to a directory to get one ``.vcd`` per test.

(The linter comment above: parameter-check tests build components only to see them refused.)
"""

import contextlib
import os
import re
import select
import threading
import time

import numpy as np
import pytest
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from hw.host import EngineLink, LinkError, LinkInfo, LinkTimeout, SerialTransport, main
from hw.board.link import (ACK, CMD_PING, CMD_RUN, CREDIT, DONE, DONE_OVERRUN,
                     ERR_TIMEOUT, ERR_UNKNOWN, LINK_ID, NAK, PIXEL, HostLink, beat_layout,
                     start_layout)
from hw.board.uart import UARTRx, UARTTx
from testkit.uart_bridge import LinkedEngine, SimUARTBridge

DIVISOR = 4
LAYERS = [(3, 8), (10, 3), (4, 4), (1, 9)]


@contextlib.contextmanager
def waves(sim, request):
    directory = os.environ.get("SQUEEZEFIRE_VCD")
    if not directory:
        yield
        return
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    with sim.write_vcd(os.path.join(directory, f"{name}.vcd")):
        yield


# --- stand-in engine --------------------------------------------------------------------------

def stand_in_model(x, e):
    """What ``StandInEngine`` outputs for input ``x`` (height, width, cin)."""
    cin = x.shape[2]
    s = (x.astype(np.int64) * np.arange(1, cin + 1)).sum(axis=2)[..., None] & 0xFFFF
    j = np.arange(e)
    return ((s + (j + 1) * (s >> 8) + 3 * j) & 0xFF).astype(np.uint8)


class StandInEngine(wiring.Component):
    """The Fire engine's ports around :func:`stand_in_model`.

    Per pixel it forms ``s = sum((c + 1) * x[c]) mod 2**16`` over the input channels and
    outputs ``y[j] = (s + (j + 1) * (s >> 8) + 3 * j) mod 256`` for ``j < e``, zero in the
    padding channels_per_beat. It holds ``lag`` pixels before answering (until the input ends), takes
    input on about 3 cycles in 4 and starts output beats on about 3 cycles in 4.
    ``bad`` rises and stays high if the input ``first`` / ``last`` framing is wrong.
    ``drop_last`` makes it omit ``last`` on its output, for the link's framing check.
    """

    def __init__(self, layers, channels_per_beat, *, lag=3, drop_last=False):
        self._layers = list(layers)
        self._channels_per_beat = channels_per_beat
        self._lag = lag
        self._drop_last = drop_last
        super().__init__({
            "start": In(stream.Signature(start_layout())),
            "i": In(stream.Signature(beat_layout(channels_per_beat))),
            "o": Out(stream.Signature(beat_layout(channels_per_beat))),
            "done": Out(1),
            "bad": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        channels_per_beat = self._channels_per_beat
        in_beats = [-(-cin // channels_per_beat) for cin, _ in self._layers]
        out_beats = [-(-e // channels_per_beat) for _, e in self._layers]
        in_last_tab = Array(Const(b - 1, range(max(in_beats))) for b in in_beats)
        out_last_tab = Array(Const(b - 1, range(max(out_beats))) for b in out_beats)
        e_tab = Array(Const(e, 16) for _, e in self._layers)

        lfsr = Signal(16, init=0xACE1)
        m.d.sync += lfsr.eq(Cat(lfsr[1:], lfsr[0] ^ lfsr[2] ^ lfsr[3] ^ lfsr[5]))

        running = Signal()
        in_done = Signal()
        pixels = Signal(16)
        e = Signal(16)
        in_last = Signal(range(max(in_beats)))
        out_last = Signal(range(max(out_beats)))
        ipix = Signal(16)
        ibeat = Signal(range(max(in_beats)))
        acc = Signal(16)
        opix = Signal(16)
        obeat = Signal(range(max(out_beats)))
        cur = Signal(16)
        have = Signal()

        m.submodules.sums = sums = SyncFIFOBuffered(width=16, depth=self._lag + 1)

        m.d.comb += self.start.ready.eq(~running)
        with m.If(self.start.valid & self.start.ready):
            p = self.start.payload
            m.d.sync += [
                running.eq(1), in_done.eq(0), have.eq(0),
                pixels.eq(p.height * p.width), e.eq(e_tab[p.layer]),
                in_last.eq(in_last_tab[p.layer]), out_last.eq(out_last_tab[p.layer]),
                ipix.eq(0), ibeat.eq(0), acc.eq(0), opix.eq(0), obeat.eq(0),
            ]

        lane = [self.i.payload.data[n] for n in range(channels_per_beat)]
        plain = sum(lane)
        weighted = sum(v * (n + 1) for n, v in enumerate(lane))
        acc_next = (acc + weighted + ibeat * channels_per_beat * plain)[:16]
        last_beat = ibeat == in_last
        exp_first = (ipix == 0) & (ibeat == 0)
        exp_last = (ipix == pixels - 1) & last_beat
        m.d.comb += self.i.ready.eq(running & ~in_done & sums.w_rdy & (lfsr[0] | lfsr[1]))
        with m.If(self.i.valid & self.i.ready):
            with m.If((self.i.payload.first != exp_first) | (self.i.payload.last != exp_last)):
                m.d.sync += self.bad.eq(1)
            with m.If(last_beat):
                m.d.comb += [sums.w_en.eq(1), sums.w_data.eq(acc_next)]
                m.d.sync += [acc.eq(0), ibeat.eq(0), ipix.eq(ipix + 1)]
                with m.If(ipix == pixels - 1):
                    m.d.sync += in_done.eq(1)
            with m.Else():
                m.d.sync += [acc.eq(acc_next), ibeat.eq(ibeat + 1)]

        with m.If(~have & sums.r_rdy & ((sums.level > self._lag) | in_done)):
            m.d.comb += sums.r_en.eq(1)
            m.d.sync += [cur.eq(sums.r_data), have.eq(1), obeat.eq(0)]

        m.d.sync += self.done.eq(0)
        with m.If(have & ~self.o.valid & (lfsr[2] | lfsr[3])):
            for n in range(channels_per_beat):
                j = obeat * channels_per_beat + n
                value = (cur + (j + 1) * cur[8:] + 3 * j)[:8]
                m.d.sync += self.o.payload.data[n].eq(Mux(j < e, value, 0))
            last = (opix == pixels - 1) & (obeat == out_last)
            m.d.sync += [
                self.o.valid.eq(1),
                self.o.payload.first.eq((opix == 0) & (obeat == 0)),
                self.o.payload.last.eq(last if not self._drop_last else 0),
            ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
            with m.If(obeat == out_last):
                m.d.sync += [have.eq(0), opix.eq(opix + 1)]
                with m.If(opix == pixels - 1):
                    m.d.sync += [running.eq(0), self.done.eq(1)]
            with m.Else():
                m.d.sync += obeat.eq(obeat + 1)
        return m


def make_bench(layers=LAYERS, channels_per_beat=4, *, engine_kw=None, timeout_cycles=None, **link_kw):
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
    """Raw bytes from the link up to and including a run's last byte (DONE or TIMEOUT)."""
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
            return bytes(got)


# --- UART ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [UARTRx, UARTTx])
@pytest.mark.parametrize("bad, exc", [(3, ValueError), (0, ValueError), (-8, ValueError),
                                      (4.0, TypeError), ("8", TypeError), (True, TypeError)])
def test_uart_divisor_is_checked(cls, bad, exc):
    with pytest.raises(exc, match=re.escape(f"Divisor must be an integer >= 4, not {bad!r}")):
        cls(bad)


def loopback(divisor):
    m = Module()
    m.submodules.tx = tx = UARTTx(divisor)
    m.submodules.rx = rx = UARTRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    sim = Simulator(m)
    sim.add_clock(1e-6)
    return sim, tx, rx


def watch_rx_errors(sim, rx):
    async def watch(ctx):
        async for _, _, error, overrun in ctx.tick().sample(rx.error, rx.overrun):
            assert not error, "framing error"
            assert not overrun, "overrun"
    sim.add_testbench(watch, background=True)


@pytest.mark.parametrize("divisor", [4, 5, 7, 16])
def test_uart_round_trip(divisor, request):
    rng = np.random.default_rng(divisor)
    data = [int(v) for v in rng.integers(0, 256, 48)]
    sim, tx, rx = loopback(divisor)
    watch_rx_errors(sim, rx)
    received = []

    async def producer(ctx):
        for byte in data:
            await ctx.tick().repeat(int(rng.integers(0, 3)) * int(rng.integers(0, 3 * divisor)) + 1)
            ctx.set(tx.i.payload, byte)
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
            ctx.set(tx.i.valid, 0)

    async def consumer(ctx):
        while len(received) < len(data):
            # Late, but never later than the next byte: the receiver cannot be stalled.
            await ctx.tick().repeat(int(rng.integers(1, 4 * divisor)))
            ctx.set(rx.o.ready, 1)
            payload, = await ctx.tick().sample(rx.o.payload).until(rx.o.valid)
            ctx.set(rx.o.ready, 0)
            received.append(payload)

    sim.add_testbench(producer)
    sim.add_testbench(consumer)
    with waves(sim, request):
        sim.run()
    assert received == data


@pytest.mark.parametrize("divisor", [4, 9])
def test_uart_timing(divisor, request):
    """Back-to-back bytes are exactly 10 bits apart; RX latency matches its property."""
    sim, tx, rx = loopback(divisor)
    watch_rx_errors(sim, rx)
    transfers, arrivals = [], []

    async def producer(ctx):
        ctx.set(tx.i.valid, 1)
        cycle = 0
        for byte in (0x00, 0xFF, 0x5A, 0x81):
            ctx.set(tx.i.payload, byte)
            while True:
                _, _, ready = await ctx.tick().sample(tx.i.ready)
                cycle += 1
                if ready:
                    break
            transfers.append(cycle)
        ctx.set(tx.i.valid, 0)
        await ctx.tick().repeat(12 * divisor)

    async def consumer(ctx):
        ctx.set(rx.o.ready, 1)
        cycle = 0
        async for _, _, valid, payload in ctx.tick().sample(rx.o.valid, rx.o.payload):
            cycle += 1
            if valid:
                arrivals.append((cycle, payload))

    sim.add_testbench(producer)
    sim.add_testbench(consumer, background=True)
    with waves(sim, request):
        sim.run()
    assert [p for _, p in arrivals] == [0x00, 0xFF, 0x5A, 0x81]
    assert np.diff(transfers).tolist() == [tx.cycles_per_byte] * 3
    # The start bit goes out at the transfer's clock edge and ``o.valid`` rises ``latency``
    # edges later; sampling at an edge sees the value from before it, hence the + 1.
    latency = rx.latency
    assert [a - t for t, (a, _) in zip(transfers, arrivals)] == [latency + 1] * 4


def bitbang(ctx, pin, divisor):
    async def send(byte, stop=1, hold_low_bits=0):
        for bit in [0, *((byte >> n) & 1 for n in range(8)), stop]:
            ctx.set(pin, bit)
            await ctx.tick().repeat(divisor)
        if hold_low_bits:
            await ctx.tick().repeat(hold_low_bits * divisor)
        ctx.set(pin, 1)
        await ctx.tick().repeat(2 * divisor)
    return send


@pytest.mark.parametrize("divisor", [4, 6])
def test_uart_rx_framing_error(divisor, request):
    dut = UARTRx(divisor)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    events = []

    async def watch(ctx):
        ctx.set(dut.o.ready, 1)
        async for _, _, valid, payload, error in ctx.tick().sample(dut.o.valid, dut.o.payload,
                                                                    dut.error):
            if valid:
                events.append(("byte", payload))
            if error:
                events.append(("error",))

    async def bench(ctx):
        send = bitbang(ctx, dut.rx, divisor)
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(3)
        await send(0x55, stop=0)                   # framing error
        await send(0x0F, stop=0, hold_low_bits=3)  # a break must not retrigger the receiver
        # A glitch shorter than half a bit is no start bit.
        ctx.set(dut.rx, 0)
        await ctx.tick().repeat(divisor // 2 - 1)
        ctx.set(dut.rx, 1)
        await ctx.tick().repeat(12 * divisor)
        await send(0xA3)
        await ctx.tick().repeat(2 * divisor)

    sim.add_testbench(watch, background=True)
    sim.add_testbench(bench)
    with waves(sim, request):
        sim.run()
    assert events == [("error",), ("error",), ("byte", 0xA3)]


def test_uart_rx_overrun():
    dut = UARTRx(4)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    overruns = []

    async def watch(ctx):
        async for _, _, overrun in ctx.tick().sample(dut.overrun):
            if overrun:
                overruns.append(1)

    async def bench(ctx):
        send = bitbang(ctx, dut.rx, 4)
        ctx.set(dut.rx, 1)
        await send(0x11)
        await send(0x22)                            # nobody took 0x11: 0x22 is lost
        assert ctx.get(dut.o.valid) and ctx.get(dut.o.payload) == 0x11
        ctx.set(dut.o.ready, 1)
        await ctx.tick()
        ctx.set(dut.o.ready, 0)
        await send(0x33)
        assert ctx.get(dut.o.valid) and ctx.get(dut.o.payload) == 0x33

    sim.add_testbench(watch, background=True)
    sim.add_testbench(bench)
    sim.run()
    assert overruns == [1]


# --- HostLink parameters ------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(layers=[]), ValueError, "Layers must hold 1 to 16 (cin, e) pairs, not 0"),
    (dict(layers=[(1, 1)] * 17), ValueError, "Layers must hold 1 to 16 (cin, e) pairs, not 17"),
    (dict(layers=5), TypeError, "Layers must be a sequence of (cin, e) pairs, not 5"),
    (dict(layers=[(1, 2, 3)]), TypeError, "Each layer must be a (cin, e) pair of integers, "
                                          "not (1, 2, 3)"),
    (dict(layers=[(0, 2)]), ValueError, "Layer channel counts must be 1 to 65535, not (0, 2)"),
    (dict(channels_per_beat=0), ValueError, "Channels per beat must be an integer from 1 to 255, not 0"),
    (dict(channels_per_beat=2.0), TypeError, "Channels per beat must be an integer from 1 to 255, not 2.0"),
    (dict(divisor=2), ValueError, "Divisor must be an integer >= 4, not 2"),
    (dict(rx_depth=24), ValueError, "Receive depth must be a power of two from 4 to 32768, "
                                    "not 24"),
    (dict(rx_depth="8"), TypeError, "Receive depth must be a power of two from 4 to 32768, "
                                    "not '8'"),
    (dict(credit_chunk=32, rx_depth=16), ValueError, "Credit chunk must be a power of two no "
                                                     "larger than the receive depth, not 32"),
    (dict(credit_chunk=3), ValueError, "Credit chunk must be a power of two no larger than "
                                       "the receive depth, not 3"),
    (dict(timeout=39), ValueError, "Timeout must be at least one byte time (40 cycles), not 39"),
    (dict(timeout=1e6), TypeError, "Timeout must be an integer number of cycles, not 1000000.0"),
])
def test_link_parameters_are_checked(kwargs, exc, message):
    args = dict(layers=LAYERS, channels_per_beat=4, divisor=4) | kwargs
    with pytest.raises(exc, match=re.escape(message)):
        HostLink(args.pop("layers"), args.pop("channels_per_beat"), args.pop("divisor"), **args)


def test_link_properties():
    link = HostLink(LAYERS, 4, 10, rx_depth=64)
    assert (link.credit_chunk, link.cycles_per_byte, link.timeout) == (16, 100, 16384 * 100)
    assert [link.in_beats(n) for n in range(4)] == [1, 3, 1, 1]
    assert [link.out_beats(n) for n in range(4)] == [2, 1, 1, 3]
    assert link.ping_reply() == bytes([LINK_ID, 4, 4, 6, 4, 3, 0, 8, 0, 10, 0, 3, 0,
                                       4, 0, 4, 0, 1, 0, 9, 0])


# --- HostLink end to end with the host driver ---------------------------------------------------

@pytest.mark.parametrize("channels_per_beat, rx_depth, credit_chunk", [(4, 16, 4), (1, 8, 8), (3, 4, 1)])
def test_link_runs_layers(channels_per_beat, rx_depth, credit_chunk, request):
    sim, bridge = make_bench(channels_per_beat=channels_per_beat, rx_depth=rx_depth, credit_chunk=credit_chunk)
    host = EngineLink(bridge, layers=LAYERS)
    rng = np.random.default_rng(channels_per_beat)
    with waves(sim, request):
        assert host.ping() == LinkInfo(channels_per_beat=channels_per_beat, layers=tuple(LAYERS),
                                       rx_window=rx_depth, credit_chunk=credit_chunk)
        # Output-bound, input-bound, a single pixel, one input channel, and a repeat.
        for layer, height, width in [(0, 3, 4), (1, 2, 5), (2, 1, 1), (3, 2, 3), (0, 1, 2)]:
            cin, e = LAYERS[layer]
            x = rng.integers(0, 256, (height, width, cin), dtype=np.uint8)
            y = host.run_layer(layer, x)
            assert y.dtype == np.uint8
            np.testing.assert_array_equal(y, stand_in_model(x, e))


def test_link_needs_the_credit_window(request):
    """A host that ignores the window overruns the FIFO; the link gives up and says why."""
    sim, bridge = make_bench(rx_depth=4, credit_chunk=2, timeout=50 * 10 * DIVISOR)
    height, width = 3, 4
    with waves(sim, request):
        bridge.write([CMD_RUN, 0, height, width])
        assert bridge.read(1) == bytes([ACK])
        bridge.write(bytes(height * width * 4))     # layer 0: 4 bytes in, 1 + 8 out per pixel
        reply = read_until_final(bridge, 8)
    assert reply[-1] == ERR_TIMEOUT | DONE_OVERRUN


def test_link_flags_engine_framing(request):
    sim, bridge = make_bench(engine_kw=dict(drop_last=True))
    host = EngineLink(bridge)
    with waves(sim, request), pytest.raises(LinkError, match="engine output framing"):
        host.run_layer(2, np.ones((2, 2, 4), dtype=np.uint8))


def test_link_answers_bad_commands(request):
    sim, bridge = make_bench(timeout_cycles=20 * 10 * DIVISOR)
    with waves(sim, request):
        for command in ([0x7F], [CMD_RUN, 4, 1, 1], [CMD_RUN, 0x11, 1, 1],
                        [CMD_RUN, 0, 0, 1], [CMD_RUN, 0, 1, 0]):
            bridge.write(command)
            expected = ERR_UNKNOWN if len(command) == 1 else NAK
            assert bridge.read(1) == bytes([expected]), command
        # Nothing more, and still in step: a run works afterwards.
        x = np.arange(8, dtype=np.uint8).reshape(1, 2, 4)
        np.testing.assert_array_equal(EngineLink(bridge).run_layer(2, x), stand_in_model(x, 4))


def test_link_full_layer_table(request):
    layers = [(n + 1, 16 - n) for n in range(16)]
    sim, bridge = make_bench(layers=layers)
    host = EngineLink(bridge)
    with waves(sim, request):
        assert host.ping().layers == tuple(layers)
        bridge.write([CMD_RUN, 16, 1, 1])              # 16 must not alias to layer 0
        assert bridge.read(1) == bytes([NAK])
        x = np.full((1, 1, 16), 7, dtype=np.uint8)
        np.testing.assert_array_equal(host.run_layer(15, x), stand_in_model(x, 1))


def test_link_times_out_and_recovers(request):
    timeout = 30 * 10 * DIVISOR
    sim, bridge = make_bench(timeout=timeout, timeout_cycles=3 * timeout)
    host = EngineLink(bridge)
    with waves(sim, request):
        # Half a header, then silence.
        bridge.write([CMD_RUN, 1])
        assert bridge.read(1) == bytes([ERR_TIMEOUT])
        # Less than half the input, then silence: the run is abandoned, its output dropped.
        bridge.write([CMD_RUN, 1, 3, 3])
        assert bridge.read(1) == bytes([ACK])
        bridge.write(bytes(4 * 12))
        reply = read_until_final(bridge, 4)
        assert reply[-1] == ERR_TIMEOUT
        assert reply.count(PIXEL) < 4
        # Back in step.
        assert host.ping().channels_per_beat == 4
        x = np.arange(10, dtype=np.uint8).reshape(1, 1, 10)
        np.testing.assert_array_equal(host.run_layer(1, x), stand_in_model(x, 3))


# --- host driver without hardware ---------------------------------------------------------------

class ScriptedTransport:
    """Answers with fixed bytes; records what the host wrote."""

    def __init__(self, answer):
        self.answer = bytearray(answer)
        self.written = bytearray()

    def write(self, data):
        self.written += data

    def read(self, n):
        data, self.answer = bytes(self.answer[:n]), self.answer[n:]
        return data


PING_REPLY = HostLink(LAYERS, 4, DIVISOR, rx_depth=16).ping_reply()


def test_host_checks_input_before_sending():
    transport = ScriptedTransport(PING_REPLY)
    host = EngineLink(transport)
    host.ping()
    with pytest.raises(ValueError, match=re.escape("Input of layer 1 must have shape "
                                                   "(height, width, 10), not (2, 2, 3)")):
        host.run_layer(1, np.zeros((2, 2, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=re.escape("Layer must be 0 to 3, not 4")):
        host.run_layer(4, np.zeros((2, 2, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=re.escape("Height and width must be 1 to 255")):
        host.run_layer(0, np.zeros((256, 1, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match=re.escape("Input must hold integers 0..255, not -1..5")):
        host.run_layer(0, np.array([[[-1, 0, 5]]], dtype=np.int16))
    with pytest.raises(TypeError, match="Input must hold integers 0..255, not float64"):
        host.run_layer(0, np.zeros((1, 1, 3)))
    assert transport.written == bytes([CMD_PING])


def test_host_protocol_errors():
    with pytest.raises(LinkTimeout, match="PING reply"):
        EngineLink(ScriptedTransport(PING_REPLY[:3])).ping()
    with pytest.raises(LinkError, match="not a Fire engine link: PING answered 0x41"):
        EngineLink(ScriptedTransport(b"AAAAA")).ping()
    with pytest.raises(LinkError, match="link runs layers"):
        EngineLink(ScriptedTransport(PING_REPLY), layers=[(3, 8)]).ping()
    x = np.zeros((1, 1, 3), dtype=np.uint8)
    with pytest.raises(LinkError, match="link refused layer 0 of 1x1"):
        EngineLink(ScriptedTransport(PING_REPLY + bytes([NAK]))).run_layer(0, x)
    with pytest.raises(LinkTimeout, match="link abandoned layer 0"):
        EngineLink(ScriptedTransport(PING_REPLY + bytes([ACK, ERR_TIMEOUT]))).run_layer(0, x)
    with pytest.raises(LinkError, match="unexpected byte 0x55"):
        EngineLink(ScriptedTransport(PING_REPLY + bytes([ACK, 0x55]))).run_layer(0, x)
    with pytest.raises(LinkError, match="finished after 0 of 1 pixels"):
        EngineLink(ScriptedTransport(PING_REPLY + bytes([ACK, DONE]))).run_layer(0, x)
    with pytest.raises(LinkTimeout, match="pixel 0 of layer 0"):
        EngineLink(ScriptedTransport(PING_REPLY + bytes([ACK, PIXEL, 1, 2]))).run_layer(0, x)


# --- serial transport and command line ----------------------------------------------------------

@pytest.fixture
def pty_pair():
    master, slave = os.openpty()
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def read_master(master, n, timeout=1.0):
    data = b""
    while len(data) < n and select.select([master], [], [], timeout)[0]:
        data += os.read(master, n - len(data))
    return data


def answer_ping(master, reply):
    def serve():
        if read_master(master, 1) == bytes([CMD_PING]):
            os.write(master, reply)
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def test_serial_transport_on_a_pty(pty_pair):
    master, name = pty_pair
    with SerialTransport(name, 115200, timeout=0.2) as port:
        os.write(master, b"stale")
        time.sleep(0.05)                                   # the pty delivers asynchronously
        port.reset_input_buffer()
        port.write(b"\x00\xffabc\n")
        assert read_master(master, 6) == b"\x00\xffabc\n"    # raw: nothing added or mangled
        os.write(master, b"\r\n\x03\x11\x13")
        assert port.read(5) == b"\r\n\x03\x11\x13"
        assert port.read(1) == b""                         # timeout


def test_cli_ping(pty_pair, capsys):
    master, name = pty_pair
    thread = answer_ping(master, PING_REPLY)
    assert main(["--port", name, "--timeout", "1", "ping"]) == 0
    thread.join(1)
    out = capsys.readouterr().out
    assert "4 channels per beat, 4 layers, window 16 B, credit 4 B" in out
    assert "layer 1: cin 10, e 3" in out


def cli_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_cli_errors(pty_pair, tmp_path, capsys):
    assert "no serial port /nonexistent/ttyUSB9" in cli_error(
        capsys, ["--port", "/nonexistent/ttyUSB9", "ping"])
    master, name = pty_pair
    assert "not supported" in cli_error(capsys, ["--port", name, "--baud", "123", "ping"])
    for content in (None, b"not numpy"):
        path = tmp_path / "x.npy"
        if content is not None:
            path.write_bytes(content)
        assert "cannot read input" in cli_error(
            capsys, ["--port", name, "run", "--layer", "0", "--input", str(path),
                     "--output", str(tmp_path / "y.npy")])
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((2, 2, 5), dtype=np.uint8))
    answer_ping(master, PING_REPLY)
    assert "must have shape (height, width, 3)" in cli_error(
        capsys, ["--port", name, "--timeout", "1", "run", "--layer", "0", "--input", str(wrong),
                 "--output", str(tmp_path / "y.npy")])
    assert not (tmp_path / "y.npy").exists()


def test_cli_timeout(pty_pair, capsys):
    _, name = pty_pair
    err = cli_error(capsys, ["--port", name, "--timeout", "0.1", "ping"])
    assert err.startswith("error: timeout: timed out waiting for the PING reply")
