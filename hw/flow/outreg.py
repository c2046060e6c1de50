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
place on the chip changes.

In the 36-bit mode (``DATA_WIDTH_A`` and ``_B`` 36, Yosys's pseudo-dual-port mapping: port A
writes, port B reads, the read data on both ports' output pins, ``DOA`` the low 18 bits) the
read port's registers move when both ports run on the flip-flops' clock and the read port's
reset is tied low: both ``REGMODE_A`` and ``REGMODE_B`` become ``OUTREG`` (in this mode
nextpnr-ecp5 copies the register mode to both ports itself, nextpnr PR #789; Lattice's
PDPW16KD has a single ``REGMODE``) and both ``OCEA`` and ``OCEB`` take the enable, so whichever
port's clock and enable the silicon uses for the low half, it is the register's. Checked
through nextpnr's timing and configuration only, not on a board: the 32-lane ULX3S build's
critical path was such a RAM, an input-buffer bank, at 5.8 ns of clock-to-out.

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
The engine's line buffer reads and writes different groups at any time (its docstring). A
max-pool stage (``pool.pixels``, ``pool.rows``) writes a line word in the cycle after MAX while
the next beat reads the next word (one-word lines use the write register, not the read); its
emulation logic was on the 32-lane ULX3S build's critical path (2026-12-05).
:func:`buffer_collisions_undefined` therefore marks, in the RTLIL that Yosys reads, the read
ports of the memories of the ``loader``, ``drainer``, ``line_buffer`` and pool stage modules as
undefined on a collision (Yosys's ``COLLISION_X_MASK``), so no emulation logic is built for
them; every other memory keeps its read-old behaviour.
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


def _port_registers(module, readers, ram, port, pins=None):
    """``(enable, {output pin: flip-flop name})`` if ``port`` ("A"/"B") of the RAM cell can
    take its registers in, else None. ``pins``: the prefixes of its read-data pins (default
    ``DO<port>``)."""
    if _param(ram, f"REGMODE_{port}", "NOREG") != "NOREG":
        return None
    if _param(ram, f"CLK{port}MUX", f"CLK{port}") != f"CLK{port}":
        return None
    clock = ram["connections"].get(f"CLK{port}", ["0"])[0]
    if not isinstance(clock, int):
        return None
    enables, registers = set(), {}
    for pin, bits in ram["connections"].items():
        if not pin.startswith(pins or (f"DO{port}",)) or not isinstance(bits[0], int):
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


def _pdp_registers(module, readers, ram):
    """``(enable, {output pin: flip-flop name})`` if the 36-bit-mode RAM's read data (on the
    ``DOA`` and ``DOB`` pins) can take its registers in, else None."""
    conns = ram["connections"]
    if conns.get("CLKA") != conns.get("CLKB") or conns.get("RSTB", ["0"]) != ["0"]:
        return None
    if _param(ram, "REGMODE_A", "NOREG") != "NOREG" or _param(ram, "CLKAMUX", "CLKA") != "CLKA":
        return None
    return _port_registers(module, readers, ram, "B", pins=("DOA", "DOB"))


def absorb(netlist):
    """Apply the pass to a parsed Yosys JSON netlist in place; returns the number of
    flip-flops moved into RAMs."""
    moved = 0
    for module in netlist["modules"].values():
        readers = net_readers(module)
        rams = [c for c in module["cells"].values() if c["type"] == _RAM]
        for ram in rams:
            widths = (_int_param(ram, "DATA_WIDTH_A"), _int_param(ram, "DATA_WIDTH_B"))
            if widths == (36, 36):
                ports = [("AB", _pdp_registers(module, readers, ram))]
            elif 36 in widths:
                continue
            else:
                ports = [(port, _port_registers(module, readers, ram, port)) for port in "AB"]
            for regs, found in ports:
                if found is None:
                    continue
                enable, registers = found
                for pin, ff_name in registers.items():
                    ram["connections"][pin] = list(module["cells"][ff_name]["connections"]["Q"])
                    del module["cells"][ff_name]
                for port in regs:
                    ram["parameters"][f"REGMODE_{port}"] = "OUTREG"
                    ram["connections"][f"OCE{port}"] = [enable]
                moved += len(registers)
    return moved


def _drivers(module):
    """``{net bit: cell name}`` of every cell output pin."""
    drivers = {}
    for name, cell in module["cells"].items():
        for port, bits in cell["connections"].items():
            if cell.get("port_directions", {}).get(port) == "output":
                drivers.update((bit, name) for bit in bits if isinstance(bit, int))
    return drivers


def _ram_outputs(module):
    """``{net bit: (ram, port)}`` of every DP16KD read-data pin."""
    outputs = {}
    for name, cell in module["cells"].items():
        if cell["type"] == _RAM:
            for pin, bits in cell["connections"].items():
                if pin[:2] == "DO" and isinstance(bits[0], int):
                    outputs[bits[0]] = (name, pin[2])
    return outputs


#: Combinational cells a multiplexer after stacked RAMs is made of: data inputs, output, and
#: how the cell computes its output from its inputs.
_LOGIC = {
    "LUT4": (("A", "B", "C", "D"), "Z",
             lambda c, v: int(str(c["parameters"]["INIT"]), 2) >> (
                 v["A"] | v["B"] << 1 | v["C"] << 2 | v["D"] << 3) & 1),
    "PFUMX": (("ALUT", "BLUT", "C0"), "Z", lambda c, v: v["BLUT"] if v["C0"] else v["ALUT"]),
    "L6MUX21": (("D0", "D1", "SD"), "Z", lambda c, v: v["D1"] if v["SD"] else v["D0"]),
}


def _cone(module, readers, drivers, ff):
    """``(cells, leaves)`` of the combinational cone (``_LOGIC`` cells) driving the
    flip-flop's D input, if each of its cells drives only the cone (the last only the
    flip-flop), else None. Leaves are the input nets (ints) the cone reads."""
    cells = module["cells"]
    root = drivers.get(cells[ff]["connections"]["DI"][0])
    if root is None or cells[root]["type"] not in _LOGIC:
        return None
    cone, leaves, todo = set(), set(), [root]
    while todo:
        name = todo.pop()
        if name in cone:
            continue
        cone.add(name)
        for pin in _LOGIC[cells[name]["type"]][0]:
            bit = cells[name]["connections"].get(pin, ["0"])[0]
            if not isinstance(bit, int):
                continue
            source = drivers.get(bit)
            if source is not None and cells[source]["type"] in _LOGIC:
                todo.append(source)
            else:
                leaves.add(bit)
    for name in cone:
        out = cells[name]["connections"][_LOGIC[cells[name]["type"]][1]][0]
        users = {cell for cell, _ in readers.get(out, [])}
        if users - cone - ({ff} if name == root else set()) or None in users:
            return None
    return cone, leaves


def _zero_output(module, drivers, cone, net):
    """The value of ``net`` (in the cone) when every leaf is 0."""
    cells = module["cells"]
    name = drivers.get(net) if isinstance(net, int) else None
    if name not in cone:
        return 1 if net == "1" else 0
    pins, _, function = _LOGIC[cells[name]["type"]]
    values = {p: _zero_output(module, drivers, cone, cells[name]["connections"].get(p, ["0"])[0])
              for p in pins}
    return function(cells[name], values)


def _movable_cones(module, readers):
    """``({(ram, port): enable}, {flip-flop: (cone, leaves)})``: the NOREG read ports (not in
    36-bit mode) whose used data pins feed only cones of logic that can move behind the
    RAMs' output registers, and those cones by flip-flop. A cone moves when its flip-flop is
    plain, on the ports' clock, with the RAMs' global set/reset, every RAM pin it reads is of
    a port that moves, and all-zero leaves give 0 (its registers all start at zero)."""
    cells, drivers, ram_outputs = module["cells"], _drivers(module), _ram_outputs(module)
    cones = {}
    for ff, cell in cells.items():
        if cell["type"] == _FF:
            found = _cone(module, readers, drivers, ff)
            if found and any(leaf in ram_outputs for leaf in found[1]):
                cones[ff] = found
    owner = {name: ff for ff, (cone, _) in cones.items() for name in cone}
    ports = {}
    for bit, key in ram_outputs.items():
        users = readers.get(bit, [])
        if users:
            ports.setdefault(key, set()).update(owner.get(cell) for cell, _ in users)
    while True:
        bad = set()
        for (name, port), ffs in ports.items():
            ram = cells[name]
            clock = ram["connections"].get(f"CLK{port}", ["0"])[0]
            enables = {_plain_ff(cells[ff], clock, _param(ram, "GSR", "ENABLED"))
                       if ff in cones else None for ff in ffs}
            if (None in enables or len(enables) != 1 or not isinstance(clock, int)
                    or _param(ram, f"REGMODE_{port}", "NOREG") != "NOREG"
                    or _param(ram, f"CLK{port}MUX", f"CLK{port}") != f"CLK{port}"
                    or 36 in (_int_param(ram, "DATA_WIDTH_A"), _int_param(ram, "DATA_WIDTH_B"))
                    or any(_zero_output(module, drivers, cones[ff][0],
                                        cells[ff]["connections"]["DI"][0]) for ff in ffs)
                    or any(ram_outputs[leaf] not in ports for ff in ffs
                           for leaf in cones[ff][1] if leaf in ram_outputs)):
                bad.add((name, port))
        if not bad:
            break
        for key in bad:
            del ports[key]
    moving = {ff for ffs in ports.values() for ff in ffs}
    enables = {key: _plain_ff(cells[next(iter(ffs))], cells[key[0]]["connections"][
        f"CLK{key[1]}"][0], _param(cells[key[0]], "GSR", "ENABLED")) for key, ffs in ports.items()}
    return enables, {ff: cones[ff] for ff in moving}


def absorb_through_muxes(netlist):
    """Where Yosys split a read port's word over RAMs stacked in depth, logic (LUTs, wide
    multiplexers) picks each bit between them before the register: the register cannot go
    into the RAMs as it is. Retimed: the RAMs' output registers take the data (REGMODE OUTREG,
    enable the register's), each other input of that logic (the stacked address bits) gets a
    register of its own with the same clock and enable, and the logic drives what the register
    drove. In every cycle the logic then sees what the register saw a cycle before, so its
    output is the register's output in every cycle. Returns the number of flip-flops removed."""
    moved = 0
    for module in netlist["modules"].values():
        readers = net_readers(module)
        enables, cones = _movable_cones(module, readers)
        cells, drivers, ram_outputs = module["cells"], _drivers(module), _ram_outputs(module)
        for (ram, port), enable in enables.items():
            cells[ram]["parameters"][f"REGMODE_{port}"] = "OUTREG"
            cells[ram]["connections"][f"OCE{port}"] = [enable]
        top = max((b for c in cells.values() for bits in c["connections"].values()
                   for b in bits if isinstance(b, int)), default=0)
        delayed = {}
        for ff, (cone, leaves) in cones.items():
            register = cells[ff]
            for name in cone:
                conns = cells[name]["connections"]
                for pin in _LOGIC[cells[name]["type"]][0]:
                    bit = conns.get(pin, ["0"])[0]
                    if bit not in leaves or bit in ram_outputs:
                        continue
                    key = (bit, tuple(register["connections"].get("CE", [])),
                           tuple(register["connections"]["CLK"]))
                    if key not in delayed:
                        top += 1
                        delayed[key] = top
                        cells[f"{ff}$mux_input{len(delayed)}"] = {
                            **register, "connections": {**register["connections"], "DI": [bit],
                                                        "Q": [top]}}
                    conns[pin] = [delayed[key]]
            root = drivers[register["connections"]["DI"][0]]
            cells[root]["connections"][_LOGIC[cells[root]["type"]][1]] = \
                list(register["connections"]["Q"])
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


_GROUP_BUFFERS = re.compile(r"\.(loader|drainer|line_buffer)$|\.pool\.(pixels|rows)$")


def _undefined(match):
    width = int(match.group(1))
    return f"parameter \\COLLISION_X_MASK {width}'{'1' * width}"


def buffer_collisions_undefined(path):
    """In the RTLIL file at ``path`` (rewritten), set every read port of the memories of the
    ``...loader``, ``...drainer``, ``...line_buffer``, ``...pool.pixels`` and ``...pool.rows``
    modules undefined on a same-cycle write of the same address; returns the number of read
    ports changed."""
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
