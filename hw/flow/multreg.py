"""ECP5: move the flip-flops around a multiplier into the MULT18X18D's own registers.

A netlist pass on Yosys's JSON, run between synthesis and place-and-route (after
:mod:`hw.flow.outreg`, before :mod:`hw.flow.fanout`). Yosys maps ``a * b`` to a MULT18X18D with
every register off (``REG_*_CLK = "NONE"``) and leaves the registers around it in the fabric. In
the engines each lane's multiplier sits between two registers (:mod:`hw.fire.entry_pipeline`:
the activation register ``act<k>_sel`` before it, the product register ``prod<k>_c15`` after
it). At 64 lanes that is 64 x 24 product bits leaving the DSP row for fabric flip-flops: in the
64-lane ULX3S build the multipliers' P pins into those flip-flops were 14% of router2's
congestion, and moving them into the DSPs took router2 from stalling at ~8,300 overused wires
to 436 and still falling (2026-12-03).

For every MULT18X18D with all its registers off:

* **output**: when each used product bit ``P<i>`` feeds one flip-flop's D input and nothing
  else, those flip-flops become the multiplier's output register (``REG_OUTPUT_CLK``);
* **inputs** ``A`` and ``B``, each alone: when every net on the operand's pins is either the
  constant 0 or the output of a flip-flop that feeds that operand's pins of multipliers and
  nothing else, and every one of those multipliers takes it in too, the flip-flops become the
  operand's input register (``REG_INPUTA_CLK`` / ``REG_INPUTB_CLK``) of each of them, and the
  pins read the flip-flops' D inputs. So the weight register, broadcast to every lane's
  multiplier, becomes one input register per multiplier; the register before it then drives
  the lanes (and :mod:`hw.flow.fanout` copies it per block of 64 loads, as it did the weight
  register). A flip-flop that also feeds other cells stays where it is, and so does one that an
  output register takes (one multiplier's product register feeding another's operand).
  nextpnr times a multiplier with one input registered and the other not as if neither were
  (it warns "unsupported mixed input register modes"): pessimistic, not wrong.

A flip-flop qualifies when it is a plain register (no set/reset, initial value zero, not an
inverted clock). All the flip-flops taken into one multiplier share one clock (``CLK0``) and one
global set/reset setting, which the multiplier takes (its ``GSR``, free while all its registers
are off); each distinct clock enable gets one of ``CE0``-``CE3`` (a multiplier needing more is
left alone) and ``RST0`` is tied low. The DSP register is the same register with the same clock,
enable and reset value, so every signal keeps its value in every cycle; the registered
constant-0 pins stay 0. nextpnr-ecp5 times the multiplier from these settings (nextpnr PR #435)
and writes them to the bitstream.

The build (:mod:`hw.flow.build`) moves both (``inputs=True``). Measured on the 64-lane ULX3S
default with nextpnr's electrostatic placer and router1 (2026-12-05/06, placer seeds 1-6): with
the output registers alone, seeds 1 and 2 routed (104.8 and 111.1 MHz, place and route 5.2 and
4.9 minutes) but seed 3 left router1 with 7,103 unrouted arcs after 652 s; with the input
registers as well, seeds 1-3, 5 and 6 route at 108.0-115.2 MHz in 4.6-8.7 minutes, and seed 4
left 5,250 arcs after 591 s. Earlier, with HeAP and router2 (2026-12-03), the input registers
made router2 stall at about 5,200 overused wires, so until 2026-12-06 the build moved the
output registers only.

Yosys has no simulation model of the MULT18X18D's registers (its ``cells_sim.v`` has none), so
the pass is tested on netlists, synthetic and Yosys's own, and through nextpnr-ecp5 to the DSP
tile's configuration (tests/test_multreg.py); the designs it runs on are tested bit-exact before
synthesis.
"""

from hw.flow.outreg import _drivers, _param, _plain_ff, net_readers, rewrite_netlist

__all__ = ["absorb_multiplier_registers", "absorb_multipliers"]

_MULT = "MULT18X18D"
_REGISTERS = ("INPUTA", "INPUTB", "INPUTC", "PIPELINE", "OUTPUT")
_ENABLES = ("CE0", "CE1", "CE2", "CE3")


def _unregistered(mult):
    """True if every register of the multiplier is off and its clock pins are unused."""
    if any(_param(mult, f"REG_{r}_CLK", "NONE") != "NONE" for r in _REGISTERS):
        return False
    conns = mult["connections"]
    return all(conns.get(f"CLK{i}", ["0"])[0] in ("0", "x") for i in range(4))


def _pins(mult, operand):
    """The multiplier's pins of ``operand`` ("A", "B", "P") with their net bits."""
    return {pin: bits[0] for pin, bits in mult["connections"].items()
            if pin[0] == operand and pin[1:].isdigit()}


def _output_register(module, readers, mult):
    """``(clock, enable, {P pin: flip-flop name})`` if the product bits can move into the
    output register, else None."""
    found = {}
    for pin, net in _pins(mult, "P").items():
        users = readers.get(net, []) if isinstance(net, int) else []
        if not users:
            continue
        if len(users) != 1 or users[0][0] is None or users[0][1] != "DI":
            return None
        found[pin] = _register(module["cells"][users[0][0]], users[0][0])
        if found[pin] is None:
            return None
    return _shared(found)


def _operand_pin(module, user, port, operand):
    """True if ``(user, port)`` is a pin of ``operand`` of a multiplier."""
    return (user is not None and module["cells"][user]["type"] == _MULT
            and port[0] == operand and port[1:].isdigit())


def _input_register(module, readers, drivers, mult_name, operand):
    """``(clock, enable, {pin: flip-flop name})`` if every pin of ``operand`` reads a constant
    0 or a flip-flop that drives only pins of ``operand`` of multipliers, else None."""
    found = {}
    for pin, net in _pins(module["cells"][mult_name], operand).items():
        if not isinstance(net, int):
            if net not in ("0", "x"):
                return None     # a registered constant 1 would read 0 before the first edge
            continue
        ff_name = drivers.get(net)
        ff = module["cells"].get(ff_name)
        if ff is None or ff["connections"].get("Q") != [net]:
            return None
        if not all(_operand_pin(module, u, p, operand) for u, p in readers.get(net, [])):
            return None
        found[pin] = _register(ff, ff_name)
        if found[pin] is None:
            return None
    return _shared(found)


def _register(ff, name):
    """``((clock, global set/reset), enable, name)`` of a plain flip-flop, else None."""
    clock = ff["connections"].get("CLK", [None])[0]
    gsr = _param(ff, "GSR", "ENABLED")
    enable = _plain_ff(ff, clock, gsr) if isinstance(clock, int) else None
    return None if enable is None else ((clock, gsr), enable, name)


def _shared(found):
    """``((clock, global set/reset), enable, {pin: flip-flop})`` if the flip-flops found share
    one clock, global set/reset setting and enable and there is at least one, else None."""
    if len({(c, e) for c, e, _ in found.values()}) != 1:
        return None
    clock, enable, _ = next(iter(found.values()))
    return clock, enable, {pin: ff for pin, (_, _, ff) in found.items()}


def _plan(module, readers, drivers, name, inputs):
    """``({register: (enable, {pin: flip-flop})}, (clock, global set/reset))`` of what one
    multiplier could take in, judged alone; ``({}, None)`` if nothing."""
    plan, clocks = {}, set()
    candidates = {"OUTPUT": _output_register(module, readers, module["cells"][name])}
    if inputs:
        candidates.update({r: _input_register(module, readers, drivers, name, r[-1])
                           for r in ("INPUTA", "INPUTB")})
    for register, found in candidates.items():
        if found is not None:
            clock, enable, pins = found
            clocks.add(clock)
            plan[register] = (enable, pins)
    if len(clocks) != 1 or len({e for e, _ in plan.values()}) > len(_ENABLES):
        return {}, None
    return plan, clocks.pop()


def _agree(module, readers, plans):
    """Drop, until nothing changes, every input register whose flip-flops also feed a
    multiplier that does not take them in, or that an output register takes (a product
    register feeding another multiplier's operand moves into one of the two, not both)."""
    outputs = {ff for plan, _ in plans.values() if "OUTPUT" in plan
               for ff in plan["OUTPUT"][1].values()}
    dropped = True
    while dropped:
        dropped = False
        for plan, _ in plans.values():
            for register in ("INPUTA", "INPUTB"):
                if register not in plan:
                    continue
                ffs = set(plan[register][1].values())
                loads = [r for ff in ffs
                         for r in readers.get(module["cells"][ff]["connections"]["Q"][0], [])]
                if ffs & outputs or any(register not in plans[user][0] for user, _ in loads):
                    del plan[register]
                    dropped = True


def _apply(module, name, plan, clock):
    """Rewire one multiplier to its registers; returns the flip-flops it took in."""
    mult = module["cells"][name]
    enables = sorted({e for e, _ in plan.values()}, key=str)
    conns, params = mult["connections"], mult["parameters"]
    taken = set()
    for register, (enable, pins) in plan.items():
        side = "Q" if register == "OUTPUT" else "DI"
        for pin, ff_name in pins.items():
            conns[pin] = list(module["cells"][ff_name]["connections"][side])
        taken |= set(pins.values())          # a sign bit drives several pins
        params.update({f"REG_{register}_CLK": "CLK0",
                       f"REG_{register}_CE": _ENABLES[enables.index(enable)],
                       f"REG_{register}_RST": "RST0"})
    clock, params["GSR"] = clock
    conns.update({"CLK0": [clock], "RST0": ["0"]})
    conns.update({_ENABLES[i]: [e] for i, e in enumerate(enables)})
    directions = mult.setdefault("port_directions", {})
    directions.update({p: "input" for p in ("CLK0", "RST0", *_ENABLES[:len(enables)])})
    return taken


def absorb_multipliers(netlist, inputs=True):
    """Apply the pass to a parsed Yosys JSON netlist in place (``inputs=False``: the output
    registers only); returns ``(flip-flops moved, multipliers changed)``."""
    moved = changed = 0
    for module in netlist["modules"].values():
        readers, drivers = net_readers(module), _drivers(module)
        plans = {name: _plan(module, readers, drivers, name, inputs) if _unregistered(cell)
                 else ({}, None)
                 for name, cell in module["cells"].items() if cell["type"] == _MULT}
        _agree(module, readers, plans)
        taken = set()
        for name, (plan, clock) in sorted(plans.items()):
            if plan:
                taken |= _apply(module, name, plan, clock)
                changed += 1
        for ff_name in taken:
            del module["cells"][ff_name]
        moved += len(taken)
    return moved, changed


def absorb_multiplier_registers(path, inputs=True):
    """Apply the pass to the Yosys JSON file at ``path``, rewritten atomically; returns
    ``(flip-flops moved, multipliers changed)``."""
    return rewrite_netlist(path, absorb_multipliers, inputs)
