"""hw.fire.program: the engine's memory images, and the limits it takes from golden."""

import numpy as np
import pytest

from golden.codec import MAX_CODE_BITS, MIN_CODE_BITS, entry_positions
from golden.fixed import WEIGHT_BITS_RANGE
from hw.fire.program import EngineProgram, hardware_entries

from testkit.fire_cases import random_fire


def test_hardware_entries_keep_a_covered_layer_as_stored():
    codes = np.array([5, 0, 7], np.uint8)
    rel = np.array([1, 15, 2], np.uint8)   # positions 1, 17, 20: both channels of 16 covered
    out_codes, out_rel = hardware_entries(codes, rel, out_channels=2, per_channel=16)
    np.testing.assert_array_equal(out_codes, codes)
    np.testing.assert_array_equal(out_rel, rel)
    assert out_codes is not codes


def test_hardware_entries_add_a_filler_per_empty_channel():
    # Channels of 20 weights: weights at 3 and 65; channels 1 and 2 are empty.
    codes, rel = hardware_entries(np.array([4, 9], np.uint8), np.array([3, 61], np.uint8),
                                  out_channels=4, per_channel=20)
    positions = entry_positions(rel)
    # Fillers at 20 and 40 (each empty channel's start) and 16 after 3, 20 and 40 (gaps over
    # 16 need one every 16 positions).
    np.testing.assert_array_equal(positions, [3, 19, 20, 36, 40, 56, 65])
    np.testing.assert_array_equal(codes, [4, 0, 0, 0, 0, 0, 9])
    assert codes.dtype == rel.dtype == np.uint8


def test_hardware_entries_reject_entries_past_the_layer():
    with pytest.raises(ValueError, match="run past the layer's 8 weights"):
        hardware_entries(np.array([1], np.uint8), np.array([9], np.uint8), out_channels=2,
                         per_channel=4)


@pytest.fixture(scope="module")
def fires():
    rng = np.random.default_rng(3)
    return [("fireT", 3, 4, *random_fire(rng, "fireT", 6, 3, 4, 4, density=0.5))]


def test_width_limits_are_golden(fires):
    low, high = WEIGHT_BITS_RANGE
    for code_bits in (MIN_CODE_BITS, MAX_CODE_BITS):
        with pytest.raises(ValueError, match=f"^Weight width must be an integer from {low} to "
                                             f"{high}, not {low - 1}$"):
            EngineProgram(fires, code_bits=code_bits, weight_bits=low - 1)
    with pytest.raises(ValueError, match=f"^Weight width must be an integer from {low} to "
                                         f"{high}, not {high + 1}$"):
        EngineProgram(fires, weight_bits=high + 1)
    for code_bits in (MIN_CODE_BITS - 1, MAX_CODE_BITS + 1):
        with pytest.raises(ValueError, match=f"^Code width must be an integer from 4 to 8, "
                                             f"not {code_bits}$"):
            EngineProgram(fires, code_bits=code_bits)


@pytest.mark.parametrize("field, value, message", [
    ("code_bits", 8.0, "^Code width must be an integer from 4 to 8, not 8.0$"),
    ("code_bits", True, "^Code width must be an integer from 4 to 8, not True$"),
    ("weight_bits", "16", "^Weight width must be an integer from 8 to 18, not '16'$"),
    ("weight_bits", None, "^Weight width must be an integer from 8 to 18, not None$"),
])
def test_wrong_types(fires, field, value, message):
    with pytest.raises(TypeError, match=message):
        EngineProgram(fires, **{field: value})


def test_program_layout(fires):
    program = EngineProgram(fires)
    fire = program.fires[0]
    assert program.entry_width == 12 and program.code_bits == 8 and program.weight_bits == 16
    assert [c.entry_base for c in fire.convs] == [0, fire.squeeze.entry_count,
                                                  fire.squeeze.entry_count
                                                  + fire.expand1x1.entry_count]
    assert program.entries.size == sum(c.entry_count for c in fire.convs)
    assert program.max("out_channels") == 8
