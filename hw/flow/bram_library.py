"""Yosys 0.70's block-RAM and LUT-RAM primitive library, as ``memory_libmap`` prices it.

Data for :mod:`hw.flow.planner`: every variant of the ``ram`` definitions in Yosys'
``techlibs`` files for the three families (geometry, cost, write-enable width, emulation score)
and the pass's cost factors. Copied from the Yosys sources named beside each list; the
planner's module docstring explains how they are used.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Candidate", "LIBRARIES", "LOGIC_COST", "FACTOR_MUX", "FACTOR_DEMUX",
           "FACTOR_EMU"]


@dataclass(frozen=True)
class Candidate:
    # One variant of a Yosys ``ram`` definition (each ``option`` value is its own variant).
    name: str
    kind: str                 # "block" or "distributed"
    abits: int
    dbits: tuple
    cost: int
    widthscale: int = 0       # part of the cost that scales with the used width
    byte: int = 0             # write-enable granularity, 0 = one enable per port
    rom: bool = True          # False with ``prune_rom``
    ram: bool = True          # can take a sync read port and a separate write port
    rd_max: int | None = None  # index into dbits of the widest read width
    wr_min: int = 0           # index into dbits of the narrowest write width
    wr_max: int | None = None
    score_rom: int = 1        # memory_libmap's emulation score for our ROM / RAM
    score_ram: int = 1
    cells: tuple = ()         # (cell name, cells per mapped unit)


# memory_libmap's emulation score: +1 for a read port not shared with a write port; for a RAM
# on a block RAM without a "read old data" write-transparency capability (ecp5 DP16KD/PDPW16KD,
# iCE40) Yosys emulates read-first: +3 per write port, +3 for the soft transparency logic.
RDFIRST_EMU = 1 + 3 + 3

_X7_BRAM = [
    # techlibs/xilinx/brams_xc4v.txt with -D HAS_SIZE_36 -D HAS_CASCADE -D HAS_CONFLICT_BUG
    # -D HAS_MIXWIDTH_SDP (synth_xilinx -family xc7); TDP is listed before SDP.
    Candidate("TDP HALF", "block", 14, (1, 2, 4, 9, 18), 129, byte=9,
               cells=(("RAMB18E1", 1),)),
    Candidate("TDP FULL", "block", 15, (1, 2, 4, 9, 18, 36), 257, byte=9,
               cells=(("RAMB36E1", 1),)),
    Candidate("TDP CASCADE", "block", 16, (1, 2, 4, 9), 513, byte=9, rd_max=0, wr_max=0,
               cells=(("RAMB36E1", 2),)),
    Candidate("SDP HALF", "block", 14, (1, 2, 4, 9, 18, 36), 129, byte=9,
               cells=(("RAMB18E1", 1),)),
    Candidate("SDP FULL", "block", 15, (1, 2, 4, 9, 18, 36, 72), 257, byte=9,
               cells=(("RAMB36E1", 1),)),
]
_X7_LUTRAM = [
    # techlibs/xilinx/lutrams_xc5v.txt; all carry prune_rom. Single-port RAMs cannot serve a
    # separate read address and are left out.
    Candidate("LUTRAM DP 5", "distributed", 5, (4,), 8, widthscale=8, rom=False),
    Candidate("LUTRAM DP 6", "distributed", 6, (2,), 8, widthscale=8, rom=False),
    Candidate("LUTRAM DP 7", "distributed", 7, (1,), 8, widthscale=8, rom=False),
    Candidate("LUTRAM QP 5", "distributed", 5, (2,), 7, widthscale=7, rom=False),
    Candidate("LUTRAM QP 6", "distributed", 6, (1,), 7, widthscale=7, rom=False),
    Candidate("LUTRAM SDP 5", "distributed", 5, (6,), 8, widthscale=7, rom=False),
    Candidate("LUTRAM SDP 6", "distributed", 6, (3,), 8, widthscale=7, rom=False),
]
_ECP5 = [
    # techlibs/lattice/lutrams_trellis.txt, brams_16kd.txt
    Candidate("TRELLIS_DPR16X4", "distributed", 4, (4,), 4, rom=False),
    Candidate("DP16KD", "block", 14, (1, 2, 4, 9, 18), 128, byte=9, score_ram=RDFIRST_EMU,
               cells=(("DP16KD", 1),)),
    Candidate("PDPW16KD", "block", 14, (1, 2, 4, 9, 18, 36), 128, byte=9, wr_min=5,
               score_ram=RDFIRST_EMU, cells=(("DP16KD", 1),)),  # brams_map_16kd.v: a DP16KD
]
_ICE40 = [
    # techlibs/ice40/brams.txt: option HAS_BE 0 (write widths 2..8) and 1 (write width 16 with
    # bit enables).
    Candidate("RAM4K HAS_BE=0", "block", 11, (2, 4, 8, 16), 64, wr_max=2,
               score_ram=RDFIRST_EMU, cells=(("SB_RAM40_4K", 1),)),
    Candidate("RAM4K HAS_BE=1", "block", 11, (2, 4, 8, 16), 64, byte=1, wr_min=3,
               score_ram=RDFIRST_EMU, cells=(("SB_RAM40_4K", 1),)),
]

#: Candidates per family in ``memory_libmap``'s library order (LUT RAMs first).
LIBRARIES = {"xc7": _X7_LUTRAM + _X7_BRAM, "ecp5": _ECP5, "ice40": _ICE40}

#: Cost per bit of mapping a memory to soft logic, (ROM, RAM), per family.
LOGIC_COST = {"xc7": (1 / 64, 1.0), "ecp5": (1 / 16, 1.0), "ice40": (1 / 16, 1.0)}

FACTOR_MUX = 0.5
FACTOR_DEMUX = 0.5
FACTOR_EMU = 2
