"""Byte rotator: a window of a ring of bytes at any offset, as a pipelined logarithmic shifter.

``o_data`` byte k is ``i_data`` byte ``(k + amount) mod N``, or zero where ``mask`` bit k is
clear. Stage j moves the bytes by ``2**j`` when bit j of ``amount`` is set; each stage keeps
only the bytes the later stages can still reach, so the last stage is ``out_bytes`` wide. That
is about ``8 * (N * (log2(N) - 1) + out_bytes)`` two-input multiplexers in all.

The line buffer's rotation was written as a bit-granular ``bit_select`` over 2P bytes; Yosys
made 20k LUT4 of it for 64 lanes on ECP5, half of the whole 64-lane engine, and its routing
congestion set the build time. This form spells the byte shifter out, and can put registers
between its stages (``cuts``).
"""

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

__all__ = ["ByteRotator"]


class ByteRotator(wiring.Component):
    """Rotate a ring of ``ring_bytes`` bytes and keep the first ``out_bytes``, masked.

    Latency ``cuts + 1`` (a register after every chunk of stages and on the output);
    throughput one rotation per cycle.

    Parameters
    ----------
    ring_bytes : int
        N, a power of two of at least 2.
    out_bytes : int
        1 .. N.
    cuts : int
        Registers between stages, 0 .. log2(N) - 1; the stages are split evenly around them.

    Members
    -------
    i_data : In(unsigned(8 * ring_bytes))
    amount : In(unsigned(log2(ring_bytes)))
    mask : In(unsigned(out_bytes))
    o_data : Out(unsigned(8 * out_bytes))
    """

    def __init__(self, ring_bytes, out_bytes, *, cuts=0):
        for name, value in (("Ring bytes", ring_bytes), ("Output bytes", out_bytes),
                            ("Cuts", cuts)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
        if ring_bytes < 2 or ring_bytes & (ring_bytes - 1):
            raise ValueError(f"Ring bytes must be a power of two of at least 2, "
                             f"not {ring_bytes!r}")
        if not 1 <= out_bytes <= ring_bytes:
            raise ValueError(f"Output bytes must be 1 .. {ring_bytes}, not {out_bytes!r}")
        bits = exact_log2(ring_bytes)
        if not 0 <= cuts < bits:
            raise ValueError(f"Cuts must be 0 .. {bits - 1} for {ring_bytes} bytes, "
                             f"not {cuts!r}")
        self._n, self._out, self._cuts = ring_bytes, out_bytes, cuts
        self.latency = cuts + 1
        super().__init__({
            "i_data": In(unsigned(8 * ring_bytes)),
            "amount": In(unsigned(bits)),
            "mask": In(unsigned(out_bytes)),
            "o_data": Out(unsigned(8 * out_bytes)),
        })

    def _cut_after(self):
        """Stages after which a register is placed (the stages split evenly)."""
        bits = exact_log2(self._n)
        return {round(bits * (i + 1) / (self._cuts + 1)) - 1 for i in range(self._cuts)}

    def elaborate(self, platform):
        m = Module()
        n, bits = self._n, exact_log2(self._n)
        x = [self.i_data[8 * i:8 * i + 8] for i in range(n)]
        amount, mask = self.amount, self.mask
        cut_after = self._cut_after()
        for j in range(bits):
            step = 1 << j
            # Bytes still needed: the output plus what the later stages can still shift in.
            width = min(n, self._out + n - (step << 1))
            x = [Mux(amount[j], x[(i + step) % len(x)], x[i]) for i in range(width)]
            if j in cut_after:
                regs = [Signal(8, name=f"s{j}_b{i}") for i in range(width)]
                m.d.sync += [r.eq(v) for r, v in zip(regs, x)]
                later = Signal.like(amount, name=f"amount_s{j}"), Signal.like(mask,
                                                                            name=f"mask_s{j}")
                m.d.sync += [later[0].eq(amount), later[1].eq(mask)]
                x, (amount, mask) = regs, later
        m.d.sync += self.o_data.eq(Cat(*(Mux(mask[k], x[k], 0) for k in range(self._out))))
        return m
