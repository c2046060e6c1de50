"""ECP5 flow pieces: the block-RAM output-register pass on small netlists (and on a real Yosys
netlist), the PLL's dividers and clock domain, and reading nextpnr's Fmax."""

import copy
import json
import shutil

import pytest
from amaranth.hdl import ClockDomain, Module, signed, unsigned

from boards import get_board
from hw.blocks.banked_rom import BankedROM
from hw.board.ecp5_pll import pll_parameters
from hw.flow.logs import parse_nextpnr
from hw.flow.outreg import absorb, absorb_output_registers, absorb_through_muxes
from hw.flow.synth import synthesize, yosys_command

needs_yosys = pytest.mark.skipif(shutil.which(yosys_command()[0]) is None,
                                 reason=f"{yosys_command()[0]} not installed")


def _ram(clock=1, width=4, **params):
    connections = {"CLKA": [clock], "CLKB": ["0"], "OCEA": ["1"], "OCEB": ["1"],
                   **{f"DOA{i}": [100 + i] for i in range(18)},
                   **{f"DOB{i}": [200 + i] for i in range(18)}}
    directions = {p: "output" if p.startswith("DO") else "input" for p in connections}
    return {"type": "DP16KD", "connections": connections, "port_directions": directions,
            "parameters": {"REGMODE_A": "NOREG", "REGMODE_B": "NOREG", "GSR": "DISABLED",
                           "DATA_WIDTH_A": f"{width:032b}", "DATA_WIDTH_B": f"{18:032b}",
                           **params}}


def _ff(d, q, clock=1, ce=None, lsr="0", **params):
    conns = {"CLK": [clock], "DI": [d], "Q": [q], "LSR": [lsr]}
    if ce is not None:
        conns["CE"] = [ce]
    return {"type": "TRELLIS_FF", "connections": conns,
            "port_directions": {"CLK": "input", "DI": "input", "Q": "output", "LSR": "input",
                                "CE": "input"},
            "parameters": {"CEMUX": "CE" if ce is not None else "1 ", "CLKMUX": "CLK",
                           "LSRMUX": "LSR", "REGSET": "RESET", "GSR": "DISABLED", **params}}


def _netlist(ffs, ram=None, outputs=(300, 301, 302, 303)):
    cells = {"ram": ram or _ram()}
    cells.update({f"ff{i}": ff for i, ff in enumerate(ffs)})
    return {"modules": {"top": {"cells": cells, "ports": {
        "q": {"direction": "output", "bits": list(outputs)}}}}}


def _four(**kw):
    return [_ff(100 + i, 300 + i, **kw) for i in range(4)]


def test_registers_after_a_read_port_move_into_the_ram():
    netlist = _netlist(_four(ce=7))
    assert absorb(netlist) == 4
    cells = netlist["modules"]["top"]["cells"]
    assert set(cells) == {"ram"}
    ram = cells["ram"]
    assert ram["parameters"]["REGMODE_A"] == "OUTREG"
    assert ram["parameters"]["REGMODE_B"] == "NOREG"
    assert ram["connections"]["OCEA"] == [7]
    assert [ram["connections"][f"DOA{i}"] for i in range(4)] == [[300], [301], [302], [303]]


@pytest.mark.parametrize("change", [
    "fanout", "other_clock", "reset", "set_value", "two_enables", "inverted_clock",
    "ram_output_port", "registered_already", "wide_mode", "global_reset"])
def test_anything_but_a_plain_register_stays_out(change):
    ffs = _four()
    ram = _ram()
    outputs = (300, 301, 302, 303)
    if change == "fanout":
        ffs.append(_ff(101, 304))
    elif change == "other_clock":
        ffs[2] = _ff(102, 302, clock=9)
    elif change == "reset":
        ffs[0] = _ff(100, 300, lsr=5)
    elif change == "set_value":
        ffs[3]["parameters"]["REGSET"] = "SET"
    elif change == "two_enables":
        ffs = [_ff(100 + i, 300 + i, ce=7 + (i == 3)) for i in range(4)]
    elif change == "inverted_clock":
        ffs[1]["parameters"]["CLKMUX"] = "INV"
    elif change == "ram_output_port":
        outputs = (300, 301, 302, 103)
    elif change == "registered_already":
        ram["parameters"]["REGMODE_A"] = "OUTREG"
    elif change == "wide_mode":
        ram = _ram(width=36)
    elif change == "global_reset":        # the RAM's register would not follow GSR as the FF
        ram["parameters"]["GSR"] = "ENABLED"
    netlist = _netlist(ffs, ram, outputs)
    before = copy.deepcopy(netlist)
    assert absorb(netlist) == 0
    assert netlist == before


def test_file_is_rewritten_in_place(tmp_path):
    path = tmp_path / "top.json"
    path.write_text(json.dumps(_netlist(_four())))
    assert absorb_output_registers(path) == 4
    assert json.loads(path.read_text())["modules"]["top"]["cells"].keys() == {"ram"}
    assert [p.name for p in tmp_path.iterdir()] == ["top.json"]


def _lut(inputs, z, init="1100101011001010"):
    """A LUT4 (by default a 2:1 multiplexer: C ? B : A, 0 for all-zero inputs)."""
    conns = {**{p: [b] for p, b in zip("ABCD", inputs)}, "Z": [z]}
    return {"type": "LUT4", "connections": conns,
            "port_directions": {**{p: "input" for p in "ABCD"}, "Z": "output"},
            "parameters": {"INIT": init}}


def _stacked(change=None):
    """Two RAMs stacked in depth (the second's DOA pins are nets 400+): bit i of the word is
    LUT i's pick (select net 50) between them, registered by flip-flop i (enable 7)."""
    ram1 = _ram()
    for i in range(18):
        ram1["connections"][f"DOA{i}"] = [400 + i]
        ram1["connections"][f"DOB{i}"] = [500 + i]
    cells = {"ram0": _ram(), "ram1": ram1}
    for i in range(4):
        cells[f"lut{i}"] = _lut([100 + i, 400 + i, 50], 600 + i)
        cells[f"ff{i}"] = _ff(600 + i, 300 + i, ce=7)
    if change == "init":
        cells["lut2"]["parameters"]["INIT"] = "1100101011001011"
    elif change == "lut_fanout":
        cells["extra"] = _ff(601, 310)
    elif change == "other_clock":
        cells["ff3"] = _ff(603, 303, clock=9, ce=7)
    elif change == "pin_elsewhere":
        cells["extra"] = _ff(401, 310)
    elif change == "two_enables":
        cells["ff0"] = _ff(600, 300, ce=8)
    elif change == "wide_mux":      # bit 0 through two LUTs and a PFUMX (a 5-input function)
        cells["lut0"] = _lut([100, 400, 50], 700)
        cells["lut4"] = _lut([51, "0", 50], 701)
        cells["mux"] = {"type": "PFUMX", "connections": {"ALUT": [700], "BLUT": [701],
                                                         "C0": [52], "Z": [600]},
                        "port_directions": {"ALUT": "input", "BLUT": "input", "C0": "input",
                                            "Z": "output"}, "parameters": {}}
    return {"modules": {"top": {"cells": cells, "ports": {
        "q": {"direction": "output", "bits": [300, 301, 302, 303, 310]}}}}}


def test_registers_after_a_stacked_rams_multiplexer_move_into_the_rams():
    netlist = _stacked()
    assert absorb_through_muxes(netlist) == 4
    cells = netlist["modules"]["top"]["cells"]
    for ram in ("ram0", "ram1"):
        assert cells[ram]["parameters"]["REGMODE_A"] == "OUTREG"
        assert cells[ram]["parameters"]["REGMODE_B"] == "NOREG"
        assert cells[ram]["connections"]["OCEA"] == [7]
    # One register for the select (same clock and enable), read by every LUT, which now
    # drives the removed registers' outputs.
    selects = [c for c in cells.values() if c["type"] == "TRELLIS_FF"]
    assert len(selects) == 1
    assert selects[0]["connections"]["DI"] == [50] and selects[0]["connections"]["CE"] == [7]
    q = selects[0]["connections"]["Q"]
    for i in range(4):
        lut = cells[f"lut{i}"]["connections"]
        assert (lut["A"], lut["B"], lut["C"], lut["Z"]) == ([100 + i], [400 + i], q, [300 + i])


def test_a_wider_multiplexer_moves_too():
    """Two LUTs and a PFUMX before the register: every input that is not a RAM pin (nets 50,
    51, 52) gets one register, shared by all the cones that read it."""
    netlist = _stacked("wide_mux")
    assert absorb_through_muxes(netlist) == 4
    cells = netlist["modules"]["top"]["cells"]
    registers = {c["connections"]["DI"][0]: c["connections"]["Q"][0]
                 for c in cells.values() if c["type"] == "TRELLIS_FF"}
    assert set(registers) == {50, 51, 52}
    assert cells["mux"]["connections"]["C0"] == [registers[52]]
    assert cells["mux"]["connections"]["Z"] == [300]
    assert cells["lut4"]["connections"]["A"] == [registers[51]]
    assert cells["lut1"]["connections"]["C"] == [registers[50]]


@pytest.mark.parametrize("change", ["init", "lut_fanout", "other_clock", "pin_elsewhere",
                                    "two_enables"])
def test_a_multiplexer_that_cannot_move_stays(change):
    netlist = _stacked(change)
    before = copy.deepcopy(netlist)
    assert absorb_through_muxes(netlist) == 0
    assert netlist == before


@needs_yosys
@pytest.mark.toolchain
def test_stacked_bank_registers_move_into_yosys_block_rams(tmp_path):
    """On Yosys's own ECP5 netlist: a 4,096-word ROM of 9-bit values in a 12-bit word is two
    2048 x 9 DP16KDs stacked, a LUT per bit picking between them; after the pass both RAMs
    have their output register and the bank's 9 flip-flops are gone."""
    rom = BankedROM(unsigned(12), [(i * 37) % 512 for i in range(4096)])
    m = Module()
    m.domains.sync = cd = ClockDomain(reset_less=True)
    m.submodules.rom = rom
    synthesize(m, "ecp5", workdir=tmp_path, ports=[cd.clk, rom.addr, rom.data], quiet=True,
               script="synth_ecp5 -top {top} -json top.json")
    cells = json.loads((tmp_path / "top.json").read_text())["modules"]["top"]["cells"]
    assert [c["type"] for c in cells.values()].count("DP16KD") == 2
    assert absorb_output_registers(tmp_path / "top.json") >= 9
    cells = json.loads((tmp_path / "top.json").read_text())["modules"]["top"]["cells"]
    rams = [c for c in cells.values() if c["type"] == "DP16KD"]
    assert len(rams) == 2 and all(c["parameters"]["REGMODE_A"] == "OUTREG" for c in rams)


@needs_yosys
@pytest.mark.toolchain
def test_banked_rom_registers_move_into_yosys_block_rams(tmp_path):
    """On Yosys's own ECP5 netlist: a 6,000-word 12-bit ROM (two banks of three 4-bit-wide
    DP16KDs) loses its 24 bank-data flip-flops to the RAMs' output registers."""
    rom = BankedROM(signed(12), [(i * 37) % 4000 - 2000 for i in range(6000)])
    m = Module()
    m.domains.sync = cd = ClockDomain(reset_less=True)   # as on ECP5 boards (GSR)
    m.submodules.rom = rom
    synthesize(m, "ecp5", workdir=tmp_path, ports=[cd.clk, rom.addr, rom.data], quiet=True,
               script="synth_ecp5 -top {top} -json top.json")
    assert absorb_output_registers(tmp_path / "top.json") == 24
    cells = json.loads((tmp_path / "top.json").read_text())["modules"]["top"]["cells"]
    rams = [c for c in cells.values() if c["type"] == "DP16KD"]
    assert len(rams) == 5 and all(c["parameters"]["REGMODE_A"] == "OUTREG" for c in rams)


@needs_yosys
@pytest.mark.toolchain
def test_patch_streamer_row_reads_move_into_yosys_block_rams(tmp_path):
    """conv1's patch streamer (7x7/2, 3 channels, rows up to 227 wide) registers its row-memory
    reads with nothing between: on Yosys's own ECP5 netlist its three 2048 x 9 RAMs then get
    their output registers and the 24 flip-flops are gone (the unregistered read into logic was
    the 32-lane ULX3S build's critical path). The run streamer's memories are 36-bit-mode RAMs
    stacked two deep, a LUT per bit picking between them before the register, which the
    multiplexer retiming does not take for that mode: its registers stay in the fabric."""
    from hw.network.patch_streamer import PatchStreamer
    dut = PatchStreamer(kernel=7, stride=2, channels=3, channels_per_beat=4, max_width=227)
    m = Module()
    m.domains.sync = cd = ClockDomain(reset_less=True)
    m.submodules.dut = dut
    ports = [cd.clk, dut.i.valid, dut.i.ready, dut.i.payload.as_value(), dut.o.valid,
             dut.o.ready, dut.o.payload.as_value(), dut.width, dut.height, dut.out_height,
             dut.out_width]
    synthesize(m, "ecp5", workdir=tmp_path, ports=ports, quiet=True,
               script="synth_ecp5 -top {top} -json top.json")
    assert absorb_output_registers(tmp_path / "top.json") == 24
    cells = json.loads((tmp_path / "top.json").read_text())["modules"]["top"]["cells"]
    rams = [c for c in cells.values() if c["type"] == "DP16KD"]
    assert len(rams) == 3
    assert all("OUTREG" in (c["parameters"]["REGMODE_A"], c["parameters"]["REGMODE_B"])
               for c in rams)


@pytest.mark.parametrize("in_hz, out_hz, expected", [
    (25e6, 100e6, {"CLKI_DIV": 1, "CLKFB_DIV": 4, "CLKOP_DIV": 6}),
    (25e6, 125e6, {"CLKI_DIV": 1, "CLKFB_DIV": 5, "CLKOP_DIV": 5}),
    (25e6, 50e6, {"CLKI_DIV": 1, "CLKFB_DIV": 2, "CLKOP_DIV": 12}),
])
def test_pll_dividers(in_hz, out_hz, expected):
    params = pll_parameters(in_hz, out_hz)
    assert params == expected
    vco = out_hz * params["CLKOP_DIV"]
    assert 400e6 <= vco <= 800e6
    assert in_hz / params["CLKI_DIV"] * params["CLKFB_DIV"] == out_hz


def test_pll_refuses_what_it_cannot_make():
    with pytest.raises(ValueError, match="cannot make 1000 MHz from 25 MHz"):
        pll_parameters(25e6, 1000e6)


def test_ulx3s_design_runs_from_the_pll_at_100_mhz():
    board = get_board("ulx3s_85f")
    assert (board.clock_hz, board.pll_hz, board.design_clock_hz) == (25e6, 100e6, 100e6)


def test_nextpnr_fmax_of_a_pll_clock(tmp_path):
    log = tmp_path / "top.tim"
    log.write_text("Info: Max frequency for clock '$glbnet$clock.clk$1': 104.30 MHz "
                   "(PASS at 100.00 MHz)\n")
    assert parse_nextpnr(log)["fmax_mhz"] == 104.30
    log.write_text("Info: Max frequency for clock 'a': 10.00 MHz (PASS at 1.00 MHz)\n"
                   "Info: Max frequency for clock 'cd_sync_clk': 94.00 MHz (PASS at 25 MHz)\n")
    assert parse_nextpnr(log)["fmax_mhz"] == 94.0


def test_nextpnr_counts_of_the_netlist_after_the_passes(tmp_path):
    """The report's "placed" LUTs and flip-flops are nextpnr-ecp5's counts of the netlist it
    read, after the flow moved flip-flops into RAMs and multipliers."""
    log = tmp_path / "top.tim"
    log.write_text("Info: Logic utilisation before packing:\n"
                   "Info:     Total LUT4s:      7272/83640     8%\n"
                   "Info:         logic LUTs:   5196/83640     6%\n"
                   "Info:      Total DFFs:      4876/83640     5%\n")
    util = parse_nextpnr(log)["utilisation"]
    assert util["LUT4"] == (7272, 83640) and util["DFF"] == (4876, 83640)


def test_nextpnr_critical_path_hops(tmp_path):
    """The report's critical path: each hop with its delay and running total, a carry chain's
    ripple folded into one line, the logic/routing split; sink lists and source lines left
    out; a cross-domain report after it is not part of it."""
    log = tmp_path / "top.tim"
    chain = "Info:    routing  0.00  {t}  Net a_CCU2C_COUT_CIN (4,8) -> (4,8)\n"
    log.write_text(
        "Info: Critical path report for clock '$glbnet$clock.clk' (posedge -> posedge):\n"
        "Info:       type curr  total name\n"
        "Info:   clk-to-q  0.52  0.52 Source x.rows_in_TRELLIS_FF_Q.Q\n"
        "Info:    routing  1.11  1.63 Net x.rows_in[0] (3,6) -> (3,8)\n"
        "Info:                               Sink y.A\n"
        "Info:                               /share/lattice/cells_map_trellis.v:108.23\n"
        + chain.format(t="2.08") + chain.format(t="2.15") +
        "Info:      logic  0.45  2.60 Source z.F\n"
        "Info:    routing  2.66  5.26 Net z[2] (6,13) -> (6,47)\n"
        "Info:      setup  0.42  5.68 Source w_TRELLIS_FF_Q.CE\n"
        "Info: 1.39 ns logic, 4.29 ns routing\n"
        "\n"
        "Info: Critical path report for cross-domain path '<async>' -> 'posedge clk':\n"
        "Info:    routing  1.28  1.28 Net rx_buffer.buf.i (0,89) -> (2,77)\n")
    assert parse_nextpnr(log)["critical_path"] == [
        "clk-to-q  0.52  0.52  Source x.rows_in_TRELLIS_FF_Q.Q",
        " routing  1.11  1.63  Net x.rows_in[0] (3,6) -> (3,8)",
        "   carry  0.00  2.15  (2 carry-chain hops)",
        "   logic  0.45  2.60  Source z.F",
        " routing  2.66  5.26  Net z[2] (6,13) -> (6,47)",
        "   setup  0.42  5.68  Source w_TRELLIS_FF_Q.CE",
        "1.39 ns logic, 4.29 ns routing",
    ]
