"""ECP5: copy a flip-flop that drives many cells, one copy per block of its loads.

A netlist pass on Yosys's JSON, run between synthesis and place-and-route. The engine
broadcasts a few registers to every lane: the weight to every multiplier, an entry's
``valid``/``first`` to every accumulator bit, the line buffer's rotation amount to every
multiplexer of a shifter stage. One flip-flop driving 500-2,000 cells spread over the chip is a
long net whatever its place, and the 64-lane build's critical paths ended in such nets. Copies
of the register in the RTL do not survive synthesis (Yosys's ``opt_merge`` merges identical
flip-flops; a ``keep`` on their wires does not stop it), so the copies are made here.

For every ``TRELLIS_FF`` whose output drives more than ``limit`` cell inputs, the loads are
sorted by cell name (names carry the lane: ``acc12``, ``requant12``; numbers compare as
numbers) and cut into blocks of at most ``limit``; the first block stays on the flip-flop, each
other block gets a copy of it: the same cell type, parameters, clock, enable, set/reset and
data input. Every copy holds the same value in every cycle, so behaviour is unchanged; the
placer can put each copy by its block. Output ports of the module stay on the original.
"""

import json
import re

from hw.flow.outreg import net_readers, rewrite_netlist

__all__ = ["replicate", "replicate_high_fanout", "DEFAULT_LIMIT"]

_FF = "TRELLIS_FF"
DEFAULT_LIMIT = 64


def _natural(name):
    """Sort key: digit runs compare as numbers (``acc2`` before ``acc10``)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def replicate(netlist, limit=DEFAULT_LIMIT):
    """Apply the pass to a parsed Yosys JSON netlist in place; returns ``(registers, copies)``:
    how many flip-flops were split and how many copies were added."""
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"Fan-out limit must be a positive integer, not {limit!r}")
    split = added = 0
    for module in netlist["modules"].values():
        readers = net_readers(module)
        netnames = module.setdefault("netnames", {})
        used = [b for cell in module["cells"].values() for bits in cell["connections"].values()
                for b in bits if isinstance(b, int)]
        next_bit = 1 + max(used + [b for net in netnames.values()
                            for b in net["bits"] if isinstance(b, int)] + [1])
        for name in sorted(module["cells"]):
            cell = module["cells"][name]
            if cell["type"] != _FF:
                continue
            q = cell["connections"].get("Q", [None])[0]
            loads = [r for r in readers.get(q, []) if r[0] is not None and r[0] != name]
            if not isinstance(q, int) or len(loads) <= limit:
                continue
            loads.sort(key=lambda r: (_natural(r[0]), r[1]))
            split += 1
            for index in range(1, (len(loads) + limit - 1) // limit):
                bit, next_bit = next_bit, next_bit + 1
                copy = json.loads(json.dumps(cell))
                copy["connections"]["Q"] = [bit]
                module["cells"][f"{name}$fanout{index}"] = copy
                netnames[f"{name}$fanout{index}$q"] = {"hide_name": 1, "bits": [bit],
                                                        "attributes": {}}
                for load, pin in loads[index * limit:(index + 1) * limit]:
                    bits = module["cells"][load]["connections"][pin]
                    module["cells"][load]["connections"][pin] = [bit if b == q else b
                                                                 for b in bits]
                added += 1
    return split, added


def replicate_high_fanout(path, limit=DEFAULT_LIMIT):
    """Apply the pass to the Yosys JSON file at ``path``, rewritten atomically; returns
    ``(registers, copies)``."""
    return rewrite_netlist(path, replicate, limit)
