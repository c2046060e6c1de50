# amaranth: UnusedElaboratable=no
"""The host link with a stand-in engine, driven by the real host driver over simulated UART pins.

The runs go ``EngineLink`` -> :class:`testkit.uart_bridge.SimUARTBridge` -> ``HostLink`` ->
:class:`testkit.stand_in_engine.StandInEngine` and back, and compare with the stand-in's NumPy
model. (The linter comment above: parameter-check tests build components only to see them
refused.)
"""

import re

import numpy as np
import pytest

from hw.board.driver import EngineLink, LinkError, LinkInfo
from hw.board.link import HostLink
from hw.board.protocol import (ACK, CMD_RUN, DONE_OVERRUN, ERR_TIMEOUT, ERR_UNKNOWN, LINK_ID,
                               NAK, PIXEL, LayerShape)
from testkit.link_bench import DIVISOR, LAYERS, link_bench, read_until_final
from testkit.stand_in_engine import stand_in_model
from testkit.waves import waves


@pytest.mark.parametrize("kwargs, exc, message", [
    (dict(layers=[]), ValueError, "Layers must hold 1 to 16 (cin, e) pairs, not 0"),
    (dict(layers=[(1, 1)] * 17), ValueError, "Layers must hold 1 to 16 (cin, e) pairs, not 17"),
    (dict(layers=5), TypeError, "Layers must be a sequence of (cin, e) pairs, not 5"),
    (dict(layers=[(1, 2, 3)]), TypeError, "Each layer must be a (cin, e) pair of integers, "
                                          "optionally followed by in_h, in_w, out_h, out_w "
                                          "and a tag, not (1, 2, 3)"),
    (dict(layers=[(1, 2, 5, 5, 0, 3)]), ValueError,
     "A layer's fixed sizes must all be 1 to 255 (or all 0), not (1, 2, 5, 5, 0, 3)"),
    (dict(layers=[(1, 2, 5, 5, 3, 3, 256)]), ValueError,
     "A layer's tag must be 0 to 255, not (1, 2, 5, 5, 3, 3, 256)"),
    (dict(layers=[(0, 2)]), ValueError, "Layer channel counts must be 1 to 65535, not (0, 2)"),
    (dict(channels_per_beat=0), ValueError,
     "Channels per beat must be an integer from 1 to 255, not 0"),
    (dict(channels_per_beat=2.0), TypeError,
     "Channels per beat must be an integer from 1 to 255, not 2.0"),
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
    assert link.ping_reply() == bytes([LINK_ID, 4, 4, 6, 4,
                                       3, 0, 8, 0, 0, 0, 0, 0, 0xFF,
                                       10, 0, 3, 0, 0, 0, 0, 0, 0xFF,
                                       4, 0, 4, 0, 0, 0, 0, 0, 0xFF,
                                       1, 0, 9, 0, 0, 0, 0, 0, 0xFF])


@pytest.mark.parametrize("channels_per_beat, rx_depth, credit_chunk",
                         [(4, 16, 4), (1, 8, 8), (3, 4, 1)])
def test_link_runs_layers(channels_per_beat, rx_depth, credit_chunk, request):
    sim, bridge = link_bench(channels_per_beat=channels_per_beat, rx_depth=rx_depth,
                             credit_chunk=credit_chunk)
    host = EngineLink(bridge, layers=LAYERS)
    rng = np.random.default_rng(channels_per_beat)
    with waves(sim, request.node.name):
        assert host.ping() == LinkInfo(
            channels_per_beat=channels_per_beat, layers=tuple(LAYERS), rx_window=rx_depth,
            credit_chunk=credit_chunk, shapes=tuple(LayerShape(*pair) for pair in LAYERS))
        # Output-bound, input-bound, a single pixel, one input channel, and a repeat.
        for layer, height, width in [(0, 3, 4), (1, 2, 5), (2, 1, 1), (3, 2, 3), (0, 1, 2)]:
            cin, e = LAYERS[layer]
            x = rng.integers(0, 256, (height, width, cin), dtype=np.uint8)
            y = host.run_layer(layer, x)
            assert y.dtype == np.uint8
            np.testing.assert_array_equal(y, stand_in_model(x, e))


def test_link_needs_the_credit_window(request):
    """A host that ignores the window overruns the FIFO; the link gives up and says why."""
    sim, bridge = link_bench(rx_depth=4, credit_chunk=2, timeout=50 * 10 * DIVISOR)
    height, width = 3, 4
    with waves(sim, request.node.name):
        bridge.write([CMD_RUN, 0, height, width])
        assert bridge.read(1) == bytes([ACK])
        bridge.write(bytes(height * width * 4))     # layer 0: 4 bytes in, 1 + 8 out per pixel
        reply = read_until_final(bridge, 8)
    assert reply[-1] == ERR_TIMEOUT | DONE_OVERRUN


def test_link_flags_engine_framing(request):
    sim, bridge = link_bench(engine_kw=dict(drop_last=True))
    host = EngineLink(bridge)
    with waves(sim, request.node.name), pytest.raises(LinkError, match="engine output framing"):
        host.run_layer(2, np.ones((2, 2, 4), dtype=np.uint8))


def test_link_answers_bad_commands(request):
    sim, bridge = link_bench(timeout_cycles=20 * 10 * DIVISOR)
    with waves(sim, request.node.name):
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
    sim, bridge = link_bench(layers=layers)
    host = EngineLink(bridge)
    with waves(sim, request.node.name):
        assert host.ping().layers == tuple(layers)
        bridge.write([CMD_RUN, 16, 1, 1])              # 16 must not alias to layer 0
        assert bridge.read(1) == bytes([NAK])
        x = np.full((1, 1, 16), 7, dtype=np.uint8)
        np.testing.assert_array_equal(host.run_layer(15, x), stand_in_model(x, 1))


def test_link_fixed_geometry(request):
    """A layer of fixed geometry refuses other sizes; its tag is in the PING reply."""
    layers = [(3, 8, 2, 3, 2, 3, 5), (4, 4)]
    sim, bridge = link_bench(layers=layers)
    host = EngineLink(bridge)
    with waves(sim, request.node.name):
        assert host.ping().shapes[0] == LayerShape(3, 8, 2, 3, 2, 3, 5)
        for size in ((3, 2), (2, 2), (1, 3)):
            bridge.write([CMD_RUN, 0, *size])
            assert bridge.read(1) == bytes([NAK]), size
        x = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
        np.testing.assert_array_equal(host.run_layer(0, x), stand_in_model(x, 8))
        x = np.arange(12, dtype=np.uint8).reshape(3, 1, 4)       # any size for layer 1
        np.testing.assert_array_equal(host.run_layer(1, x), stand_in_model(x, 4))


def test_link_times_out_and_recovers(request):
    timeout = 30 * 10 * DIVISOR
    sim, bridge = link_bench(timeout=timeout, timeout_cycles=3 * timeout)
    host = EngineLink(bridge)
    with waves(sim, request.node.name):
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


def test_link_memories():
    """One memory only, the receive FIFO (a buffered FIFO of depth D keeps D - 1 in RAM): the
    board's block-RAM plan counts it."""
    from hw.flow.memories import design_memories
    specs = design_memories(HostLink(LAYERS, 4, DIVISOR, rx_depth=512))
    assert [(s.width, s.depth, s.write_port) for s in specs] == [(8, 511, True)]
