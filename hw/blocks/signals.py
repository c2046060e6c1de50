"""Small signal helpers: delay lines for pipeline side information, address-field widths."""

from amaranth.hdl import Cat, Const, Signal

__all__ = ["delay", "zero_extend"]


def delay(m, value, cycles, name):
    """``value`` as seen ``cycles`` cycles later: a chain of ``sync`` registers in ``m``.

    The registers are named ``{name}_d1``, ``{name}_d2``, ... so waveforms show which stage
    they belong to. Latency ``cycles``; one value per cycle.
    """
    for n in range(cycles):
        reg = Signal.like(value, name=f"{name}_d{n + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def zero_extend(value, width):
    """``value`` zero-extended or truncated to exactly ``width`` bits (an address field)."""
    return Cat(value, Const(0, width))[:width]
