"""The whole-network accelerator on its generated Verilog, under cocotb: global sums bit-exact
with ``golden.fixed``, every layer's output equal to the golden one, cycles exactly as
``hw.network.cycle_model`` predicts.

- default suite: a small metaparameter SqueezeNet (``golden.network.from_metaparameters``,
  random sparse weights) on a 63x63 random image, every layer traced, on Verilator (on Icarus
  with ``-m slow``);
- ``-m slow`` also: the same with 4 channels per cycle in and out and conv1's patches in runs,
  on Verilator (25 s; the default suite runs those options in the Amaranth simulator,
  ``tests/test_network_accelerator.py``);
- ``pytest -m slow sim/test_network.py``: the real v1.0 model on the 227x227 chelsea photo,
  Verilator, 64 lanes (``python -m sim.classify chelsea --model ...`` runs the same), and the
  synthetic v1.1 (``python -m sim.classify chelsea --network v1.1``).
"""

import numpy as np
import pytest

from golden import calibrate, codec, fixed, preprocess
from golden.network import from_metaparameters
from hw.network.program import NetworkProgram
from sim import toolchain
from sim.network import simulate
from testkit.networks import random_model

SIZE = 63


def small_model():
    rng = np.random.default_rng(2017)
    net = from_metaparameters(base_e=32, incr_e=16, num_classes=20)
    return random_model(rng, net, density=0.3), rng.integers(0, 256, (3, SIZE, SIZE),
                                                             dtype=np.uint8)


def check_layers(program, traced, golden):
    for step in program.steps:
        expected = golden[step.name]
        pad = (expected.shape[1] - step.height) // 2
        if pad:
            expected = expected[:, pad:-pad, pad:-pad]
        np.testing.assert_array_equal(traced[step.name], expected,
                                      err_msg=f"{step.name}: engine output differs")


def _icarus_slow():
    """The selected simulators, Icarus with -m slow (62 s here against Verilator's 24)."""
    return [pytest.param(*p.values, id=p.id, marks=[*p.marks] + ([pytest.mark.slow]
                                                                  if p.id == "icarus" else []))
            for p in toolchain.simulator_params()]


@pytest.mark.parametrize("sim", _icarus_slow())
def test_small_metaparameter_network(sim, test_id):
    simulator = toolchain.require(sim)
    model, image = small_model()
    program = NetworkProgram(model, input_size=SIZE, channels_per_beat=8)
    golden = model.run(image)
    assert np.count_nonzero(golden["global_sum"]) > 5, "sums should be informative"
    run = simulate(program, 16, image, simulator, test_id, trace=True)
    check_layers(program, run.traced, golden)
    np.testing.assert_array_equal(run.sums, golden["global_sum"])
    assert run.cycles == run.predicted


@pytest.mark.slow
def test_small_network_wide_io_and_patch_runs(test_id):
    """The same network with the loader and drainer moving 4 channels per cycle, 16-channel
    beats and conv1's patches in runs, 32 lanes, on Verilator: every layer and the sums equal
    golden, cycles equal the model."""
    from hw.arch import Arch
    from sim import toolchain
    toolchain.require("verilator")
    model, image = small_model()
    program = NetworkProgram(model, input_size=SIZE, channels_per_beat=16, patch_runs=True)
    golden = model.run(image)
    arch = Arch(channels_per_cycle=4)
    run = simulate(program, 32, image, "verilator", test_id, trace=True, arch=arch)
    check_layers(program, run.traced, golden)
    np.testing.assert_array_equal(run.sums, golden["global_sum"])
    assert run.cycles == run.predicted


def chelsea_whole_network(compressed, test_id):
    """The 227x227 chelsea photo through ``compressed`` on Verilator, 64 lanes: sums equal to
    golden, cycles equal to the model."""
    from sim import toolchain
    toolchain.require("verilator")
    model = fixed.quantize(compressed, calibrate.load_plan(compressed))
    image = preprocess.preprocess(preprocess.load_image("chelsea"))
    program = NetworkProgram(model, input_size=image.shape[1], channels_per_beat=8)
    run = simulate(program, 64, image, "verilator", test_id)
    np.testing.assert_array_equal(run.sums, model.run(image)["global_sum"])
    assert run.cycles == run.predicted


@pytest.mark.slow
@pytest.mark.skipif(not codec.SHARED_MODEL_PATH.is_file(),
                    reason=f"real model not found at {codec.SHARED_MODEL_PATH}: ../shared is "
                    f"absent")
def test_real_v1_0_chelsea_whole_network(test_id):
    chelsea_whole_network(codec.load(codec.SHARED_MODEL_PATH), test_id)


@pytest.mark.slow
@pytest.mark.skipif(not codec.SHARED_MODEL_PATH.is_file(),
                    reason=f"real model not found at {codec.SHARED_MODEL_PATH}: ../shared is "
                    f"absent")
def test_real_v1_0_chelsea_240_lanes_wide(test_id):
    """240 lanes (not a power of two: a multiple of 8), 32-channel beats, 8 channels per cycle
    in and out, conv1's patches in runs: the configuration of 40+ frames/s with 240
    multipliers (2,230,398 cycles, 98 s on Verilator here). Sums equal golden, cycles equal
    the model."""
    from hw.arch import Arch
    from sim import toolchain
    toolchain.require("verilator")
    compressed = codec.load(codec.SHARED_MODEL_PATH)
    model = fixed.quantize(compressed, calibrate.load_plan(compressed))
    image = preprocess.preprocess(preprocess.load_image("chelsea"))
    program = NetworkProgram(model, input_size=image.shape[1], channels_per_beat=32,
                             patch_runs=True)
    run = simulate(program, 240, image, "verilator", test_id, arch=Arch(channels_per_cycle=8))
    np.testing.assert_array_equal(run.sums, model.run(image)["global_sum"])
    assert run.cycles == run.predicted


@pytest.mark.slow
def test_synthetic_v1_1_chelsea_whole_network(test_id):
    """SqueezeNet v1.1 (3x3/2 conv1 of 64 filters, pools after conv1, fire3 and fire5, conv10
    unpadded) at full size: no compressed v1.1 is published, so the synthetic one."""
    chelsea_whole_network(codec.load(None, version="1.1"), test_id)
