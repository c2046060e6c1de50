"""The block-RAM output-register pass on 36-bit-mode DP16KDs (Yosys's pseudo-dual-port
mapping: port A writes, port B reads, the read data on both ports' output pins): on small
netlists, on Yosys's own netlist of a 36-bit memory, and through nextpnr-ecp5 to the RAM tile's
configuration."""

import copy
import json
import re
import shutil
import subprocess

import pytest
from amaranth.back import rtlil
from amaranth.hdl import ClockDomain, Module, Signal, unsigned
from amaranth.lib.memory import Memory

from hw.flow.outreg import absorb, absorb_output_registers, buffer_collisions_undefined
from hw.flow.synth import yosys_command
from hw.flow.yowasp import YOWASP_ENV
from tests.test_ecp5_flow import _ff, _netlist, _ram

needs_yosys = pytest.mark.skipif(shutil.which(yosys_command()[0]) is None,
                                 reason=f"{yosys_command()[0]} not installed")
NEXTPNR = YOWASP_ENV["NEXTPNR_ECP5"]


def _pdp(**params):
    """A 36-bit-mode RAM on clock net 1, its read reset tied low."""
    ram = _ram(width=36, DATA_WIDTH_B=f"{36:032b}", **params)
    ram["connections"].update(CLKB=[1], RSTB=["0"])
    return ram


def _pdp_ffs(**kw):
    """Registers on two low (DOA) and two high (DOB) read-data pins."""
    return [_ff(100, 300, **kw), _ff(101, 301, **kw), _ff(200, 302, **kw), _ff(201, 303, **kw)]


def test_registers_after_a_36_bit_read_move_into_the_ram():
    netlist = _netlist(_pdp_ffs(ce=7), _pdp())
    assert absorb(netlist) == 4
    cells = netlist["modules"]["top"]["cells"]
    assert set(cells) == {"ram"}
    ram = cells["ram"]
    assert (ram["parameters"]["REGMODE_A"], ram["parameters"]["REGMODE_B"]) == ("OUTREG",) * 2
    assert ram["connections"]["OCEA"] == ram["connections"]["OCEB"] == [7]
    assert [ram["connections"][p] for p in ("DOA0", "DOA1", "DOB0", "DOB1")] == [
        [300], [301], [302], [303]]


@pytest.mark.parametrize("change", [
    "write_clock", "read_reset", "other_clock", "fanout", "registered_already", "mixed_width"])
def test_a_36_bit_read_that_cannot_move_stays(change):
    ffs, ram = _pdp_ffs(), _pdp()
    if change == "write_clock":         # the low half's register might run on CLKA
        ram["connections"]["CLKA"] = [9]
    elif change == "read_reset":        # the RAM's register would be reset, the FF is not
        ram["connections"]["RSTB"] = [5]
    elif change == "other_clock":
        ffs[2] = _ff(200, 302, clock=9)
    elif change == "fanout":
        ffs.append(_ff(201, 304))
    elif change == "registered_already":
        ram["parameters"]["REGMODE_A"] = "OUTREG"
    elif change == "mixed_width":       # not the pseudo-dual-port mapping
        ram["parameters"]["DATA_WIDTH_B"] = f"{18:032b}"
    netlist = _netlist(ffs, ram)
    before = copy.deepcopy(netlist)
    assert absorb(netlist) == 0
    assert netlist == before


def _synthesised(tmp_path):
    """Yosys's ECP5 netlist of a 512 x 36 memory with its read data registered, its read port
    undefined on a same-address write as the flow marks the engines' buffers (a submodule
    named ``loader``), so no read-old-data logic sits between the RAM and the register."""
    m = Module()
    m.domains.sync = cd = ClockDomain(reset_less=True)   # as on ECP5 boards (GSR)
    m.submodules.loader = loader = Module()
    loader.submodules.mem = mem = Memory(shape=unsigned(36), depth=512, init=[])
    wr, rd = mem.write_port(), mem.read_port(transparent_for=())
    q = Signal(36)
    loader.d.sync += q.eq(rd.data)
    ports = [cd.clk, wr.addr, wr.data, wr.en, rd.addr, q]
    (tmp_path / "top.il").write_text(rtlil.convert(m, name="top", ports=ports))
    assert buffer_collisions_undefined(tmp_path / "top.il") == 1
    subprocess.run([*yosys_command(), "-q", "-p",
                    "read_rtlil top.il; synth_ecp5 -top top -json top.json"],
                   cwd=tmp_path, check=True, capture_output=True)
    return tmp_path / "top.json"


@needs_yosys
@pytest.mark.toolchain
def test_yosys_36_bit_ram_takes_its_registers(tmp_path):
    path = _synthesised(tmp_path)
    (ram,) = [c for c in json.loads(path.read_text())["modules"]["top"]["cells"].values()
              if c["type"] == "DP16KD"]
    assert int(ram["parameters"]["DATA_WIDTH_A"], 2) == int(ram["parameters"]["DATA_WIDTH_B"],
                                                             2) == 36
    assert absorb_output_registers(path) == 36
    cells = json.loads(path.read_text())["modules"]["top"]["cells"]
    assert [c["type"] for c in cells.values()].count("TRELLIS_FF") == 0
    (ram,) = [c for c in cells.values() if c["type"] == "DP16KD"]
    assert (ram["parameters"]["REGMODE_A"], ram["parameters"]["REGMODE_B"]) == ("OUTREG",) * 2


@needs_yosys
@pytest.mark.toolchain
@pytest.mark.skipif(shutil.which(NEXTPNR) is None, reason=f"{NEXTPNR} not installed")
def test_nextpnr_writes_both_output_registers(tmp_path):
    """nextpnr-ecp5 takes the netlist, times the RAM with its output register (a path from
    the RAM no longer starts with the 5.8 ns clock-to-out) and writes OUTREG for both
    halves into the RAM tile's configuration."""
    path = _synthesised(tmp_path)
    absorb_output_registers(path)
    subprocess.run([NEXTPNR, "--25k", "--package", "CABGA381", "--json", "top.json",
                    "--textcfg", "top.config", "--lpf-allow-unconstrained", "--quiet",
                    "--log", "top.log"], cwd=tmp_path, check=True, capture_output=True)
    config = (tmp_path / "top.config").read_text()
    assert ".REGMODE_A OUTREG" in config and ".REGMODE_B OUTREG" in config


def test_pool_stages_read_ports_are_marked_undefined(tmp_path):
    """The max-pool stages' line memories (``pool.pixels``, ``pool.rows``) are marked like the
    engine's buffers; a memory in any other module keeps its read-old behaviour."""
    m = Module()
    m.submodules.pool = pool = Module()
    ports = []
    for name in ("pixels", "rows", "other"):
        pool.submodules[name] = sub = Module()
        sub.submodules.line = mem = Memory(shape=unsigned(8), depth=16, init=[])
        rd, wr = mem.read_port(transparent_for=()), mem.write_port()
        q = Signal(8, name=f"q_{name}")
        sub.d.sync += q.eq(rd.data)
        ports += [wr.addr, wr.data, wr.en, rd.addr, q]
    path = tmp_path / "top.il"
    path.write_text(rtlil.convert(m, name="top", ports=ports))
    assert buffer_collisions_undefined(path) == 2
    masks = {}
    for part in path.read_text().split("\nmodule ")[1:]:
        found = re.findall(r"parameter \\COLLISION_X_MASK \d+'([01]+)", part)
        if found:
            masks[part.split("\n", 1)[0].strip().rsplit(".", 1)[-1]] = found
    assert masks == {"pixels": ["1"], "rows": ["1"], "other": ["0"]}
