"""Small signal helpers: delay lines for pipeline side information, address-field widths."""

from amaranth.hdl import Cat, Const, Signal

__all__ = ["delay", "zero_extend"]


def delay(m, value, cycles, name):
    """``value`` as seen ``cycles`` cycles later: a chain of ``sync`` registers in ``m``.

    The last register is named ``name`` (a pipeline's ``x_c12`` is the register that holds x in
    cycle 12), the ones before it ``{name}_d1``, ``{name}_d2``, ... Latency ``cycles``; one value
    per cycle.
    """
    for n in range(cycles):
        reg = Signal.like(value, name=name if n == cycles - 1 else f"{name}_d{n + 1}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


def zero_extend(value, width):
    """``value`` zero-extended or truncated to exactly ``width`` bits (an address field)."""
    return Cat(value, Const(0, width))[:width]
