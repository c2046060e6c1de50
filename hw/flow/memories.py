"""The memories of an elaborated design, as the BRAM planner sees them.

Walking the elaborated fragment tree (rather than listing memories by hand) means the plan
covers every memory synthesis will see: the weight store's banks, the engine's buffers, FIFOs
inside the host link.
"""

import dataclasses
import math

from amaranth.hdl import Fragment, Shape
from amaranth.hdl._mem import MemoryInstance

from hw.flow.planner import MemorySpec

__all__ = ["design_memories"]


def _granularity(fragment, width):
    # Write-enable granularity in bits (None: one enable per word, or a ROM). Amaranth lowers
    # ``write_port(granularity=g)`` to an enable of ``width // g`` bits; several write ports
    # are combined to the coarsest granularity that divides all of them (each port's enable
    # boundaries are byte boundaries for Yosys).
    grans = [port._granularity for port in fragment._write_ports if len(port._data)]
    if not grans:
        return None
    g = math.gcd(*grans)
    return None if g >= width else g


def _const_lanes(data, width):
    # Bit columns with the same value in every word of the initial contents. Yosys' opt_mem
    # removes them from a memory nobody writes (a ROM) before memory_libmap maps it; Amaranth
    # emits the initial value of every word, so all words count.
    mask = (1 << width) - 1
    ones, zeros = 0, 0
    for raw in data.init._raw:
        raw &= mask
        ones |= raw
        zeros |= ~raw & mask
    varying = ones & zeros  # columns that are 1 somewhere and 0 somewhere
    return width - bin(varying).count("1")


def design_memories(elaboratable, platform=None):
    """``[MemorySpec]`` of every memory in ``elaboratable``, named by hierarchy path.

    A RAM's ``granularity`` is its write port's enable granularity (``None`` for a
    whole-word enable). A memory with N read ports counts N times (``name#readK`` for the
    copies), as synthesis duplicates it. A ROM's ``const_lanes`` counts the bit columns of its
    initial contents that are the same in every word (Yosys removes those before mapping). A
    ``ram_style`` attribute (``"distributed"``) becomes the spec's ``style``.
    """
    found = []

    def walk(fragment, path):
        if isinstance(fragment, MemoryInstance):
            data = fragment._data
            width = Shape.cast(data.shape).width
            ram = bool(fragment._write_ports)
            spec = MemorySpec("/".join(path), width, data.depth, write_port=ram,
                              granularity=_granularity(fragment, width) if ram else None,
                              const_lanes=0 if ram else _const_lanes(data, width),
                              style=fragment._attrs.get("ram_style"))
            found.append(spec)
            # A block RAM has one read port beside the write port: Yosys' memory_libmap gives
            # each further read port its own copy of the memory.
            for n in range(1, len(fragment._read_ports)):
                found.append(dataclasses.replace(spec, name=f"{spec.name}#read{n}"))
        for sub, name, *_ in fragment.subfragments:
            walk(sub, path + (str(name),))

    walk(Fragment.get(elaboratable, platform), ())
    return found
