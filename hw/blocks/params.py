"""Parameter checks shared by the blocks: ``TypeError`` for a wrong type, ``ValueError`` for a
wrong value, with messages shaped "Lane count must be a power of two, not 3"."""

__all__ = ["check_int", "check_lanes", "check_power_of_two"]


def check_int(name, value, low=None, high=None):
    """Return ``value`` if it is an integer (not a bool) within ``low..high`` (either optional).

    Raises
    ------
    TypeError
        If ``value`` is not an integer.
    ValueError
        If it is outside the range.
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if low is not None and high is not None and not low <= value <= high:
        raise ValueError(f"{name} must be from {low} to {high}, not {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{name} must be at least {low}, not {value!r}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be at most {high}, not {value!r}")
    return value


def check_power_of_two(name, value):
    """Return ``value`` if it is an integer power of two (1, 2, 4, ...); else raise as
    :func:`check_int` does."""
    check_int(name, value)
    if value < 1 or value & (value - 1):
        raise ValueError(f"{name} must be a power of two, not {value!r}")
    return value


def check_lanes(value, high=1024):
    """Return ``value`` if it is a valid pixel-lane count: a power of two up to 8, or a multiple
    of 8 (the engines work in blocks of 8 lanes), at most ``high``; else raise as
    :func:`check_int` does."""
    check_int("Lane count", value)
    if not 1 <= value <= high or (value % 8 if value > 8 else value & (value - 1)):
        raise ValueError(f"Lane count must be 1, 2, 4 or a multiple of 8 up to {high}, "
                         f"not {value!r}")
    return value
