# amaranth: UnusedElaboratable=no
"""Host-driven whole network, end to end in the Amaranth simulator through the UART pins.

The real host code (:func:`hw.board.network_host.classify_on_board` and
:class:`hw.board.driver.EngineLink`) drives a :class:`hw.board.top.NetworkStepSystem` (the
steps a board holds on a StepEngine behind the link) over
:class:`testkit.uart_bridge.SimUARTBridge`, which can flip, drop or break bytes on the wire. The
sums must equal ``golden.fixed`` whichever steps the board holds and whatever the wire does:
every fault is detected (link flags, check values, timeouts) and the layer run again.
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hw.board.driver import EngineLink, LinkError
from hw.board.network_host import classify_on_board, network_steps
from hw.board.top import NetworkStepSystem
from hw.network.program import NetworkProgram
from testkit.networks import random_model, tiny_network
from testkit.uart_bridge import SimUARTBridge

DIVISOR = 4
BYTE = 10 * DIVISOR
SIZE = 15            # conv1 3x3/2 -> 7x7, pool -> 3x3; fire2, fire3 3x3; conv10 pad 1 -> 5x5


@pytest.fixture(scope="module")
def network():
    rng = np.random.default_rng(21)
    model = random_model(rng, tiny_network(conv1=(6, 3, 2), fires=((3, 4, 4), (4, 5, 5)),
                                           classes=9))
    image = rng.integers(0, 256, (3, SIZE, SIZE)).astype(np.uint8)
    expected = model.run(image)["global_sum"]
    assert np.count_nonzero(expected) > 1, "the random network should give informative sums"
    return model, NetworkProgram(model, input_size=SIZE, channels_per_beat=4), image, expected


def board(program, steps, faults=None, arch=None):
    """(host link driver, bridge) of a simulated board holding ``steps``."""
    system = NetworkStepSystem(program, steps, lanes=4, clk_hz=DIVISOR, baud=1,
                               timeout=40 * BYTE, arch=arch)
    sim = Simulator(system)
    sim.add_clock(1e-6)
    bridge = SimUARTBridge(sim, system.rx, system.tx, DIVISOR, timeout_cycles=150 * BYTE,
                           faults=faults)
    return EngineLink(bridge), bridge


def test_steps_match_the_program(network):
    """The host's steps (from the model alone) are the program's, with the link's shapes."""
    model, program, _, _ = network
    steps = network_steps(model, SIZE)
    assert [s.name for s in steps] == [s.name for s in program.steps]
    # By hand: conv1 15x15x3 -> pooled 3x3x6; fire2 3x3x6 -> 8; fire3 8 -> 10;
    # conv_final 3x3x10 -> 9 sums of 4 bytes.
    assert [tuple(s.shape) for s in steps] == [(3, 6, 15, 15, 3, 3, 0), (6, 8, 3, 3, 3, 3, 1),
                                              (8, 10, 3, 3, 3, 3, 2), (10, 36, 3, 3, 1, 1, 3)]


def test_whole_network_on_the_board(network):
    model, program, image, expected = network
    link, bridge = board(program, [s.name for s in program.steps])
    sums, runs = classify_on_board(link, model, image)
    np.testing.assert_array_equal(sums, expected)
    assert [(r.name, r.where, r.attempts) for r in runs] == [
        ("conv1", "board", 1), ("fire2", "board", 1), ("fire3", "board", 1),
        ("conv_final", "board", 1)]


def test_some_layers_on_the_host(network):
    model, program, image, expected = network
    link, _ = board(program, ["fire3", "conv_final"])
    sums, runs = classify_on_board(link, model, image)
    np.testing.assert_array_equal(sums, expected)
    assert [r.where for r in runs] == ["host", "host", "board", "board"]


@pytest.mark.parametrize("steps", [("conv1", "fire2", "fire3", "conv_final"), ("conv1", "fire2")])
def test_wide_io_and_patch_runs_on_the_board(network, steps):
    """The wide options of the 128-lane boards (README: "the whole network above 64 lanes"):
    the loader and drainer moving 2 channels per cycle, 8-channel beats, conv1's patches in
    runs; the board holding every step, or conv1 and fire2 with the rest on the host."""
    from hw.arch import Arch
    model, _, image, expected = network
    program = NetworkProgram(model, input_size=SIZE, channels_per_beat=8, patch_runs=True)
    link, _ = board(program, list(steps), arch=Arch(channels_per_cycle=2))
    sums, runs = classify_on_board(link, model, image)
    np.testing.assert_array_equal(sums, expected)
    assert [r.name for r in runs if r.where == "board"] == list(steps)
    assert all(r.attempts == 1 for r in runs)


# Byte numbers on the wire with the board holding fire2 only (conv1 runs on the host): to the
# link, byte 0 is the PING, 1-4 the RUN header, 5.. the 9 input pixels of 8 bytes. From the
# link, bytes 0-13 are the PING reply, 14 the ACK, then pixel packets and credits.
FAULTS = {
    "input bit flipped": ({("to_link", 20): ("flip", 3)}, "input: link"),
    "header bit flipped": ({("to_link", 2): ("flip", 0)}, "link refused layer 0"),
    "input byte dropped": ({("to_link", 30): ("drop", 0)}, "abandoned"),
    "input stop bit low": ({("to_link", 40): ("break", 0)}, "UART framing error"),
    "output bit flipped": ({("to_host", 30): ("flip", 6)}, "output: link"),
    "output byte dropped": ({("to_host", 25): ("drop", 0)}, "unexpected byte"),
}


@pytest.mark.parametrize("case", sorted(FAULTS))
def test_wire_faults_are_detected_and_retried(network, case):
    faults, message = FAULTS[case]
    model, program, image, expected = network
    link, bridge = board(program, ["fire2"], faults=faults)
    lines = []
    sums, runs = classify_on_board(link, model, image, progress=lines.append)
    assert len(bridge.injected) == 1, "the fault must have happened"
    np.testing.assert_array_equal(sums, expected)
    fire2 = next(r for r in runs if r.name == "fire2")
    assert fire2.where == "board" and fire2.attempts == 2, lines
    retry = next(line for line in lines if "retrying" in line)
    assert message in retry, retry


def test_without_retries_a_fault_is_an_error(network):
    model, program, image, _ = network
    link, _ = board(program, ["fire2"], faults={("to_link", 20): ("flip", 3)})
    with pytest.raises(LinkError, match="layer 0 failed 1 times, last: layer 0: check values "
                                        "differ"):
        classify_on_board(link, model, image, retries=0)
