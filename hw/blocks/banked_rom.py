"""Banked ROM: a read-only memory split into block-RAM-sized banks, every output registered.

A deep memory is split into banks of ``bank_depth`` words: each bank is one Amaranth
``Memory`` with a synchronous read port, each bank's output is registered, and a registered
multiplexer picks the addressed bank. Block RAM clock-to-out then never feeds logic directly
(the first ECP5 build lost 25% of its clock rate to the 12-bank multiplexer of a 57k-entry
store), and the planner sees memories of a known geometry. Reads take five cycles.
"""

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hw.blocks.signals import delay

__all__ = ["BankedROM", "DEFAULT_BANK_DEPTH"]

DEFAULT_BANK_DEPTH = 4096


def _check_bank_depth(bank_depth):
    if not isinstance(bank_depth, int) or isinstance(bank_depth, bool):
        raise TypeError(f"Bank depth must be an integer, not {bank_depth!r}")
    if bank_depth < 16 or bank_depth & (bank_depth - 1):
        raise ValueError(f"Bank depth must be a power of two of at least 16, not {bank_depth!r}")


class BankedROM(wiring.Component):
    """A read-only memory split into banks, read with latency 5 (one word per cycle).

    The address is registered first (it fans out to every bank, across the chip), then the
    banks' block RAM outputs are registered (on ECP5 in the block RAM itself), then registered
    again (these registers can sit by the multiplexer: the route from a bank across the chip
    has a cycle of its own), then the addressed bank's word: RAM outputs and the bank
    multiplexer each feed only a register.

    Parameters
    ----------
    shape : Shape
    init : list of int
    bank_depth : int
        Words per bank, a power of two.

    Members
    -------
    addr : In(range(len(init)))
    data : Out(shape)
        The word at ``addr`` of five cycles before.
    """

    latency = 5

    def __init__(self, shape, init, *, bank_depth=DEFAULT_BANK_DEPTH):
        _check_bank_depth(bank_depth)
        if not len(init):
            raise ValueError("A ROM needs at least one word")
        self._shape = shape
        self._init = [int(v) for v in init]
        self._bank_depth = min(bank_depth, 1 << ceil_log2(len(self._init)))
        super().__init__({"addr": In(range(max(2, len(self._init)))), "data": Out(shape)})

    @property
    def banks(self):
        """``[(depth, init_slice)]`` of every bank, for the BRAM planner."""
        d = self._bank_depth
        return [self._init[i:i + d] for i in range(0, len(self._init), d)]

    def elaborate(self, platform):
        m = Module()
        low_bits = ceil_log2(self._bank_depth)
        addr = Signal.like(self.addr)
        m.d.sync += addr.eq(self.addr)
        outputs = []
        for index, init in enumerate(self.banks):
            bank = Memory(shape=self._shape, depth=len(init), init=init)
            m.submodules[f"bank{index}"] = bank
            port = bank.read_port()
            m.d.comb += port.addr.eq(addr[:low_bits] if low_bits else 0)
            registered = Signal(self._shape, name=f"bank{index}_data")
            near_mux = Signal(self._shape, name=f"bank{index}_near")
            m.d.sync += [registered.eq(port.data), near_mux.eq(registered)]
            outputs.append(near_mux)
        select = Signal(range(len(outputs)))
        if len(outputs) == 1:
            m.d.sync += self.data.eq(outputs[0])
        else:
            select_read = Signal.like(select)
            m.d.sync += [select.eq(addr[low_bits:]), select_read.eq(delay(m, select, 1,
                                                                           "select_near"))]
            with m.Switch(select_read):
                for index, value in enumerate(outputs):
                    with m.Case(index):
                        m.d.sync += self.data.eq(value)
        return m
