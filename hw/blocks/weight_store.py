"""Weight store: every selected layer's sparse entries, codebooks and biases in block RAM.

Three :class:`~hw.blocks.banked_rom.BankedROM` memories initialised from an engine program
(:class:`~hw.fire.program.EngineProgram`):

- ``entries``: ``code | rel << code_bits`` per stored entry (fillers included), all layers;
- ``codebooks``: ``2**code_bits`` signed ``weight_bits`` values per convolution;
- ``biases``: a signed 32-bit bias per output channel per convolution.
"""

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.blocks.banked_rom import DEFAULT_BANK_DEPTH, BankedROM

__all__ = ["WeightStore", "DEFAULT_BANK_DEPTH"]


class WeightStore(wiring.Component):
    """Entries, codebooks and biases of an engine program.

    Each of the three reads has latency :attr:`latency` (4) and takes one address per cycle.

    Parameters
    ----------
    program : EngineProgram
        Anything with ``entries``, ``codebooks``, ``biases`` (integer arrays), ``entry_width``
        and ``weight_bits``.
    bank_depth : int
        Words per bank of the banked memories (see module docstring).

    Members
    -------
    entry_addr : In(range(entries)); entry : Out(unsigned(code_bits + 4))
    codebook_addr : In(range(codebook words)); weight : Out(signed(weight_bits))
    bias_addr : In(range(biases)); bias : Out(signed(32))
    """

    latency = BankedROM.latency

    def __init__(self, program, *, bank_depth=DEFAULT_BANK_DEPTH):
        self.entries = BankedROM(unsigned(program.entry_width), program.entries,
                                 bank_depth=bank_depth)
        self.codebooks = BankedROM(signed(program.weight_bits), program.codebooks,
                                   bank_depth=bank_depth)
        self.biases = BankedROM(signed(32), program.biases, bank_depth=bank_depth)
        super().__init__({
            "entry_addr": In(range(max(2, len(program.entries)))),
            "entry": Out(unsigned(program.entry_width)),
            "codebook_addr": In(range(max(2, len(program.codebooks)))),
            "weight": Out(signed(program.weight_bits)),
            "bias_addr": In(range(max(2, len(program.biases)))),
            "bias": Out(signed(32)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.entries = self.entries
        m.submodules.codebooks = self.codebooks
        m.submodules.biases = self.biases
        m.d.comb += [
            self.entries.addr.eq(self.entry_addr), self.entry.eq(self.entries.data),
            self.codebooks.addr.eq(self.codebook_addr), self.weight.eq(self.codebooks.data),
            self.biases.addr.eq(self.bias_addr), self.bias.eq(self.biases.data),
        ]
        return m
