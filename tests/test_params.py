"""The shared parameter checks: right exception type, message naming the parameter."""

import pytest

from hw.blocks.params import check_int, check_lanes, check_power_of_two


@pytest.mark.parametrize("args,exc,message", [
    (("Lanes", 4.0), TypeError, "^Lanes must be an integer, not 4.0$"),
    (("Lanes", True), TypeError, "^Lanes must be an integer, not True$"),
    (("Lanes", 0, 1, 8), ValueError, "^Lanes must be from 1 to 8, not 0$"),
    (("Lanes", 9, 1, 8), ValueError, "^Lanes must be from 1 to 8, not 9$"),
    (("Lanes", 0, 1), ValueError, "^Lanes must be at least 1, not 0$"),
    (("Lanes", 9, None, 8), ValueError, "^Lanes must be at most 8, not 9$"),
])
def test_check_int_errors(args, exc, message):
    with pytest.raises(exc, match=message):
        check_int(*args)


def test_check_int_passes_values_in_range():
    assert check_int("Lanes", 8, 1, 8) == 8 and check_int("Lanes", -3) == -3


@pytest.mark.parametrize("value,exc,message", [
    (3, ValueError, "^Depth must be a power of two, not 3$"),
    (0, ValueError, "^Depth must be a power of two, not 0$"),
    ("4", TypeError, "^Depth must be an integer, not '4'$"),
])
def test_check_power_of_two_errors(value, exc, message):
    with pytest.raises(exc, match=message):
        check_power_of_two("Depth", value)


def test_powers_of_two_pass():
    assert [check_power_of_two("Depth", 1 << n) for n in range(11)] == [1 << n for n in range(11)]


@pytest.mark.parametrize("value", [1, 2, 4, 8, 16, 24, 40, 240, 1024])
def test_check_lanes_passes_powers_of_two_and_multiples_of_8(value):
    assert check_lanes(value) == value


@pytest.mark.parametrize("value,exc", [(3, ValueError), (12, ValueError), (0, ValueError),
                                       (1032, ValueError), (6, ValueError), (8.0, TypeError)])
def test_check_lanes_errors(value, exc):
    with pytest.raises(exc, match="^Lane count must be"):
        check_lanes(value)
