"""The ECP5 multiplier-register pass (hw/flow/multreg.py): on small netlists, on Yosys's own
netlist of a lane's multiplier, and through nextpnr-ecp5 to its bitstream configuration."""

import json
import shutil
import subprocess

import pytest
from amaranth.hdl import ClockDomain, Elaboratable, Module, Signal, signed, unsigned

from hw.flow.multreg import absorb_multiplier_registers, absorb_multipliers
from hw.flow.synth import synthesize, yosys_command
from hw.flow.yowasp import YOWASP_ENV
from tests.test_ecp5_flow import _ff as _flow_ff

needs_yosys = pytest.mark.skipif(shutil.which(yosys_command()[0]) is None,
                                 reason=f"{yosys_command()[0]} not installed")
NEXTPNR = YOWASP_ENV["NEXTPNR_ECP5"]


def _ff(d, q, clock=1, ce=None, **params):
    """A plain flip-flop following the global set/reset (as on the boards)."""
    return _flow_ff(d, q, clock=clock, ce=ce, **{"GSR": "ENABLED", **params})


def _mult(a, b, p, **params):
    conns = {**{f"A{i}": [n] for i, n in enumerate(a)}, **{f"B{i}": [n] for i, n in enumerate(b)},
             **{f"P{i}": [n] for i, n in enumerate(p)}, "SIGNEDA": ["1"], "SIGNEDB": ["1"]}
    directions = {pin: "output" if pin[0] == "P" else "input" for pin in conns}
    return {"type": "MULT18X18D", "connections": conns, "port_directions": directions,
            "parameters": dict(params)}


def _lane():
    """Two multipliers sharing a weight register (nets 10-11 from 1-2); the first has its own
    activation register (nets 20-21 from 5-6, 21 on two pins as a sign bit is, then a
    constant 0 pin) and product register (P nets 30-32 into 40-42, enable 9); the second's
    activation register also drives an output port and its product drives one."""
    cells = {
        "w0": _ff(1, 10), "w1": _ff(2, 11), "x0": _ff(5, 20), "x1": _ff(6, 21),
        "m0": _mult([10, 11], [20, 21, 21, "0"], [30, 31, 32, 33]),
        "m1": _mult([10, 11], [50], [60]),
        **{f"p{i}": _ff(30 + i, 40 + i, ce=9) for i in range(3)},
        "x2": _ff(7, 50)}
    ports = {"q": {"direction": "output", "bits": [40, 41, 42, 60]},
             "x2q": {"direction": "output", "bits": [50]}}
    return {"modules": {"top": {"cells": cells, "ports": ports}}}


def test_lane_registers_move_into_the_multiplier():
    netlist = _lane()
    assert absorb_multipliers(netlist) == (7, 2)
    cells = netlist["modules"]["top"]["cells"]
    assert set(cells) == {"m0", "m1", "x2"}
    m0, m1 = cells["m0"], cells["m1"]
    conns, params = m0["connections"], m0["parameters"]
    assert [conns[f"P{i}"] for i in range(4)] == [[40], [41], [42], [33]]
    assert [conns[f"B{i}"] for i in range(4)] == [[5], [6], [6], ["0"]]
    for mult in (m0, m1):       # the shared weight register: one copy in each multiplier
        assert [mult["connections"][f"A{i}"] for i in range(2)] == [[1], [2]]
        assert mult["connections"]["CLK0"] == [1] and mult["connections"]["RST0"] == ["0"]
        assert mult["port_directions"]["CLK0"] == "input"
    assert {conns["CE0"][0], conns["CE1"][0]} == {"1", 9}
    ce = {conns["CE0"][0]: "CE0", conns["CE1"][0]: "CE1"}
    assert params == {"GSR": "ENABLED",
                      "REG_OUTPUT_CLK": "CLK0", "REG_OUTPUT_CE": ce[9], "REG_OUTPUT_RST": "RST0",
                      "REG_INPUTA_CLK": "CLK0", "REG_INPUTA_CE": ce["1"], "REG_INPUTA_RST": "RST0",
                      "REG_INPUTB_CLK": "CLK0", "REG_INPUTB_CE": ce["1"],
                      "REG_INPUTB_RST": "RST0"}
    assert m1["parameters"] == {"GSR": "ENABLED", "REG_INPUTA_CLK": "CLK0",
                                "REG_INPUTA_CE": "CE0", "REG_INPUTA_RST": "RST0"}
    assert [m1["connections"][p] for p in ("B0", "P0", "CE0")] == [[50], [60], ["1"]]


def test_output_registers_only():
    netlist = _lane()
    assert absorb_multipliers(netlist, inputs=False) == (3, 1)
    cells = netlist["modules"]["top"]["cells"]
    assert set(cells) == {"w0", "w1", "x0", "x1", "m0", "m1", "x2"}
    assert set(cells["m0"]["parameters"]) == {"GSR", "REG_OUTPUT_CLK", "REG_OUTPUT_CE",
                                              "REG_OUTPUT_RST"}


@pytest.mark.parametrize("change", ["other_load", "other_multiplier_cannot", "other_operand"])
def test_a_shared_weight_register_moves_only_into_every_reader(change):
    netlist = _lane()
    cells = netlist["modules"]["top"]["cells"]
    if change == "other_load":          # the weight register also feeds a flip-flop
        cells["y"] = _ff(11, 70)
    elif change == "other_multiplier_cannot":
        cells["m1"]["parameters"]["REG_PIPELINE_CLK"] = "CLK0"
    else:                               # it feeds the other multiplier's B operand
        cells["m1"]["connections"]["B0"] = [11]
    moved, _ = absorb_multipliers(netlist)
    assert moved == 5 and {"w0", "w1"} <= set(cells)
    assert [cells["m0"]["connections"][f"A{i}"] for i in range(2)] == [[10], [11]]
    assert "REG_INPUTA_CLK" not in cells["m0"]["parameters"]


def test_a_product_register_feeding_a_multiplier_moves_once():
    """m0's product register p0 also is m1's B operand register: it moves into m0 only."""
    netlist = _lane()
    cells = netlist["modules"]["top"]["cells"]
    netlist["modules"]["top"]["ports"]["q"]["bits"] = [41, 42, 60]
    cells["m1"]["connections"]["B0"] = [40]
    assert absorb_multipliers(netlist) == (7, 2)
    assert cells["m0"]["connections"]["P0"] == [40]
    assert cells["m1"]["connections"]["B0"] == [40]
    assert "REG_INPUTB_CLK" not in cells["m1"]["parameters"]


def _changed(change):
    netlist = _lane()
    cells = netlist["modules"]["top"]["cells"]
    if change == "product_fanout":
        netlist["modules"]["top"]["ports"]["q"]["bits"].append(31)
    elif change == "product_reset":
        cells["p1"]["connections"]["LSR"] = [8]
    elif change == "product_other_clock":
        cells["p2"]["connections"]["CLK"] = [3]
    elif change == "product_two_enables":
        cells["p2"]["connections"]["CE"] = [8]
    elif change == "product_set_value":
        cells["p0"]["parameters"]["REGSET"] = "SET"
    elif change == "product_other_global_reset":
        cells["p0"]["parameters"]["GSR"] = "DISABLED"
    elif change == "inverted_clock":
        cells["p0"]["parameters"]["CLKMUX"] = "INV"
    return netlist


@pytest.mark.parametrize("change", [
    "product_fanout", "product_reset", "product_other_clock", "product_two_enables",
    "product_set_value", "product_other_global_reset", "inverted_clock"])
def test_a_product_register_that_is_not_plain_stays_out(change):
    netlist = _changed(change)
    assert absorb_multipliers(netlist) == (4, 2)      # the operand registers still move
    cells = netlist["modules"]["top"]["cells"]
    assert {"p0", "p1", "p2"} <= set(cells)
    assert "REG_OUTPUT_CLK" not in cells["m0"]["parameters"]


@pytest.mark.parametrize("change", ["activation_fanout", "constant_one", "activation_clock"])
def test_an_operand_register_that_cannot_move_stays_out(change):
    netlist = _lane()
    cells = netlist["modules"]["top"]["cells"]
    if change == "activation_fanout":
        netlist["modules"]["top"]["ports"]["x2q"]["bits"].append(21)
    elif change == "constant_one":
        cells["m0"]["connections"]["B3"] = ["1"]
    else:
        cells["x1"]["connections"]["CLK"] = [3]
    assert absorb_multipliers(netlist) == (5, 2)      # product and weight registers move
    assert {"x0", "x1"} <= set(cells)
    assert "REG_INPUTB_CLK" not in cells["m0"]["parameters"]


def test_a_multiplier_with_a_register_on_or_two_clocks_stays_as_it_is():
    netlist = _lane()
    cells = netlist["modules"]["top"]["cells"]
    cells["m0"]["parameters"]["REG_PIPELINE_CLK"] = "CLK1"
    assert absorb_multipliers(netlist) == (0, 0)      # and m1 cannot take the weight alone
    netlist = _lane()
    cells = netlist["modules"]["top"]["cells"]
    for name in ("x0", "x1"):
        cells[name]["connections"]["CLK"] = [3]
    assert absorb_multipliers(netlist) == (0, 0)      # m0 gives up; m1 cannot take w alone
    assert len(cells) == 10 and cells["m1"]["parameters"] == {}


class _Lane(Elaboratable):
    """A lane's multiply as the engines build it: activation register, multiplier, product
    register (hw/fire/entry_pipeline.py)."""

    def __init__(self):
        self.act = Signal(unsigned(8))
        self.weight = Signal(signed(16))
        self.prod = Signal(signed(25))

    def elaborate(self, platform):
        m = Module()
        act_sel, w_sel = Signal(unsigned(8)), Signal(signed(16))
        m.d.sync += [act_sel.eq(self.act), w_sel.eq(self.weight),
                     self.prod.eq(act_sel * w_sel)]
        return m


def _synthesised(tmp_path):
    lane = _Lane()
    m = Module()
    m.domains.sync = cd = ClockDomain(reset_less=True)   # as on ECP5 boards (GSR)
    m.submodules.lane = lane
    synthesize(m, "ecp5", workdir=tmp_path, ports=[cd.clk, lane.act, lane.weight, lane.prod],
               quiet=True, script="synth_ecp5 -top {top} -json top.json")
    return tmp_path / "top.json"


@needs_yosys
@pytest.mark.toolchain
def test_yosys_multiplier_takes_its_registers(tmp_path):
    """Yosys's ECP5 netlist of a lane: the 16-bit weight, 8-bit activation and 24 used
    product bits (the 25th is a copy of the sign) all move into the MULT18X18D."""
    path = _synthesised(tmp_path)
    moved, changed = absorb_multiplier_registers(path)
    cells = json.loads(path.read_text())["modules"]["top"]["cells"]
    assert changed == 1 and moved == 16 + 8 + 24
    assert [c["type"] for c in cells.values()].count("TRELLIS_FF") == 0
    (mult,) = [c for c in cells.values() if c["type"] == "MULT18X18D"]
    assert {mult["parameters"][f"REG_{r}_CLK"] for r in ("INPUTA", "INPUTB", "OUTPUT")} == {
        "CLK0"}


@needs_yosys
@pytest.mark.toolchain
@pytest.mark.skipif(shutil.which(NEXTPNR) is None, reason=f"{NEXTPNR} not installed")
def test_nextpnr_places_the_registers_and_writes_them_out(tmp_path):
    """nextpnr-ecp5 takes the netlist and writes the registers into the DSP tile's
    configuration (the text form of the bitstream): three registers on CLK0."""
    path = _synthesised(tmp_path)
    absorb_multiplier_registers(path)
    subprocess.run([NEXTPNR, "--25k", "--package", "CABGA381", "--json", "top.json",
                    "--textcfg", "top.config", "--lpf-allow-unconstrained", "--quiet"],
                   cwd=tmp_path, check=True, capture_output=True)
    config = (tmp_path / "top.config").read_text()
    for register in ("INPUTA", "INPUTB", "OUTPUT"):
        assert f"REG_{register}_CLK CLK0" in config
