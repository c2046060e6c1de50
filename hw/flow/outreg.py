"""ECP5: move the flip-flop that registers a block RAM's read data into the RAM (REGMODE OUTREG).

A netlist pass on Yosys's JSON, run between synthesis and place-and-route. Yosys maps a
synchronous read port to a DP16KD without its output register (REGMODE NOREG), and cannot
absorb a following register into it (YosysHQ/yosys#5814: only an instantiated primitive gets
OUTREG). The RAM's clock-to-out is then 5.8 ns on speed grade 6, against 0.95 ns with the
output register (the prjtrellis timing database, which nextpnr-ecp5 uses): the ULX3S builds'
critical path was a weight-store bank's DP16KD feeding its register across 5.4 ns of routing.

The designs here register block RAM outputs before any logic (:class:`hw.blocks.banked_rom.
BankedROM`, the engine's buffers). For every DP16KD read port whose used read-data bits each
feed one flip-flop's D input and nothing else, where all those flip-flops take the port's clock
(not inverted), share one clock enable, have no set/reset, start at zero and follow the global
set/reset as the RAM does (its ``GSR`` setting), the pass sets
``REGMODE_<port>`` to ``OUTREG``, drives the flip-flops' output nets from the RAM, connects the
flip-flops' enable to ``OCE<port>`` and removes the flip-flops. The output register is the
same register with the same enable, so every signal keeps its value in every cycle; only its
place on the chip changes. Ports in the 36-bit mode (data on both ports) are left alone.

That needs the read data to reach the flip-flop with no logic between. For the engines' group
buffers (input loader, output drainer) Yosys adds some: Amaranth's read ports return the old
word when the write port writes the same address in the same cycle, the DP16KD does not promise
that across ports, and Yosys emulates it with a comparator and a multiplexer after the RAM (the
first 100 MHz ULX3S build's critical path: 11.75 ns). The buffers' protocol never does that: a
slot is written only while it is not ``full`` and read only while it is (the input loader's
registered last write lands in the first cycle of ``full``; the engines read a slot several
cycles later), and the engine releases an input slot only after the results of its last read
are written (the drainer releases a slot after its last read; the engine's writes trail its
issue by the pipeline's latency).
The engine's line buffer reads and writes different groups at any time (its docstring).
:func:`buffer_collisions_undefined` therefore marks, in the RTLIL that Yosys reads, the read
ports of the memories of the ``loader``, ``drainer`` and ``line_buffer`` modules as undefined
on a collision (Yosys's ``COLLISION_X_MASK``), so no emulation logic is built for them; every
other memory keeps its read-old behaviour.
"""

import json
import os
import re
import tempfile
from collections import defaultdict

__all__ = ["absorb_output_registers", "buffer_collisions_undefined", "net_readers",
           "rewrite_netlist"]

_FF = "TRELLIS_FF"
_RAM = "DP16KD"


def _param(cell, name, default=""):
    return str(cell["parameters"].get(name, default)).strip()


def _int_param(cell, name):
    """An integer parameter: Yosys writes them as 32-digit binary strings."""
    value = cell["parameters"].get(name, 18)
    if isinstance(value, int):
        return value
    return int(value, 2) if len(value) == 32 and set(value) <= {"0", "1"} else int(value)


def net_readers(module):
    """``{net bit: [(cell name, port)]}`` of every input pin, and the module's output ports as
    ``(None, port)``."""
    readers = defaultdict(list)
    for name, cell in module["cells"].items():
        directions = cell.get("port_directions", {})
        for port, bits in cell["connections"].items():
            if directions.get(port, "input") != "output":
                for bit in bits:
                    if isinstance(bit, int):
                        readers[bit].append((name, port))
    for port, info in module.get("ports", {}).items():
        if info["direction"] != "input":
            for bit in info["bits"]:
                if isinstance(bit, int):
                    readers[bit].append((None, port))
    return readers


def _plain_ff(cell, clock, gsr):
    """The flip-flop's clock enable (a net bit or ``"1"``) if it is a plain register on
    ``clock`` (no set/reset, initial value zero, global set/reset ``gsr``), else None."""
    if cell["type"] != _FF or _param(cell, "CLKMUX", "CLK") != "CLK":
        return None
    if _param(cell, "GSR", "ENABLED") != gsr:
        return None
    conns = cell["connections"]
    if conns.get("CLK") != [clock] or conns.get("LSR", ["0"]) != ["0"]:
        return None
    if _param(cell, "LSRMUX", "LSR") != "LSR" or _param(cell, "REGSET", "RESET") != "RESET":
        return None
    cemux = _param(cell, "CEMUX", "1")
    if cemux == "1":
        return "1"
    if cemux == "CE" and len(conns.get("CE", [])) == 1:
        return conns["CE"][0]
    return None


def _port_registers(module, readers, ram, port):
    """``(enable, {output pin: flip-flop name})`` if ``port`` ("A"/"B") of the RAM cell can
    take its registers in, else None."""
    if _param(ram, f"REGMODE_{port}", "NOREG") != "NOREG":
        return None
    if _param(ram, f"CLK{port}MUX", f"CLK{port}") != f"CLK{port}":
        return None
    clock = ram["connections"].get(f"CLK{port}", ["0"])[0]
    if not isinstance(clock, int):
        return None
    enables, registers = set(), {}
    for pin, bits in ram["connections"].items():
        if not pin.startswith(f"DO{port}") or not isinstance(bits[0], int):
            continue
        users = readers.get(bits[0], [])
        if not users:
            continue
        if len(users) != 1 or users[0][0] is None or users[0][1] != "DI":
            return None
        enable = _plain_ff(module["cells"][users[0][0]], clock, _param(ram, "GSR", "ENABLED"))
        if enable is None:
            return None
        enables.add(enable)
        registers[pin] = users[0][0]
    if len(enables) != 1 or not registers:
        return None
    return enables.pop(), registers


def absorb(netlist):
    """Apply the pass to a parsed Yosys JSON netlist in place; returns the number of
    flip-flops moved into RAMs."""
    moved = 0
    for module in netlist["modules"].values():
        readers = net_readers(module)
        rams = [c for c in module["cells"].values() if c["type"] == _RAM]
        for ram in rams:
            if 36 in (_int_param(ram, "DATA_WIDTH_A"), _int_param(ram, "DATA_WIDTH_B")):
                continue
            for port in "AB":
                found = _port_registers(module, readers, ram, port)
                if found is None:
                    continue
                enable, registers = found
                for pin, ff_name in registers.items():
                    ram["connections"][pin] = list(module["cells"][ff_name]["connections"]["Q"])
                    del module["cells"][ff_name]
                ram["parameters"][f"REGMODE_{port}"] = "OUTREG"
                ram["connections"][f"OCE{port}"] = [enable]
                moved += len(registers)
    return moved


def rewrite_netlist(path, netlist_pass, *args):
    """Apply ``netlist_pass(netlist, *args)`` to the Yosys JSON file at ``path``, rewritten
    atomically; returns what the pass returns."""
    with open(path, encoding="utf-8") as f:
        netlist = json.load(f)
    result = netlist_pass(netlist, *args)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(netlist, f)
    os.replace(tmp, path)
    return result


def absorb_output_registers(path):
    """Apply the pass to the Yosys JSON file at ``path``, rewritten atomically; returns the
    number of flip-flops moved into RAMs."""
    return rewrite_netlist(path, absorb)


_GROUP_BUFFERS = re.compile(r"\.(loader|drainer|line_buffer)$")


def _undefined(match):
    width = int(match.group(1))
    return f"parameter \\COLLISION_X_MASK {width}'{'1' * width}"


def buffer_collisions_undefined(path):
    """In the RTLIL file at ``path`` (rewritten), set every read port of the memories of the
    ``...loader``, ``...drainer`` and ``...line_buffer`` modules undefined on a same-cycle
    write of the same address; returns the number of read ports changed."""
    with open(path, encoding="utf-8") as f:
        parts = f.read().split("\nmodule ")
    changed = 0
    for i, part in enumerate(parts[1:], 1):
        if _GROUP_BUFFERS.search(part.split("\n", 1)[0].strip()):
            parts[i], n = re.subn(r"parameter \\COLLISION_X_MASK (\d+)'[01]+", _undefined, part)
            changed += n
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".il")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("\nmodule ".join(parts))
    os.replace(tmp, path)
    return changed
