"""Block-RAM planner: how many primitives Yosys will give each memory, and does it all fit.

The prediction re-enacts the decision of Yosys 0.70's ``memory_libmap`` pass for the two
memory shapes the engine uses: a ROM (one synchronous read port, initial contents) and a RAM
(one synchronous read port plus one write port in the same clock domain, separate addresses,
read-old-data on collision -- Amaranth's default ``transparent_for=()``). ``memory_libmap``
prices every candidate -- the family's block RAMs in each width/depth aspect, its LUT RAMs, and
"soft logic" (LUTs and flip-flops) -- and takes the cheapest:

* soft logic costs ``width * depth * c`` with ``c`` = 1 per bit for a RAM, 1/64 per bit for a
  ROM on xc7 (``synth_xilinx`` passes ``-logic-cost-rom 0.015625``) and 1/16 on ecp5/ice40;
* a block-RAM candidate with base width ``u`` (one of the primitive's widths) covers
  ``2**abits / u`` words; a memory of ``depth`` words needs ``a = ceil(depth / words)`` address
  slices, each ``s`` bits wide (the "swizzle", see below), and Yosys packs slices side by side,
  so the count is ``ceil(a * s / u)`` primitives; its cost is ``primitive cost * count +
  (a - 1) * width / 2`` (read multiplexer) ``+ a * enables / 2`` if RAM and ``a > 1`` (write
  decoder, one per write-enable bit) ``+ 2 * emulation score``;
* LUT RAM (RAM only; LUT RAMs are disqualified for ROMs with ``prune_rom``) likewise, with cost
  scaling with the used width.

Write-enable granularity (``MemorySpec.granularity``, Amaranth's ``write_port(granularity=g)``)
enters through the swizzle. ``memory_libmap`` starts every group of bits with its own write
enable (a "byte" of the source memory) at a multiple of the candidate's *effective byte* ``e``
and pads the word to a multiple of ``e``: ``s = (width / g) * ceil(g / e) * e``. A ROM has
``e = 1`` (``s = width``); a RAM has ``e = min(byte, u)`` where ``byte`` is the primitive's
write-enable width, or ``e = u`` when it has none:

* xc7 RAMB18E1/RAMB36E1 (``byte 9``): widths 9/18/36/72 take one enable per 9 bits, so byte
  enables (``g = 8``) cost a parity bit per byte: 512 x 512 with ``g = 8`` is 64 x 9 = 576
  bits a word, 8 RAMB36E1 (72 x 512); with one enable (``g = 512``) it is 513 bits, 15
  RAMB18E1 (36 x 512). Narrower groups (``g = 4``) each take a whole 9-bit byte (or a 4-bit
  unit in the 4-wide aspect).
* ecp5 DP16KD (``byte 9``, 9/18 wide; PDPW16KD 36 wide): the same 9-bit bytes.
* iCE40 SB_RAM40_4K: the 16-bit write mode has a bit mask (``byte 1``), so any granularity
  packs without padding; the 2/4/8-bit write modes have no enables (``e = u``). Granularity
  only changes the write-decoder cost there.
* LUT RAMs have no byte enables (``e = u``): groups narrower than the LUT RAM's width are
  padded, e.g. to 6 bits on xc7 (RAM32M).

Yosys sees separate enables only where the design drives them separately; Amaranth keeps one
enable signal per ``g`` bits, so the declared granularity is what ``memory_libmap`` sees.

Yosys' ``opt_mem`` also removes ROM bit columns that are constant over all words before
mapping; ``MemorySpec.const_lanes`` counts them (``hw.flow.memories`` reads them from the initial
contents), and the planner maps ``width - const_lanes`` columns.

Primitive costs and geometries are copied from Yosys' ``techlibs`` files, see
:mod:`hw.flow.bram_library`.
Yosys keeps the cheapest candidate of each kind (block / distributed) and then takes a
candidate only if it is strictly cheaper than soft logic, with both costs truncated to integers
on the way (``int best = logic_cost``) -- reproduced here because it decides ties.

Resulting boundaries, all confirmed by synthesis (depth at which block RAM starts):

======  ===================================  =============================================
family  ROM (soft logic below)               RAM (LUT RAM below, flip-flops on ice40)
======  ===================================  =============================================
xc7     8,448 bits: 16 x 528, 64 x 260       1 x 1,921; 16 x 129; 64 x 65
ecp5    2,096 bits: 16 x 131, 36 x 59        1 x 449; 16 x 97; 36 x 33
ice40   1,072 bits: 16 x 67, 18 x 117        16 x 5 (80 bits); 18 x 8
======  ===================================  =============================================

Above the boundary Yosys packs address slices side by side, so a large memory costs about
``ceil(bits / data bits of the primitive's widest aspect)`` (RAM widths rounded up to 9-bit
bytes on xc7/ecp5): a 64 x 65,536 ROM is 114 RAMB36E1 (72 x 512) on xc7 and 228 DP16KD
(36 x 512) on ecp5; xc7 may prefer RAMB18 halves (16 x 16,384 is 15 RAMB18E1 = 7.5 sites).

Validated against synthesis by ``python -m hw.flow.bram_calibration`` (``--granularity`` for byte
enables: 0 mismatches over 94 xc7, 63 ecp5 and 52 iCE40 shapes with ``g = 8`` and 249 more with
``g`` = 1, 2, 4 or 16) and ``tests/test_planner.py`` (including a whole ``FireSystem``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from boards import get_device
from boards.devices import Device
from hw.flow.bram_library import (FACTOR_DEMUX, FACTOR_EMU, FACTOR_MUX, LIBRARIES,
                                  LOGIC_COST)

__all__ = ["MemorySpec", "Placement", "Plan", "predict", "plan_memories", "LOGIC_COST",
           "STYLES"]

#: Mapping styles a memory may ask for (:attr:`MemorySpec.style`).
STYLES = (None, "distributed")




@dataclass(frozen=True)
class MemorySpec:
    """A memory to place.

    Parameters
    ----------
    name : str
    width : int
        Bits per word.
    depth : int
        Words.
    write_port : bool
        ``False`` for a ROM (read port and initial contents only), ``True`` for a RAM with one
        write port in the read port's clock domain.
    granularity : int or None
        Write-enable granularity of the write port in bits (Amaranth's
        ``write_port(granularity=...)``): ``width // granularity`` enables, one per
        ``granularity`` bits. ``None`` (default) means one enable for the whole word, which is
        also what a ROM has; a granularity equal to ``width`` is stored as ``None``.
    const_lanes : int
        ROM only: bit columns ("lanes") whose value is the same in every word. Yosys' ``opt_mem``
        removes them before mapping, so only ``width - const_lanes`` columns are placed
        (:attr:`mapped_width`). :func:`hw.flow.memories.design_memories` counts them from the
        initial contents.
    style : str or None
        ``"distributed"``: the memory asks for LUT RAM (its ``ram_style`` attribute), which
        Yosys' ``memory_libmap`` then uses whatever the block-RAM cost (not soft logic either).
        ``None`` (default): the cheapest mapping.
    """

    name: str
    width: int
    depth: int
    write_port: bool = False
    granularity: int | None = None
    const_lanes: int = 0
    style: str | None = None

    def __post_init__(self):
        for what, value in (("width", self.width), ("depth", self.depth)):
            message = f"Memory {what} must be a positive integer, not {value!r}"
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(message)
            if value < 1:
                raise ValueError(message)
        g = self.granularity
        if g is not None:
            if not self.write_port:
                raise ValueError("A ROM has no write-enable granularity")
            message = (f"Write-enable granularity must be a positive divisor of the width "
                       f"{self.width}, not {g!r}")
            if isinstance(g, bool) or not isinstance(g, int):
                raise TypeError(message)
            if g < 1 or self.width % g:
                raise ValueError(message)
            if g == self.width:
                object.__setattr__(self, "granularity", None)
        c = self.const_lanes
        message = f"Constant lanes must be an integer from 0 to the width {self.width}, not {c!r}"
        if isinstance(c, bool) or not isinstance(c, int):
            raise TypeError(message)
        if not 0 <= c <= self.width:
            raise ValueError(message)
        if c and self.write_port:
            raise ValueError("Only a ROM can have constant lanes")
        if self.style not in STYLES:
            raise ValueError(f"Memory style must be one of {STYLES!r}, not {self.style!r}")

    @property
    def mapped_width(self):
        """Bits per word that Yosys maps: ``width - const_lanes``."""
        return self.width - self.const_lanes

    @property
    def write_enables(self):
        """Number of write enables: ``width // granularity``, 1 for a whole-word enable, 0 for
        a ROM."""
        if not self.write_port:
            return 0
        return 1 if self.granularity is None else self.width // self.granularity

    @property
    def bits(self):
        return self.width * self.depth


@dataclass(frozen=True)
class Placement:
    """Predicted mapping of one memory (a row of a :class:`Plan`).

    Members
    -------
    name, width, depth, bits : as in :class:`MemorySpec` (``bits = width * depth``)
    kind : str
        ``"block"``, ``"distributed"`` (LUT RAM) or ``"logic"`` (LUTs and flip-flops).
    via : str
        The Yosys candidate chosen (e.g. ``"SDP FULL"``), ``"logic"`` for soft logic,
        ``"constant"`` for a ROM whose every lane is constant (no memory left to map).
    cells : dict of str to int
        Block-RAM cells by type; empty unless ``kind == "block"``.
    primitives : int
        Number of block-RAM cells (``sum(cells.values())``).
    sites : float
        Block-RAM sites in the device's unit (a ``RAMB18E1`` is half a RAMB36 site).
    bits_allocated : int
        Capacity of those cells, parity bits included.
    cost : float
        ``memory_libmap``'s cost of the chosen mapping.
    """

    name: str
    width: int
    depth: int
    bits: int
    kind: str
    via: str
    cells: dict
    primitives: int
    sites: float
    bits_allocated: int
    cost: float


@dataclass(frozen=True)
class Plan:
    """Block-RAM plan of a list of memories on one device.

    Members
    -------
    device : boards.Device
    rows : tuple of Placement
    cells : dict of str to int
        Block-RAM cells by type over all rows.
    bits_used : int
        Sum of ``width * depth`` over all memories (including LUT-mapped ones).
    bits_allocated : int
        Capacity of all block-RAM cells.
    primitives : int
        Block-RAM cells in total (a ``RAMB18E1`` and a ``RAMB36E1`` count 1 each).
    sites : int
        Block-RAM sites needed: on xc7 ``RAMB36E1 + ceil(RAMB18E1 / 2)`` (two RAMB18 share a
        site), elsewhere the number of primitives.
    available : int
        Block-RAM sites of the device.
    fits : bool
        ``sites <= available``.
    """

    device: Device
    rows: tuple
    cells: dict
    bits_used: int
    bits_allocated: int
    primitives: int
    sites: int
    available: int
    fits: bool = field(default=False)

    @property
    def utilisation(self):
        """Fraction of the device's block-RAM sites used."""
        return self.sites / self.available

    def to_dict(self):
        """Plain JSON-ready dictionary of the plan (device by name)."""
        return {
            "device": self.device.name, "family": self.device.family,
            "rows": [dict(r.__dict__) for r in self.rows], "cells": dict(self.cells),
            "bits_used": self.bits_used, "bits_allocated": self.bits_allocated,
            "primitives": self.primitives, "sites": self.sites, "available": self.available,
            "fits": self.fits,
        }

    def table(self):
        """The plan as a fixed-width text table (one line per memory plus a total)."""
        lines = [f"{'memory':24s} {'width':>5s} {'depth':>7s} {'bits':>9s} {'kind':>11s} "
                 f"{'prims':>5s} {'alloc':>9s}  cells"]
        for r in self.rows:
            cells = ", ".join(f"{v} {k}" for k, v in sorted(r.cells.items()))
            lines.append(f"{r.name:24s} {r.width:5d} {r.depth:7d} {r.bits:9d} {r.kind:>11s} "
                         f"{r.primitives:5d} {r.bits_allocated:9d}  {cells}")
        lines.append(f"{'total':24s} {'':5s} {'':7s} {self.bits_used:9d} {'':>11s} "
                     f"{self.primitives:5d} {self.bits_allocated:9d}  {self.sites} of "
                     f"{self.available} sites on {self.device.name}: "
                     f"{'fits' if self.fits else 'DOES NOT FIT'}")
        return "\n".join(lines)


def _geometry(cand, mem):
    # memory_libmap's handle_geom() for a memory without wide ports, starting at address 0.
    ram = mem.write_port
    n = len(cand.dbits)
    rd_max = n - 1 if cand.rd_max is None else cand.rd_max
    wr_max = n - 1 if cand.wr_max is None else cand.wr_max
    byte_log2 = n - 1
    if cand.byte:
        byte_log2 = 0
        for i, w in enumerate(cand.dbits):
            if cand.byte >= w:
                byte_log2 = i
    best = None
    best_cost = 0  # Yosys keeps the running best in an int
    for base in range(n):
        unit = min(base, rd_max, wr_max) if ram else min(base, rd_max)
        if unit != base and best is not None:
            break
        unit_width = cand.dbits[unit]
        if ram and base < cand.wr_min and base < byte_log2:
            continue  # write port narrower than its minimum width
        eff_byte = cand.byte if cand.byte and cand.byte <= unit_width else unit_width
        if not ram:
            eff_byte = 1
        # The swizzle: every write-enable group of the source word starts at a multiple of the
        # effective byte, and the word is padded to one at the end.
        group = mem.granularity or mem.width
        swizzle = (mem.width // group) * (math.ceil(group / eff_byte) * eff_byte)
        words = 1 << (cand.abits - base)
        mult_a = (mem.depth - 1) // words + 1
        repl = math.ceil(mult_a * swizzle / unit_width)
        score_mux = (mult_a - 1) * mem.width
        score_demux = mult_a * mem.write_enables if mult_a != 1 else 0
        score_emu = cand.score_ram if ram else cand.score_rom
        cost = (cand.cost - cand.widthscale) * repl
        cost += cand.widthscale * mult_a * mem.width // unit_width
        cost += score_mux * FACTOR_MUX + score_demux * FACTOR_DEMUX + score_emu * FACTOR_EMU
        if best is None or cost < best_cost:
            best = (cost, repl)
            best_cost = int(cost)
    return best


def predict(memory, device):
    """Predict how Yosys maps one memory on ``device``.

    Parameters
    ----------
    memory : MemorySpec or tuple
        A ``MemorySpec`` or ``(name, width, depth[, write_port[, granularity[, const_lanes]]])``.
    device : boards.Device or str
        Device (or its key); only its family and primitives matter.

    Returns
    -------
    Placement
    """
    row = _as_spec(memory)
    device = get_device(device)
    family = device.family
    if row.mapped_width == 0:
        # opt_mem replaces a ROM that is constant in every column by constants.
        return Placement(row.name, row.width, row.depth, row.bits, "logic", "constant", {}, 0,
                         0.0, 0, 0.0)
    # What memory_libmap sees: the ROM without its constant lanes.
    mem = MemorySpec(row.name, row.mapped_width, row.depth, row.write_port, row.granularity)
    ram = mem.write_port
    logic_cost = mem.bits * LOGIC_COST[family][1 if ram else 0]
    # Cheapest candidate per kind; the first of equal cost wins (prune_post_geom).
    kept = {}
    for cand in LIBRARIES[family]:
        if not (cand.ram if ram else cand.rom):
            continue
        if row.style is not None and cand.kind != row.style:
            continue
        cost, repl = _geometry(cand, mem)
        if cand.kind not in kept or cost < kept[cand.kind][0]:
            kept[cand.kind] = (cost, repl, cand)
    # Final choice against soft logic, with memory_libmap's integer truncation; with
    # ram_style "distributed" soft logic is not weighed against the LUT RAM candidates.
    chosen, best = None, math.inf if row.style == "distributed" else int(logic_cost)
    for kind in ("distributed", "block"):
        if kind in kept and kept[kind][0] < best:
            chosen, best = kept[kind], int(kept[kind][0])
    if chosen is None:
        return Placement(row.name, row.width, row.depth, row.bits, "logic", "logic", {}, 0,
                         0.0, 0, logic_cost)
    cost, repl, cand = chosen
    if cand.kind != "block":
        return Placement(row.name, row.width, row.depth, row.bits, "distributed", cand.name,
                         {}, 0, 0.0, 0, cost)
    cells = {name: per * repl for name, per in cand.cells}
    prims = sum(cells.values())
    sites = sum(n * float(device.primitive(k).site_fraction) for k, n in cells.items())
    alloc = sum(n * device.primitive(k).bits for k, n in cells.items())
    return Placement(row.name, row.width, row.depth, row.bits, "block", cand.name, cells,
                     prims, sites, alloc, cost)


def _as_spec(memory):
    if isinstance(memory, MemorySpec):
        return memory
    if isinstance(memory, dict):
        return MemorySpec(**memory)
    if isinstance(memory, (tuple, list)) and 3 <= len(memory) <= 6:
        return MemorySpec(*memory)
    raise TypeError(f"Memory must be a MemorySpec, a dict or a (name, width, depth"
                    f"[, write_port[, granularity[, const_lanes]]]) tuple, not {memory!r}")


def plan_memories(memories, device):
    """Predict every memory's mapping on ``device`` and total them.

    Parameters
    ----------
    memories : iterable of MemorySpec or tuple
        See :func:`predict`.
    device : boards.Device or str

    Returns
    -------
    Plan
    """
    device = get_device(device)
    rows = tuple(predict(m, device) for m in memories)
    cells = {}
    for r in rows:
        for k, v in r.cells.items():
            cells[k] = cells.get(k, 0) + v
    sites = device.sites_for(cells)
    return Plan(device=device, rows=rows, cells=cells,
                bits_used=sum(r.bits for r in rows),
                bits_allocated=sum(r.bits_allocated for r in rows),
                primitives=sum(r.primitives for r in rows), sites=sites,
                available=device.bram_sites, fits=sites <= device.bram_sites)
