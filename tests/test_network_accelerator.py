# amaranth: UnusedElaboratable=no
"""The whole-network accelerator in the Amaranth simulator: global sums bit-exact with
``golden.fixed``, cycles equal to the network cycle model."""

import numpy as np
import pytest

from hw.network.accelerator import NetworkAccelerator
from hw.network.cycle_model import network_cycles
from hw.network.program import NetworkProgram
from testkit.network_driver import run_images, run_network
from testkit.networks import random_model, tiny_network

# (lanes, L, conv1 (out, k, s), fires, pools, classes, final pad, image size)
CONFIGS = [
    (4, 4, (8, 3, 2), ((4, 4, 4), (4, 6, 6)), ("conv1", "fire3"), 10, 1, 23),   # v1.0-like
    (8, 3, (6, 3, 2), ((3, 4, 4),), ("conv1",), 7, 0, 17),                      # v1.1-like
    (2, 8, (5, 5, 2), ((4, 3, 5), (2, 4, 4)), ("conv1", "fire2"), 12, 1, 21),
    (16, 5, (4, 7, 2), ((4, 8, 8),), ("conv1", "fire2"), 9, 1, 29),             # 7x7/2
    (24, 4, (6, 3, 2), ((4, 4, 4), (4, 6, 6)), ("conv1",), 10, 1, 61),          # 30-wide
]


@pytest.mark.parametrize("lanes,beat,conv1,fires,pools,classes,pad,size", CONFIGS)
def test_whole_network_bit_exact_and_cycles(lanes, beat, conv1, fires, pools, classes, pad,
                                            size):
    rng = np.random.default_rng(lanes * 100 + beat)
    model = random_model(rng, tiny_network(conv1=conv1, fires=fires, pool_after=pools,
                                           classes=classes, final_pad=pad))
    program = NetworkProgram(model, input_size=size, channels_per_beat=beat)
    acc = NetworkAccelerator(program, lanes=lanes)
    image = rng.integers(0, 256, (3, size, size)).astype(np.uint8)
    expected = model.run(image)["global_sum"]
    assert np.count_nonzero(expected) > 1, "the random network should give informative sums"
    got, cycles, lasts = run_network(acc, image)
    np.testing.assert_array_equal(got, expected)
    assert lasts == [0] * (classes - 1) + [1]
    assert cycles == network_cycles(program, lanes=lanes).cycles


def test_gaps_and_back_pressure_and_two_images():
    """Random idle cycles on the image and back-pressure on the logits change only timing;
    three images back to back on the same running hardware each give their own sums."""
    rng = np.random.default_rng(5)
    model = random_model(rng, tiny_network(pool_after=("conv1", "fire2")))
    program = NetworkProgram(model, input_size=19, channels_per_beat=4)
    acc = NetworkAccelerator(program, lanes=4)
    images = [rng.integers(0, 256, (3, 19, 19)).astype(np.uint8) for _ in range(3)]
    results = run_images(acc, images, valid_prob=0.3, ready_prob=0.2, seed=1)
    for image, (got, _, _) in zip(images, results):
        np.testing.assert_array_equal(got, model.run(image)["global_sum"])
    # Without gaps the second image takes exactly the modelled cycles too.
    results = run_images(acc, images[:2])
    assert [r[1] for r in results] == [network_cycles(program, lanes=4).cycles] * 2


@pytest.mark.parametrize("lanes,passes,balance,config", [
    (4, (1, 1, 1), "all", 0), (8, (1, 2, 2), "expand", 1), (4, (2, 1, 2), "strict", 2),
    # 31 s: the default suite keeps within 15 minutes with the three above
    pytest.param(16, (1, 2, 4), "all", 3, marks=pytest.mark.slow)])
def test_whole_network_on_the_dataflow_datapath(lanes, passes, balance, config):
    """The same networks on the dataflow datapath (conv1 and conv10 split over its three
    units): sums bit-exact, cycles equal to the network model with the dataflow layer model."""
    from hw.arch import Arch
    _, beat, conv1, fires, pools, classes, pad, size = CONFIGS[config]
    rng = np.random.default_rng(lanes * 100 + beat)
    model = random_model(rng, tiny_network(conv1=conv1, fires=fires, pool_after=pools,
                                           classes=classes, final_pad=pad))
    program = NetworkProgram(model, input_size=size, channels_per_beat=beat)
    arch = Arch("dataflow", passes, balance)
    acc = NetworkAccelerator(program, lanes=lanes, arch=arch)
    image = rng.integers(0, 256, (3, size, size)).astype(np.uint8)
    got, cycles, _ = run_network(acc, image)
    np.testing.assert_array_equal(got, model.run(image)["global_sum"])
    assert cycles == network_cycles(program, lanes=lanes, arch=arch).cycles


@pytest.mark.parametrize("lanes,beat,per_cycle,runs,config", [
    (4, 8, 2, True, 0), (16, 12, 4, False, 3), (8, 16, 4, True, 3), (2, 8, 2, True, 2),
    (24, 12, 4, True, 0)])
def test_whole_network_with_several_channels_per_cycle(lanes, beat, per_cycle, runs, config):
    """The shared engine's loader and drainer moving W channels per cycle (L >= 3W, so the
    max-pool keeps up), with conv1's patches in runs or bytes: sums bit-exact, cycles as the
    network model, fewer than with W = 1 and bytes."""
    from hw.arch import Arch
    _, _, conv1, fires, pools, classes, pad, size = CONFIGS[config]
    rng = np.random.default_rng(lanes * 100 + beat)
    model = random_model(rng, tiny_network(conv1=conv1, fires=fires, pool_after=pools,
                                           classes=classes, final_pad=pad))
    program = NetworkProgram(model, input_size=size, channels_per_beat=beat, patch_runs=runs)
    arch = Arch(channels_per_cycle=per_cycle)
    acc = NetworkAccelerator(program, lanes=lanes, arch=arch)
    image = rng.integers(0, 256, (3, size, size)).astype(np.uint8)
    got, cycles, _ = run_network(acc, image)
    np.testing.assert_array_equal(got, model.run(image)["global_sum"])
    assert cycles == network_cycles(program, lanes=lanes, arch=arch).cycles
    plain = NetworkProgram(model, input_size=size, channels_per_beat=beat)
    assert cycles < network_cycles(plain, lanes=lanes).cycles


def test_line_buffer_option_reaches_the_engine():
    """``Arch(line_buffer="distributed")`` puts the engine's line buffer in LUT RAM and
    nothing else; only the shared engine has the option."""
    from hw.arch import Arch
    from hw.flow.memories import design_memories
    rng = np.random.default_rng(2)
    model = random_model(rng, tiny_network(pool_after=("conv1",)))
    program = NetworkProgram(model, input_size=19, channels_per_beat=4)
    styles = {m.name: m.style for m in design_memories(
        NetworkAccelerator(program, lanes=4, arch=Arch(line_buffer="distributed")))}
    lut = {name for name, style in styles.items() if style == "distributed"}
    assert lut == {"engine/pipeline/line_buffer/half0", "engine/pipeline/line_buffer/half1"}
    with pytest.raises(ValueError, match="line buffer must be one of block, distributed"):
        Arch(line_buffer="lut")
    with pytest.raises(ValueError, match="distributed line buffer is built for the shared"):
        Arch("dataflow", line_buffer="distributed")


def test_channels_per_cycle_the_pool_cannot_follow_is_refused():
    from hw.arch import Arch
    rng = np.random.default_rng(1)
    model = random_model(rng, tiny_network(pool_after=("conv1",)))
    program = NetworkProgram(model, input_size=19, channels_per_beat=4)
    with pytest.raises(ValueError, match="2 channels per cycle need at least 6 channels per "
                                         "beat in a network"):
        NetworkAccelerator(program, lanes=4, arch=Arch(channels_per_cycle=2))
    with pytest.raises(ValueError, match="2 channels per cycle need at least 6"):
        network_cycles(program, lanes=4, arch=Arch(channels_per_cycle=2))
