"""Reading the open flow's logs: Yosys ``stat`` cell counts and nextpnr utilisation and timing."""

from __future__ import annotations

import re

from hw.flow.synth import classify_cells

__all__ = ["parse_yosys_stats", "parse_nextpnr"]

_STAT_CELL = re.compile(r"^\s+(\d+)\s+(\S+)\s*$")


def parse_yosys_stats(path, family):
    """(resources, cells) of the top module from a Yosys ``stat`` log (its last report).

    ``cells`` maps every cell type to its count; ``resources`` is
    :func:`~hw.flow.synth.classify_cells` of it.
    """
    text = path.read_text(errors="replace")
    block = text[text.rfind("Printing statistics"):]
    cells = {}
    for line in block.splitlines():
        m = _STAT_CELL.match(line)
        if m and not m.group(2).startswith("$") and m.group(2) not in ("wires", "ports"):
            cells[m.group(2)] = cells.get(m.group(2), 0) + int(m.group(1))
        if "design hierarchy" in line:
            break
    for junk in ("wire", "bits", "cells", "submodules", "memories", "processes"):
        cells.pop(junk, None)
    return classify_cells(family, cells), cells


def parse_nextpnr(path):
    """Utilisation (``{bel: (used, available)}``), Fmax of ``sync`` in MHz (or ``None``) and
    the first lines of the critical path from a nextpnr timing report."""
    text = path.read_text(errors="replace")
    util = {}
    for m in re.finditer(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", text):
        util[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    # nextpnr-ecp5's count of the netlist it read (after the flow's netlist passes, which
    # move flip-flops into RAMs and multipliers): "Total LUT4s:  7272/83640", "Total DFFs:".
    for m in re.finditer(r"Total (LUT4|DFF)s:\s+(\d+)/\s*(\d+)", text):
        util[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    clocks = re.findall(r"Max frequency for clock '([^']*)': ([\d.]+) MHz", text)
    # The platform's own sync domain is named cd_sync...; a PLL-made clock (ECP5PLL) has the
    # PLL output's name, and is then the only clock that reaches any register.
    fmax = [float(f) for name, f in clocks if "cd_sync" in name]
    if not fmax and len({name for name, _ in clocks}) == 1:
        fmax = [float(f) for _, f in clocks]
    return {"utilisation": util, "fmax_mhz": fmax[-1] if fmax else None,
            "critical_path": critical_path(text)}


#: A hop of nextpnr's critical-path report: type, its delay, the running total, what.
_HOP = re.compile(r"^Info:\s+(clk-to-q|routing|logic|setup)\s+([\d.]+)\s+([\d.]+)\s+(.*)$")


def critical_path(text, width=140):
    """The hops of the clock's critical path in a nextpnr timing report, one line each
    (``type delay total what``, cut to ``width`` characters), a run of carry-chain hops
    (the chain's ripple, 0.0x ns each) folded into one line, and the logic/routing split."""
    start = text.rfind("Critical path report for clock")
    if start < 0:
        return []
    lines, chain = [], []

    def fold():
        if chain:
            total = sum(float(h[1]) for h in chain)
            lines.append(f"{'carry':>8}  {total:.2f}  {chain[-1][2]}  "
                         f"({len(chain)} carry-chain hops)")
            chain.clear()

    for line in text[start:].splitlines()[1:]:
        if "Critical path report" in line or "Max frequency" in line:
            break
        hop = _HOP.match(line)
        if hop:
            if "CCU2" in hop.group(4) and float(hop.group(2)) < 0.1:
                chain.append(hop.groups())
                continue
            fold()
            kind, delay_ns, total, what = hop.groups()
            lines.append(f"{kind:>8}  {delay_ns}  {total}  {what}"[:width])
        elif re.match(r"^Info:\s+[\d.]+ ns logic, [\d.]+ ns routing", line):
            fold()
            lines.append(line.replace("Info:", "").strip())
    fold()
    return lines
