"""Fan-out pass: a register driving many cells is copied, one copy per block of its loads."""

import copy
import json

import pytest

from hw.flow.fanout import replicate, replicate_high_fanout


def _ff(d, q, ce=None):
    conns = {"CLK": [1], "DI": [d], "Q": [q], "LSR": ["0"]}
    if ce is not None:
        conns["CE"] = [ce]
    return {"type": "TRELLIS_FF", "connections": conns,
            "port_directions": {"CLK": "input", "DI": "input", "Q": "output", "LSR": "input",
                                "CE": "input"},
            "parameters": {"CEMUX": "CE" if ce is not None else "1", "GSR": "DISABLED"}}


def _lut(name_bits, out):
    return {"type": "LUT4", "connections": {"A": [name_bits], "B": ["0"], "Z": [out]},
            "port_directions": {"A": "input", "B": "input", "Z": "output"},
            "parameters": {"INIT": "1010101010101010"}}


def _netlist(loads, extra_q_user=False):
    """A flip-flop ``src`` (D net 5, Q net 10, enable net 6) read by ``loads`` LUTs named
    ``lane<k>`` (outputs 1000 + k), and by the module's output when ``extra_q_user``."""
    cells = {"src": _ff(5, 10, ce=6)}
    cells.update({f"lane{k}": _lut(10, 1000 + k) for k in range(loads)})
    ports = {"q": {"direction": "output", "bits": [10] if extra_q_user else [1000]}}
    return {"modules": {"top": {"cells": cells, "ports": ports,
                                "netnames": {"q": {"bits": [10], "hide_name": 0}}}}}


def _driver_of(cells, bit):
    return [n for n, c in cells.items() if c["type"] == "TRELLIS_FF"
            and c["connections"]["Q"] == [bit]]


def test_loads_are_split_into_blocks_in_lane_order():
    netlist = _netlist(10)
    assert replicate(netlist, limit=4) == (1, 2)
    cells = netlist["modules"]["top"]["cells"]
    drivers = [_driver_of(cells, cells[f"lane{k}"]["connections"]["A"][0])[0]
               for k in range(10)]
    # lane0..lane3 stay on the original; 4..7 and 8..9 each on a copy (lane10 after lane9).
    assert drivers == ["src"] * 4 + ["src$fanout1"] * 4 + ["src$fanout2"] * 2
    for name in ("src$fanout1", "src$fanout2"):
        original, twin = cells["src"], cells[name]
        assert twin["type"] == original["type"] and twin["parameters"] == original["parameters"]
        assert {p: b for p, b in twin["connections"].items() if p != "Q"} == \
            {p: b for p, b in original["connections"].items() if p != "Q"}
    new_bits = {cells["src$fanout1"]["connections"]["Q"][0],
                cells["src$fanout2"]["connections"]["Q"][0]}
    assert len(new_bits) == 2 and not new_bits & {5, 6, 10, 1, *range(1000, 1010)}


def test_lane_numbers_sort_as_numbers():
    netlist = _netlist(12)
    replicate(netlist, limit=10)
    cells = netlist["modules"]["top"]["cells"]
    moved = sorted(n for n, c in cells.items() if c["connections"].get("A") not in ([10], None))
    assert moved == ["lane10", "lane11"]


@pytest.mark.parametrize("loads", [0, 3, 4])
def test_registers_within_the_limit_stay_as_they_are(loads):
    netlist = _netlist(loads)
    before = copy.deepcopy(netlist)
    assert replicate(netlist, limit=4) == (0, 0)
    assert netlist == before


def test_module_outputs_stay_on_the_original():
    netlist = _netlist(6, extra_q_user=True)
    replicate(netlist, limit=4)
    module = netlist["modules"]["top"]
    assert module["ports"]["q"]["bits"] == [10]
    assert _driver_of(module["cells"], 10) == ["src"]


def test_bad_limit():
    with pytest.raises(ValueError, match="Fan-out limit must be a positive integer, not 0"):
        replicate(_netlist(2), limit=0)


def test_file_is_rewritten_in_place(tmp_path):
    path = tmp_path / "top.json"
    path.write_text(json.dumps(_netlist(9)))
    assert replicate_high_fanout(path, limit=4) == (1, 2)
    assert "src$fanout2" in json.loads(path.read_text())["modules"]["top"]["cells"]
    assert [p.name for p in tmp_path.iterdir()] == ["top.json"]
