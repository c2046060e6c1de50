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

Yosys stacks RAMs in depth when that takes fewer of them (a weight-store bank of 4,096 words
whose 12-bit entries use 9 bits is two 2048 x 9 RAMs), and then a LUT per bit picks between the
RAMs before the register: the RAM's 5.8 ns clock-to-out, routing and the LUT were the 16-lane
build's critical path at 84.3 MHz (2026-12-03). :func:`absorb_through_muxes` retimes those
registers into the RAMs as well (its docstring says how).

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

__all__ = ["absorb_output_registers", "absorb_through_muxes", "buffer_collisions_undefined",
           "net_readers", "rewrite_netlist"]

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


def _ram_outputs(module):
    """``{net bit: (ram, port)}`` of every DP16KD read-data pin."""
    outputs = {}
    for name, cell in module["cells"].items():
        if cell["type"] == _RAM:
            for pin, bits in cell["connections"].items():
                if pin[:2] == "DO" and isinstance(bits[0], int):
                    outputs[bits[0]] = (name, pin[2])
    return outputs


def _mux_ports(module, readers):
    """``{(ram, port): (clock, [lut, ...])}``: NOREG read ports (not in 36-bit mode) whose used
    data pins each feed one LUT4 and nothing else."""
    cells, found = module["cells"], {}
    for name, ram in cells.items():
        if ram["type"] != _RAM or 36 in (_int_param(ram, "DATA_WIDTH_A"),
                                         _int_param(ram, "DATA_WIDTH_B")):
            continue
        for port in "AB":
            clock = ram["connections"].get(f"CLK{port}", ["0"])[0]
            if (_param(ram, f"REGMODE_{port}", "NOREG") != "NOREG" or not isinstance(clock, int)
                    or _param(ram, f"CLK{port}MUX", f"CLK{port}") != f"CLK{port}"):
                continue
            luts = []
            for pin, bits in ram["connections"].items():
                users = readers.get(bits[0], []) if isinstance(bits[0], int) else []
                if not pin.startswith(f"DO{port}") or not users:
                    continue
                if len(users) != 1 or users[0][0] is None or cells[users[0][0]]["type"] != "LUT4":
                    break
                luts.append(users[0][0])
            else:
                if luts:
                    found[(name, port)] = (clock, luts)
    return found


def _movable_lut(module, readers, ram_outputs, ports, lut, clock, gsr):
    """``(flip-flop, enable)`` if ``lut`` can move behind its RAMs' output registers: its output
    feeds one plain flip-flop on ``clock`` and nothing else, each RAM-driven input comes from a
    port in ``ports``, and all-zero inputs give 0 (the registers all start at zero)."""
    cells = module["cells"]
    z = cells[lut]["connections"]["Z"][0]
    users = readers.get(z, []) if isinstance(z, int) else []
    if len(users) != 1 or users[0][0] is None or users[0][1] != "DI":
        return None
    if int(str(cells[lut]["parameters"].get("INIT", "1")), 2) & 1:
        return None
    for pin, bits in cells[lut]["connections"].items():
        if pin != "Z" and bits[0] in ram_outputs and ram_outputs[bits[0]] not in ports:
            return None
    enable = _plain_ff(cells[users[0][0]], clock, gsr)
    return None if enable is None else (users[0][0], enable)


def _mux_luts(module, readers, ports):
    """Narrow ``ports`` to those whose LUTs can all move behind the RAM's output register (one
    enable per port); returns ``{lut: (flip-flop, enable, clock)}`` of the LUTs that move."""
    ram_outputs = _ram_outputs(module)
    while True:
        luts, bad = {}, set()
        for key, (clock, port_luts) in ports.items():
            gsr = _param(module["cells"][key[0]], "GSR", "ENABLED")
            found = [_movable_lut(module, readers, ram_outputs, ports, lut, clock, gsr)
                     for lut in port_luts]
            if None in found or len({enable for _, enable in found}) != 1:
                bad.add(key)
            else:
                luts.update((lut, (*f, clock)) for lut, f in zip(port_luts, found))
        if not bad:
            return luts
        for key in bad:
            del ports[key]


def absorb_through_muxes(netlist):
    """Where Yosys split a read port's word over RAMs stacked in depth, a LUT picks each bit
    between them before the register: the register cannot go into the RAMs as it is. Retimed:
    the RAMs' output registers take the data (REGMODE OUTREG, enable the register's), each
    LUT input from elsewhere (the stacked address bit) gets a register of its own with the
    same clock and enable, and the LUT drives what the register drove. In every cycle the LUT
    then sees what its register saw a cycle before, so the output is the same in every cycle.
    Returns the number of flip-flops removed after LUTs."""
    moved = 0
    for module in netlist["modules"].values():
        readers = net_readers(module)
        ports = _mux_ports(module, readers)
        luts = _mux_luts(module, readers, ports)
        cells = module["cells"]
        ram_outputs = _ram_outputs(module)
        for (ram, port), (_, port_luts) in ports.items():
            cells[ram]["parameters"][f"REGMODE_{port}"] = "OUTREG"
            cells[ram]["connections"][f"OCE{port}"] = [luts[port_luts[0]][1]]
        top = max((b for c in cells.values() for bits in c["connections"].values()
                   for b in bits if isinstance(b, int)), default=0)
        delayed = {}
        for lut, (ff, enable, clock) in luts.items():
            conns = cells[lut]["connections"]
            for pin in ("A", "B", "C", "D"):
                bit = conns.get(pin, ["0"])[0]
                if not isinstance(bit, int) or bit in ram_outputs:
                    continue
                if (bit, enable) not in delayed:
                    top += 1
                    delayed[(bit, enable)] = top
                    cells[f"{ff}$mux_select{len(delayed)}"] = {
                        **cells[ff], "connections": {**cells[ff]["connections"], "DI": [bit],
                                                     "Q": [top]}}
                conns[pin] = [delayed[(bit, enable)]]
            conns["Z"] = list(cells[ff]["connections"]["Q"])
            del cells[ff]
            moved += 1
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
    """Apply the pass (then :func:`absorb_through_muxes`) to the Yosys JSON file at ``path``,
    rewritten atomically; returns the number of flip-flops moved into RAMs."""
    return rewrite_netlist(path, lambda netlist: absorb(netlist) +
                           absorb_through_muxes(netlist))


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
