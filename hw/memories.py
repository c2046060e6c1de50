"""The memories of an elaborated design, as the BRAM planner sees them.

Walking the elaborated fragment tree (rather than listing memories by hand) means the plan
covers every memory synthesis will see: the weight store's banks, the engine's buffers, FIFOs
inside the host link.
"""

from amaranth.hdl import Fragment, Shape
from amaranth.hdl._mem import MemoryInstance

from .planner import MemorySpec

__all__ = ["design_memories"]


def design_memories(elaboratable, platform=None):
    """``[MemorySpec]`` of every memory in ``elaboratable``, named by hierarchy path."""
    found = []

    def walk(fragment, path):
        if isinstance(fragment, MemoryInstance):
            data = fragment._data
            width = Shape.cast(data.shape).width
            found.append(MemorySpec("/".join(path), width, data.depth,
                                    write_port=bool(fragment._write_ports)))
        for sub, name, *_ in fragment.subfragments:
            walk(sub, path + (str(name),))

    walk(Fragment.get(elaboratable, platform), ())
    return found
