# amaranth: UnusedElaboratable=no
"""The step engine in the Amaranth simulator: chosen steps of tiny networks, one per ``start``,
each fed its input from the golden model and bit-exact with that step's golden output (after
its pool; the packed global sums for the last step)."""

import numpy as np
import pytest
from amaranth.hdl import Fragment

from hw.network.program import NetworkProgram
from hw.network.step_engine import StepEngine
from testkit.networks import random_model, tiny_network
from testkit.step_driver import decode_output, golden_steps, run_steps


def _case(seed, *, size=19, beat=4, patch_runs=False, **network):
    rng = np.random.default_rng(seed)
    model = random_model(rng, tiny_network(**network))
    program = NetworkProgram(model, input_size=size, channels_per_beat=beat,
                             patch_runs=patch_runs)
    image = rng.integers(0, 256, (3, size, size)).astype(np.uint8)
    cases = golden_steps(model, program, image)
    assert all(np.count_nonzero(out) > 1 for _, out in cases), "uninformative random network"
    return program, cases


def _check(dut, results, runs, cases):
    """Each run's output equals its step's golden output, framed once per run."""
    for (k, _), (beats, framing, _) in zip(runs, results):
        index = [s.name for s in dut.program.steps].index(dut.step_names[k])
        np.testing.assert_array_equal(decode_output(dut, k, beats), cases[index][1])
        n = len(framing)
        assert [first for first, _ in framing] == [1] + [0] * (n - 1)
        assert [last for _, last in framing] == [0] * (n - 1) + [1]


@pytest.mark.parametrize("lanes,beat,valid_prob,ready_prob", [
    (4, 4, 1.0, 1.0),
    (8, 3, 0.4, 0.3),
])
def test_all_steps_in_order_then_again(lanes, beat, valid_prob, ready_prob):
    """Every step in network order on one design, then the first two again, back to back."""
    program, cases = _case(lanes + beat, beat=beat, pool_after=("conv1", "fire2"))
    names = [s.name for s in program.steps]
    dut = StepEngine(program, list(reversed(names)), lanes=lanes)
    assert dut.step_names == tuple(names)
    runs = [(k, cases[k][0]) for k in range(len(names))] + [(0, cases[0][0]), (1, cases[1][0])]
    results = run_steps(dut, runs, valid_prob=valid_prob, ready_prob=ready_prob, seed=3)
    _check(dut, results, runs, cases)


def test_wide_io_and_patch_runs():
    """Every step with the loader and drainer moving 2 channels per cycle and conv1's patches in
    runs (the host-driven design with those options), with gaps and back-pressure."""
    from hw.arch import Arch
    program, cases = _case(11, beat=8, patch_runs=True, pool_after=("conv1", "fire2"))
    names = [s.name for s in program.steps]
    dut = StepEngine(program, names, lanes=4, arch=Arch(channels_per_cycle=2))
    runs = [(k, cases[k][0]) for k in range(len(names))]
    results = run_steps(dut, runs, valid_prob=0.7, ready_prob=0.5, seed=2)
    _check(dut, results, runs, cases)


@pytest.mark.parametrize("steps", [("fire2",), ("conv_final",), ("fire3", "conv1")])
def test_subset(steps):
    """A middle Fire step with its pool alone, the last step alone (no pool, no patch streamer
    built), and conv1 with a later step: each run twice, with gaps and back-pressure."""
    program, cases = _case(7, pool_after=("conv1", "fire2"), classes=9)
    dut = StepEngine(program, steps, lanes=4)
    names = [s.name for s in program.steps]
    runs = [(k, cases[names.index(name)][0]) for k, name in enumerate(dut.step_names)] * 2
    results = run_steps(dut, runs, valid_prob=0.6, ready_prob=0.5, seed=1)
    _check(dut, results, runs, cases)


def test_image_rows_below_the_last_patch_are_taken():
    """A 20x20 image under a 3x3/2 conv1: the last row and column are in no patch, yet the
    run takes the whole image, so the next run's input is not mistaken for image pixels."""
    program, cases = _case(11, size=20, pool_after=("conv1",))
    dut = StepEngine(program, ["conv1", "fire2"], lanes=4)
    runs = [(0, cases[0][0]), (1, cases[1][0])]
    results = run_steps(dut, runs)
    _check(dut, results, runs, cases)


def test_link_layers_by_hand():
    # 19x19 image, conv1 3x3/2 -> 9x9x8, pool -> 4x4; fire2 -> 4x4x8; fire3 -> 4x4x12;
    # conv_final 12 -> 10 classes: 40 bytes of logits.
    program, _ = _case(1)
    dut = StepEngine(program, ["conv_final", "conv1", "fire2", "fire3"], lanes=4)
    assert dut.link_layers == ((3, 8, 19, 19, 4, 4), (8, 8, 4, 4, 4, 4),
                               (8, 12, 4, 4, 4, 4), (12, 40, 4, 4, 1, 1))
    Fragment.get(dut, None)        # every block: patch streamer, pool, global sum, packer
    # With a pool after fire2 too: fire2's 4x4 output pools to 2x2.
    program, _ = _case(1, pool_after=("conv1", "fire2"))
    dut = StepEngine(program, ["fire3", "fire2"], lanes=4)
    assert dut.step_names == ("fire2", "fire3")
    assert dut.link_layers == ((8, 8, 4, 4, 2, 2), (8, 12, 2, 2, 2, 2))
    assert [layer.name for layer in dut.engine.program.layers] == ["fire2", "fire3"]
    assert dut.program is program
    # Elaborates with the pool only (no patch streamer, no global sum).
    Fragment.get(dut, None)


def test_step_name_errors():
    program, _ = _case(1)
    valid = "conv1, fire2, fire3, conv_final"
    with pytest.raises(ValueError, match=f"^Unknown step 'fire9'; the steps are {valid}$"):
        StepEngine(program, ["fire2", "fire9"])
    with pytest.raises(ValueError, match=f"^Step 'fire2' named more than once; the steps are "
                                         f"{valid}$"):
        StepEngine(program, ["fire2", "conv1", "fire2"])
    with pytest.raises(ValueError, match=f"^Steps must name at least one of {valid}$"):
        StepEngine(program, [])
    with pytest.raises(TypeError, match="^Steps must be a sequence of step names, not 'fire2'$"):
        StepEngine(program, "fire2")
    with pytest.raises(TypeError, match="^Program must be a NetworkProgram, not None$"):
        StepEngine(None, ["fire2"])


def test_dataflow_datapath_steps():
    """The host-driven step engine on the dataflow datapath: every step, with gaps and
    back-pressure, bit-exact (the design ``hw.build --arch dataflow`` makes for small boards)."""
    from hw.arch import Arch
    program, cases = _case(5, pool_after=("conv1", "fire2"))
    names = [s.name for s in program.steps]
    dut = StepEngine(program, names, lanes=4, arch=Arch("dataflow", (1, 2, 2)))
    runs = [(k, cases[k][0]) for k in range(len(names))] + [(1, cases[1][0])]
    results = run_steps(dut, runs, valid_prob=0.6, ready_prob=0.5, seed=2)
    _check(dut, results, runs, cases)
