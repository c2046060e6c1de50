"""Calibration experiment: how many block-RAM primitives does Yosys give a memory?

Builds one Amaranth ``Memory`` per (width, depth, kind) with pseudo-random contents, synthesises
it for a family and counts the block-RAM cells, next to what ``hw.flow.planner`` predicts. Run::

    python -m hw.flow.bram_calibration --family xc7 --kind rom --out cal_xc7_rom.csv
    python -m hw.flow.bram_calibration --family xc7 --granularity 8 --widths 16,64,512

``--granularity`` gives the RAM's write port one enable per that many bits (byte enables for 8).

``--fast`` stops Yosys after memory mapping (``-run :map_ffram``), which is where the decision
is made; the cells counted there are the final block-RAM cells (later passes only map logic).
The test suite checks a handful of shapes with the full flow (``tests/test_planner.py``).
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

from amaranth.hdl import Module, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from hw.flow.synth import SCRIPTS, synthesize

__all__ = ["MemoryUnderTest", "observe", "DEFAULT_WIDTHS", "DEFAULT_DEPTHS", "main"]

DEFAULT_WIDTHS = (1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 16, 17, 18, 20, 24, 27, 32, 33, 36, 40, 48,
                  64)
DEFAULT_DEPTHS = (16, 32, 48, 64, 100, 128, 256, 300, 512, 1000, 1024, 1500, 2048, 3000,
                  4096, 5000, 8192, 10000, 16384, 32768, 65536)


def _check_int(value, minimum, message):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(message)
    if value < minimum:
        raise ValueError(message)


class MemoryUnderTest(wiring.Component):
    """One memory with a synchronous read port and, for a RAM, one write port.

    Every port is a top-level port so that nothing is optimised away. The contents are
    pseudo-random so that no bit column is constant (Yosys removes constant columns of a ROM).

    Parameters
    ----------
    width : int
        Word width in bits.
    depth : int
        Number of words.
    write_port : bool
        Add a write port in the same clock domain (a RAM); without it the memory is a ROM.
    granularity : int, optional
        Write-enable granularity of the write port in bits (``width`` must be a multiple);
        ``None`` (default) for one enable for the whole word. Every enable bit is a separate
        top-level input, so Yosys sees distinct enables per ``granularity`` bits.
    seed : int
        Seed of the contents.
    style : str, optional
        ``"distributed"``: the memory's ``ram_style`` attribute (LUT RAM whatever the cost).

    Members
    -------
    raddr : In(ceil_log2(depth))
    rdata : Out(width)
        Read data, one cycle after ``raddr`` (latency 1).
    waddr, wdata, we : In
        Only with ``write_port``; ``we`` has ``width // granularity`` bits.
    """

    def __init__(self, width, depth, *, write_port=False, granularity=None, seed=0,
                 style=None):
        _check_int(width, 1, f"Width must be a positive integer, not {width!r}")
        _check_int(depth, 2, f"Depth must be an integer of at least 2, not {depth!r}")
        if granularity is not None:
            if not write_port:
                raise ValueError("Granularity needs a write port")
            message = f"Granularity must be a positive divisor of the width {width}, not " \
                      f"{granularity!r}"
            _check_int(granularity, 1, message)
            if width % granularity:
                raise ValueError(message)
            if granularity == width:
                granularity = None
        self._width, self._depth, self._write_port = width, depth, bool(write_port)
        self._granularity = granularity
        self._attrs = {} if style is None else {"ram_style": style}
        rng = random.Random(seed * 1_000_003 + width * 65537 + depth)
        self._init = [rng.getrandbits(width) for _ in range(depth)]
        abits = ceil_log2(depth)
        members = {"raddr": In(abits), "rdata": Out(width)}
        if write_port:
            we = 1 if granularity is None else width // granularity
            members.update(waddr=In(abits), wdata=In(width), we=In(we))
        super().__init__(members)

    @property
    def width(self):
        return self._width

    @property
    def depth(self):
        return self._depth

    @property
    def write_port(self):
        return self._write_port

    @property
    def granularity(self):
        """Write-enable granularity in bits, ``None`` for the whole word."""
        return self._granularity

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=unsigned(self._width), depth=self._depth,
                                               init=self._init, attrs=self._attrs)
        rd = mem.read_port()
        m.d.comb += [rd.addr.eq(self.raddr), self.rdata.eq(rd.data)]
        if self._write_port:
            wr = mem.write_port(granularity=self._granularity)
            m.d.comb += [wr.addr.eq(self.waddr), wr.data.eq(self.wdata), wr.en.eq(self.we)]
        return m


def observe(family, width, depth, write_port=False, *, granularity=None, fast=True, quiet=True,
            workdir=None):
    """Synthesise one ``MemoryUnderTest`` and return its block-RAM cells.

    Returns
    -------
    (dict, float)
        ``{cell type: count}`` of block-RAM cells and the Yosys wall time in seconds.
    """
    script = SCRIPTS[family] + (" -run :map_ffram" if fast else "")
    dut = MemoryUnderTest(width, depth, write_port=write_port, granularity=granularity)
    with tempfile.TemporaryDirectory(prefix="bramcal-") as tmp:
        res = synthesize(dut, family, workdir=workdir or tmp, script=script, quiet=quiet)
    return res.bram_cells, res.seconds


def _job(args):
    family, width, depth, write_port, granularity, fast = args
    cells, seconds = observe(family, width, depth, write_port, granularity=granularity,
                             fast=fast)
    return family, width, depth, write_port, granularity, cells, seconds


def main(argv=None):
    """Run the grid and print observed against predicted primitives."""
    from boards import get_device
    from hw.flow.planner import MemorySpec, predict

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--family", choices=sorted(SCRIPTS), required=True)
    p.add_argument("--kind", choices=("rom", "ram"), default="rom")
    p.add_argument("--granularity", type=int,
                   help="write-enable granularity of the RAM's write port in bits (implies "
                        "--kind ram; widths that are not a multiple are skipped)")
    p.add_argument("--widths", type=lambda s: [int(x) for x in s.split(",")],
                   default=list(DEFAULT_WIDTHS))
    p.add_argument("--depths", type=lambda s: [int(x) for x in s.split(",")],
                   default=list(DEFAULT_DEPTHS))
    p.add_argument("--max-bits", type=int, default=1 << 21,
                   help="skip shapes above this many bits (synthesis time grows with size)")
    p.add_argument("--full", action="store_true", help="run the whole synthesis flow")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", help="CSV file for the results")
    args = p.parse_args(argv)

    device = {"xc7": "xc7a35t", "ecp5": "lfe5u_85f", "ice40": "ice40up5k"}[args.family]
    device = get_device(device)
    gran = args.granularity
    wr = args.kind == "ram" or gran is not None
    kind = "ram" if wr else "rom"
    if gran is not None:
        kind = f"ram/{gran}"
    jobs = [(args.family, w, d, wr, gran if gran is not None and gran < w else None,
             not args.full)
            for d in args.depths for w in args.widths
            if w * d <= args.max_bits and (gran is None or w % gran == 0)]
    rows, bad = [], 0
    start = time.monotonic()
    with ProcessPoolExecutor(args.jobs) as pool:
        for family, w, d, wr, g, cells, sec in pool.map(_job, jobs):
            pred = predict(MemorySpec("m", w, d, write_port=wr, granularity=g), device)
            ok = pred.cells == cells
            bad += not ok
            rows.append(dict(family=family, kind=kind, width=w, depth=d, granularity=g or "",
                             observed=";".join(f"{k}={v}" for k, v in sorted(cells.items())),
                             predicted=";".join(f"{k}={v}" for k, v in
                                                sorted(pred.cells.items())),
                             match=ok, seconds=round(sec, 2)))
            print(f"{family} {kind} {w:3d}x{d:6d}: observed {rows[-1]['observed'] or '-':28s}"
                  f" predicted {rows[-1]['predicted'] or '-':28s} {'' if ok else 'MISMATCH'}"
                  f" ({sec:.1f} s)", flush=True)
    print(f"{len(rows)} shapes, {bad} mismatches, {time.monotonic() - start:.0f} s",
          file=sys.stderr)
    if args.out:
        with open(args.out, "w", newline="") as f:
            wcsv = csv.DictWriter(f, fieldnames=list(rows[0]))
            wcsv.writeheader()
            wcsv.writerows(rows)
    return bad


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
