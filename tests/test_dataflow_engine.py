# amaranth: UnusedElaboratable=no
"""Dataflow datapath in the Amaranth simulator: bit-exact with golden.fixed, cycles as modelled.

The same layers, drivers and golden checks as tests/test_fire_engine.py, on random
configurations (lanes, stream width, shapes, the expand split balanced or as specified).
"""

import numpy as np
import pytest

from golden.fixed import conv1x1
from golden.network import Conv
from hw.dataflow.cycle_model import layer_cycles
from hw.dataflow.engine import DataflowEngine
from hw.dataflow.program import DataflowProgram

from testkit.engine_driver import check_fire_layer as check_fire
from testkit.engine_driver import run_layer
from testkit.fire_cases import random_fire, random_qconv


# (lanes, channels_per_beat, cin, csq, e1, e3, height, width, balance)
CONFIGS = [
    (1, 1, 3, 2, 2, 3, 3, 4, "all"),
    (2, 3, 7, 3, 4, 2, 4, 3, "strict"),
    (4, 2, 6, 3, 4, 5, 5, 4, "all"),
    (4, 4, 16, 4, 6, 6, 6, 7, "strict"),
    (8, 4, 8, 4, 4, 4, 9, 2, "all"),
    (8, 8, 12, 5, 8, 8, 7, 9, "strict"),
    (16, 8, 10, 4, 3, 5, 5, 5, "all"),
    (16, 1, 4, 2, 2, 2, 1, 20, "all"),
    (32, 16, 24, 8, 8, 8, 6, 6, "all"),
    (4, 4, 24, 3, 6, 6, 9, 10, "all"),      # light squeeze: the squeeze unit also expands
]


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("lanes,beat,cin,csq,e1,e3,height,width,balance", CONFIGS)
def test_random_fire_bit_exact_and_cycles(lanes, beat, cin, csq, e1, e3, height, width,
                                          balance, seed):
    rng = np.random.default_rng(seed * 1000 + lanes * 10 + beat)
    convs = random_fire(rng, "fireR", cin, csq, e1, e3, density=float(rng.uniform(0.05, 0.9)))
    program = DataflowProgram([("fireR", height, width, *convs)], balance=balance)
    engine = DataflowEngine(program, lanes=lanes, channels_per_beat=beat)
    x = rng.integers(0, 256, (cin, height, width)).astype(np.uint8)
    cycles = check_fire(engine, 0, x, convs)
    assert cycles == layer_cycles(engine, program, 0).cycles


def test_fixed_widths_runs_own_widths_and_rejects_others():
    """With ``fixed_widths`` (as the network and the boards build it) the units' line buffers
    rotate only for the layers' widths (9 and 5 at 16 lanes leave rotations 2, 3, 13 and 14
    out): the layers at their own widths (any height) are bit-exact in the modelled cycles,
    the squeeze unit expanding too ("all"); a run at another width is rejected."""
    rng = np.random.default_rng(22)
    a = random_fire(rng, "fireA", 16, 3, 6, 6, density=0.5)
    b = random_fire(rng, "fireB", 8, 3, 4, 2, density=0.5)
    program = DataflowProgram([("fireA", 4, 9, *a), ("fireB", 6, 5, *b)])
    engine = DataflowEngine(program, lanes=16, channels_per_beat=4, fixed_widths=True)
    assert any(layer.dual for layer in program.units[0].layers)
    for layer, convs, (h, w) in [(0, a, (4, 9)), (1, b, (6, 5)), (1, b, (3, 5))]:
        x = rng.integers(0, 256, (convs[0].spec.in_channels, h, w)).astype(np.uint8)
        assert check_fire(engine, layer, x, convs) == layer_cycles(
            engine, program, layer, height=h, width=w).cycles
    got, cycles, framing = run_layer(engine, 0, np.zeros((16, 4, 3), np.uint8), 12)
    assert cycles == 1 and framing == []


def test_squeeze_waits_for_line_buffer_space():
    """A light squeeze far ahead of heavy expand units: the squeeze unit must wait until the
    line-buffer slot it would overwrite is no longer read (and the model says it did)."""
    rng = np.random.default_rng(1048)
    convs = random_fire(rng, "fireL", 9, 8, 2, 8, density=float(rng.uniform(0.05, 0.9)))
    program = DataflowProgram([("fireL", 6, 13, *convs)], balance="expand")
    engine = DataflowEngine(program, lanes=4, channels_per_beat=8)
    x = rng.integers(0, 256, (9, 6, 13)).astype(np.uint8)
    model = layer_cycles(engine, program, 0)
    assert model.units[0].wait["line_space"] > 0
    assert check_fire(engine, 0, x, convs) == model.cycles


def test_two_layers_crops_gaps_and_back_pressure():
    rng = np.random.default_rng(7)
    a = random_fire(rng, "fireA", 8, 4, 4, 4, density=0.5)
    b = random_fire(rng, "fireB", 8, 3, 2, 6, density=0.3)
    program = DataflowProgram([("fireA", 8, 8, *a), ("fireB", 6, 6, *b)])
    engine = DataflowEngine(program, lanes=4, channels_per_beat=4, bank_depth=16)
    for layer, convs, (h, w) in [(1, b, (6, 6)), (0, a, (3, 5)), (1, b, (2, 2))]:
        x = rng.integers(0, 256, (8, h, w)).astype(np.uint8)
        cycles = check_fire(engine, layer, x, convs)
        assert cycles == layer_cycles(engine, program, layer, height=h, width=w).cycles
    x = rng.integers(0, 256, (8, 8, 8)).astype(np.uint8)
    check_fire(engine, 0, x, a, valid_prob=0.3, ready_prob=0.5, seed=4)


# (lanes, channels_per_beat, in_channels, out_channels, height, width)
PLAIN = [(4, 4, 10, 6, 3, 5), (8, 3, 27, 12, 4, 4), (2, 8, 5, 20, 2, 3), (16, 8, 147, 9, 3, 7),
         (4, 4, 6, 2, 3, 3)]   # fewer channels than units: one unit has none


@pytest.mark.parametrize("lanes,beat,cin,cout,height,width", PLAIN)
def test_plain_layer_split_over_three_units(lanes, beat, cin, cout, height, width):
    """A plain 1x1 layer after a Fire layer in one program: every unit takes a channel range;
    bit-exact with golden conv1x1, cycles as modelled, and with gaps and back-pressure."""
    rng = np.random.default_rng(lanes * 100 + cin)
    fire = random_fire(rng, "fireA", 6, 3, 4, 4, density=0.5)
    plain = random_qconv(rng, Conv("convP", cout, cin, 1), density=0.5)
    program = DataflowProgram([("fireA", 5, 5, *fire), ("convP", height, width, plain)])
    a, b = program.splits[1]
    assert 0 <= a <= b <= cout
    engine = DataflowEngine(program, lanes=lanes, channels_per_beat=beat)
    x = rng.integers(0, 256, (cin, height, width)).astype(np.uint8)
    got, cycles, framing = run_layer(engine, 1, x, cout)
    np.testing.assert_array_equal(got, conv1x1(x, plain))
    assert framing[0][0] == 1 and framing[-1][1] == 1
    assert cycles == layer_cycles(engine, program, 1).cycles
    x_fire = rng.integers(0, 256, (6, 5, 5)).astype(np.uint8)
    assert check_fire(engine, 0, x_fire, fire) == layer_cycles(engine, program, 0).cycles
    got, _, _ = run_layer(engine, 1, x, cout, valid_prob=0.5, ready_prob=0.4, seed=3)
    np.testing.assert_array_equal(got, conv1x1(x, plain))


def test_saturation_extremes_and_code_widths():
    rng = np.random.default_rng(11)
    convs = random_fire(rng, "fireX", 12, 4, 4, 4, density=0.9, extreme=True, shift=3)
    engine = DataflowEngine(DataflowProgram([("fireX", 4, 5, *convs)]), lanes=4,
                            channels_per_beat=4)
    for x in (np.full((12, 4, 5), 255, np.uint8),
              rng.choice([0, 255], (12, 4, 5)).astype(np.uint8)):
        check_fire(engine, 0, x, convs)
    convs = random_fire(rng, "fireW", 6, 3, 3, 3, density=0.6, code_bits=4, weight_bits=8,
                        shift=0)
    program = DataflowProgram([("fireW", 4, 4, *convs)], code_bits=4, weight_bits=8)
    engine = DataflowEngine(program, lanes=2, channels_per_beat=2)
    check_fire(engine, 0, rng.integers(0, 256, (6, 4, 4)).astype(np.uint8), convs)


def test_rejects_bad_parameters():
    rng = np.random.default_rng(1)
    program = DataflowProgram([("f", 3, 3, *random_fire(rng, "f", 4, 2, 2, 2))])
    with pytest.raises(ValueError, match="power of two"):
        DataflowEngine(program, lanes=3)
    with pytest.raises(TypeError, match="DataflowProgram"):
        DataflowEngine(object())


# (lanes, channels_per_beat, cin, csq, e1, e3, height, width, passes)
PASSES = [
    (4, 4, 8, 4, 4, 4, 5, 6, (2, 2, 1)),
    (8, 2, 6, 3, 4, 5, 5, 4, (2, 4, 1)),
    (8, 8, 12, 5, 8, 8, 7, 9, (1, 2, 2)),
    (2, 3, 7, 3, 4, 2, 4, 3, (2, 2, 2)),
]


@pytest.mark.parametrize("lanes,beat,cin,csq,e1,e3,height,width,passes", PASSES)
def test_units_of_fewer_lanes_than_the_group(lanes, beat, cin, csq, e1, e3, height, width,
                                             passes):
    """Units of P/2 or P/4 multipliers cover a group in passes (the unit sizes as parameters);
    a plain layer in the same program."""
    rng = np.random.default_rng(lanes + sum(passes))
    convs = random_fire(rng, "fireU", cin, csq, e1, e3, density=0.5)
    plain = random_qconv(rng, Conv("convU", 7, cin, 1), density=0.5)
    program = DataflowProgram([("fireU", height, width, *convs), ("convU", 3, 5, plain)],
                              passes=passes)
    engine = DataflowEngine(program, lanes=lanes, channels_per_beat=beat)
    assert engine.multipliers == sum(lanes // p for p in passes)
    x = rng.integers(0, 256, (cin, height, width)).astype(np.uint8)
    assert check_fire(engine, 0, x, convs) == layer_cycles(engine, program, 0).cycles
    x = rng.integers(0, 256, (cin, 3, 5)).astype(np.uint8)
    got, cycles, _ = run_layer(engine, 1, x, 7)
    np.testing.assert_array_equal(got, conv1x1(x, plain))
    assert cycles == layer_cycles(engine, program, 1).cycles
