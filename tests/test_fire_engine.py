# amaranth: UnusedElaboratable=no
"""Fire engine in the Amaranth simulator: bit-exact with golden.fixed.fire, cycles as modelled."""

import numpy as np
import pytest

from hw.fire.cycle_model import fire_cycles
from hw.fire.engine import FireEngine
from hw.fire.program import EngineProgram

from testkit.engine_driver import check_fire_layer as check
from testkit.engine_driver import run_layer
from testkit.fire_cases import random_fire


def predicted(engine, layer, height, width):
    return fire_cycles(engine.program.fires[layer], lanes=engine.lanes,
                       channels_per_beat=engine.channels_per_beat, height=height,
                       width=width, channels_per_cycle=engine.channels_per_cycle).cycles


# (lanes, channels_per_beat, cin, csq, e1, e3, height, width)
CONFIGS = [
    (1, 1, 3, 2, 2, 3, 3, 4),
    (2, 3, 7, 3, 4, 2, 4, 3),
    (4, 2, 6, 3, 4, 5, 5, 4),
    (4, 4, 16, 4, 6, 6, 6, 7),
    (8, 4, 8, 4, 4, 4, 9, 2),
    (8, 8, 12, 5, 8, 8, 7, 9),
    (16, 8, 10, 4, 3, 5, 5, 5),
    (16, 1, 4, 2, 2, 2, 1, 20),
    (32, 16, 24, 8, 8, 8, 6, 6),
    # lanes not a power of two: divisions by constants (hw/blocks/const_div.py), row flags
    (24, 8, 10, 4, 6, 6, 7, 9),
    (24, 4, 6, 3, 4, 4, 3, 30),
    (40, 4, 8, 4, 4, 4, 9, 11),
]


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("lanes,beat,cin,csq,e1,e3,height,width", CONFIGS)
def test_random_layers_bit_exact_and_cycles(lanes, beat, cin, csq, e1, e3, height, width, seed):
    rng = np.random.default_rng(seed * 1000 + lanes * 10 + beat)
    convs = random_fire(rng, "fireR", cin, csq, e1, e3, density=float(rng.uniform(0.05, 0.9)))
    engine = FireEngine(EngineProgram([("fireR", height, width, *convs)]), lanes=lanes,
                        channels_per_beat=beat)
    x = rng.integers(0, 256, (cin, height, width)).astype(np.uint8)
    cycles = check(engine, 0, x, convs)
    assert cycles == predicted(engine, 0, height, width)


# (lanes, channels_per_beat, channels_per_cycle, cin, csq, e1, e3, height, width)
WIDE = [
    (4, 4, 2, 6, 3, 4, 5, 5, 4),
    (8, 8, 8, 12, 5, 8, 8, 7, 9),
    (16, 8, 4, 20, 4, 6, 10, 5, 6),
    (4, 6, 2, 11, 3, 2, 7, 4, 4),
    (24, 8, 8, 12, 5, 8, 8, 7, 9),
]


@pytest.mark.parametrize("lanes,beat,per_cycle,cin,csq,e1,e3,height,width", WIDE)
def test_several_channels_per_cycle(lanes, beat, per_cycle, cin, csq, e1, e3, height, width):
    """W channels per cycle in the loader and the drainer: bit-exact, cycles as modelled, and
    fewer cycles than with one channel per cycle; exact again with stalls."""
    rng = np.random.default_rng(lanes * 10 + per_cycle)
    convs = random_fire(rng, "fireV", cin, csq, e1, e3, density=0.2)
    program = EngineProgram([("fireV", height, width, *convs)])
    engine = FireEngine(program, lanes=lanes, channels_per_beat=beat,
                        channels_per_cycle=per_cycle)
    x = rng.integers(0, 256, (cin, height, width)).astype(np.uint8)
    cycles = check(engine, 0, x, convs)
    assert cycles == predicted(engine, 0, height, width)
    narrow = FireEngine(program, lanes=lanes, channels_per_beat=beat)
    assert cycles < predicted(narrow, 0, height, width)
    check(engine, 0, x, convs, valid_prob=0.5, ready_prob=0.5, seed=4)


def test_two_layers_and_crop_smaller_than_program():
    rng = np.random.default_rng(7)
    a = random_fire(rng, "fireA", 8, 4, 4, 4, density=0.5)
    b = random_fire(rng, "fireB", 8, 3, 2, 6, density=0.3)
    # Small banks: the weight store's entries, codebooks and biases span several banks each.
    engine = FireEngine(EngineProgram([("fireA", 8, 8, *a), ("fireB", 6, 6, *b)]),
                        lanes=4, channels_per_beat=4, bank_depth=16)
    assert len(engine.weight_store.entries.banks) > 4
    for layer, convs, (h, w) in [(1, b, (6, 6)), (0, a, (3, 5)), (1, b, (2, 2))]:
        x = rng.integers(0, 256, (8, h, w)).astype(np.uint8)
        assert check(engine, layer, x, convs) == predicted(engine, layer, h, w)


def test_saturation_extremes():
    """All-255 activations, full-scale weights and biases: wrap-around and clipping decide."""
    rng = np.random.default_rng(11)
    convs = random_fire(rng, "fireX", 12, 4, 4, 4, density=0.9, extreme=True, shift=3)
    engine = FireEngine(EngineProgram([("fireX", 4, 5, *convs)]), lanes=4, channels_per_beat=4)
    for x in (np.full((12, 4, 5), 255, np.uint8),
              rng.choice([0, 255], (12, 4, 5)).astype(np.uint8)):
        check(engine, 0, x, convs)


@pytest.mark.parametrize("weight_bits,code_bits,shift", [(8, 4, 0), (18, 8, 31), (12, 6, 1)])
def test_weight_and_code_widths(weight_bits, code_bits, shift):
    rng = np.random.default_rng(weight_bits)
    convs = random_fire(rng, "fireW", 5, 3, 3, 3, density=0.6, code_bits=code_bits,
                        weight_bits=weight_bits, shift=shift)
    engine = FireEngine(EngineProgram([("fireW", 4, 4, *convs)], code_bits=code_bits,
                                      weight_bits=weight_bits), lanes=2, channels_per_beat=2)
    check(engine, 0, rng.integers(0, 256, (5, 4, 4)).astype(np.uint8), convs)


@pytest.mark.parametrize("valid_prob,ready_prob", [(0.3, 1.0), (1.0, 0.2), (0.5, 0.5)])
def test_idle_input_and_backpressure(valid_prob, ready_prob):
    rng = np.random.default_rng(3)
    convs = random_fire(rng, "fireB", 6, 3, 4, 4, density=0.5)
    engine = FireEngine(EngineProgram([("fireB", 5, 6, *convs)]), lanes=4, channels_per_beat=4)
    x = rng.integers(0, 256, (6, 5, 6)).astype(np.uint8)
    ideal = check(engine, 0, x, convs)
    stalled = check(engine, 0, x, convs, valid_prob=valid_prob, ready_prob=ready_prob, seed=9)
    assert stalled > ideal


def test_unknown_layer_is_rejected_with_done():
    rng = np.random.default_rng(5)
    convs = random_fire(rng, "fireU", 4, 2, 2, 2)
    engine = FireEngine(EngineProgram([("fireU", 3, 3, *convs)]), lanes=2, channels_per_beat=2)
    got, cycles, framing = run_layer(engine, 5, np.zeros((4, 3, 3), np.uint8), 0)
    assert cycles == 1 and framing == []
    got, cycles, framing = run_layer(engine, 0, np.zeros((4, 0, 3), np.uint8), 0)
    assert cycles == 1 and framing == []


@pytest.mark.parametrize("lanes", [16, 24])
def test_fixed_widths_runs_own_widths_and_rejects_others(lanes):
    """With ``fixed_widths`` the line buffer rotates only for the layers' widths (9 and 5 at
    16 lanes leave rotations 2, 3, 13 and 14 out): the layers at their own widths (any height)
    are bit-exact in the modelled cycles; a run at another width is rejected, not run wrong.
    24 lanes: tap offsets and group counts by division by a constant."""
    rng = np.random.default_rng(21)
    a = random_fire(rng, "fireA", 6, 4, 3, 5, density=0.5)
    b = random_fire(rng, "fireB", 8, 3, 4, 2, density=0.5)
    program = EngineProgram([("fireA", 4, 9, *a), ("fireB", 6, 5, *b)])
    engine = FireEngine(program, lanes=lanes, channels_per_beat=4, fixed_widths=True)
    for layer, convs, (h, w) in [(0, a, (4, 9)), (1, b, (6, 5)), (1, b, (3, 5))]:
        x = rng.integers(0, 256, (convs[0].spec.in_channels, h, w)).astype(np.uint8)
        assert check(engine, layer, x, convs) == predicted(engine, layer, h, w)
    got, cycles, framing = run_layer(engine, 0, np.zeros((6, 4, 3), np.uint8), 8)
    assert cycles == 1 and framing == []


@pytest.mark.parametrize("kwargs,exc,message", [
    ({"lanes": 3}, ValueError, "Lane count must be 1, 2, 4 or a multiple of 8 up to 1024, not 3"),
    ({"lanes": 2048}, ValueError, "Lane count must be 1, 2, 4 or a multiple of 8"),
    ({"lanes": 20}, ValueError, "Lane count must be 1, 2, 4 or a multiple of 8"),
    ({"lanes": 4.0}, TypeError, "Lane count must be an integer, not 4.0"),
    ({"channels_per_beat": 0}, ValueError, "Channels per beat must be from 1 to 64, not 0"),
    ({"channels_per_beat": "8"}, TypeError, "Channels per beat must be an integer"),
    ({"acc_width": 16}, ValueError, "Accumulator width must be from 24 to 48, not 16"),
    ({"acc_width": 32.0}, TypeError, "Accumulator width must be an integer, not 32.0"),
    ({"channels_per_cycle": 16}, ValueError, "Channels per cycle must divide the channels per "
                                             r"beat \(8\) and the lane count"),
])
def test_parameter_errors(kwargs, exc, message):
    rng = np.random.default_rng(0)
    program = EngineProgram([("fireE", 3, 3, *random_fire(rng, "fireE", 4, 2, 2, 2))])
    with pytest.raises(exc, match=message):
        FireEngine(program, **kwargs)
    with pytest.raises(TypeError, match="Program must be an EngineProgram"):
        FireEngine(object())


# (lanes, channels_per_beat, in_channels, out_channels, height, width, channels_per_cycle)
PLAIN = [(4, 4, 10, 6, 3, 5, 1), (8, 3, 27, 12, 4, 4, 1), (2, 8, 5, 20, 2, 3, 1),
         (16, 8, 147, 9, 3, 7, 1), (8, 4, 27, 12, 4, 4, 4), (16, 8, 147, 9, 3, 7, 8),
         (24, 8, 27, 12, 5, 11, 1)]


@pytest.mark.parametrize("lanes,beat,cin,cout,height,width,per_cycle", PLAIN)
def test_plain_layer_bit_exact_and_cycles(lanes, beat, cin, cout, height, width, per_cycle):
    """A plain 1x1 layer (conv1 on patches, conv10) in a program with a Fire layer before it:
    bit-exact with golden conv1x1, cycles as the plain-layer model; the program's Fire layer
    still exact; the plain layer with gaps and back-pressure. (Plain and Fire runs one after
    the other in one simulation: tests/test_network_accelerator.py.)"""
    from golden.fixed import conv1x1
    from golden.network import Conv
    from hw.fire.cycle_model import run_cycles
    from testkit.fire_cases import random_qconv

    rng = np.random.default_rng(lanes * 100 + cin)
    fire = random_fire(rng, "fireA", 6, 3, 4, 4, density=0.5)
    plain = random_qconv(rng, Conv("convP", cout, cin, 1), density=0.5)
    program = EngineProgram([("fireA", 5, 5, *fire), ("convP", height, width, plain)])
    engine = FireEngine(program, lanes=lanes, channels_per_beat=beat,
                        channels_per_cycle=per_cycle)
    x = rng.integers(0, 256, (cin, height, width)).astype(np.uint8)
    got, cycles, framing = run_layer(engine, 1, x, cout)
    np.testing.assert_array_equal(got, conv1x1(x, plain))
    assert framing[0][0] == 1 and framing[-1][1] == 1
    assert cycles == run_cycles(program.layers[1], lanes=lanes, channels_per_beat=beat,
                                channels_per_cycle=per_cycle).cycles
    x_fire = rng.integers(0, 256, (6, 5, 5)).astype(np.uint8)
    assert check(engine, 0, x_fire, fire) == predicted(engine, 0, 5, 5)
    got, _, _ = run_layer(engine, 1, x, cout, valid_prob=0.5, ready_prob=0.4, seed=3)
    np.testing.assert_array_equal(got, conv1x1(x, plain))
