"""Which Fire datapath an accelerator is built on: the shared-lane engine or the dataflow one.

- ``shared`` (:class:`~hw.fire.engine.FireEngine`): P lanes (= multipliers) run squeeze,
  expand 1x1 and expand 3x3 of a group one after another.
- ``dataflow`` (:class:`~hw.dataflow.engine.DataflowEngine`): a squeeze PE array and expand-1x1
  and expand-3x3 units run concurrently, each with ``P / passes[u]`` multipliers;
  :func:`choose_dataflow` picks P and the passes for a multiplier budget.

An :class:`Arch` builds the program and the engine for a list of layers, and predicts a layer
run's cycles with the matching exact cycle model, so the network accelerator, the build flow
and the bench take either.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hw.blocks.weight_store import DEFAULT_BANK_DEPTH

__all__ = ["ARCHS", "Arch", "SHARED", "arch_of", "dataflow_candidates", "choose_dataflow"]

ARCHS = ("shared", "dataflow")


@dataclass(frozen=True)
class Arch:
    """A Fire datapath: ``name`` (``shared`` or ``dataflow``); for dataflow, each unit's
    passes over a group and how layers are split between the units (see
    :mod:`hw.dataflow.program`); for shared, ``channels_per_cycle`` (W), the channels of a pixel
    its input loader and output drainer move per cycle, and ``line_buffer`` (``"block"`` or
    ``"distributed"``), what its line buffer is built from (LUT RAM where block RAM is short;
    the design behaves the same)."""
    name: str = "shared"
    passes: tuple = (1, 1, 1)
    balance: str = "all"
    channels_per_cycle: int = 1
    line_buffer: str = "block"

    def __post_init__(self):
        from hw.dataflow.program import BALANCE
        if self.name not in ARCHS:
            raise ValueError(f"unknown architecture {self.name!r}: use shared or dataflow")
        if self.balance not in BALANCE:
            raise ValueError(f"balance must be one of {', '.join(BALANCE)}, not "
                             f"{self.balance!r}")
        W = self.channels_per_cycle
        if isinstance(W, bool) or not isinstance(W, int) or W < 1 or W & (W - 1):
            raise ValueError(f"channels per cycle must be a power of two, not {W!r}")
        if W > 1 and self.name != "shared":
            raise ValueError("channels per cycle above 1 is built for the shared engine only")
        from hw.fire.line_buffer import RAMS
        if self.line_buffer not in RAMS:
            raise ValueError(f"line buffer must be one of {', '.join(RAMS)}, not "
                             f"{self.line_buffer!r}")
        if self.line_buffer != "block" and self.name != "shared":
            raise ValueError("a distributed line buffer is built for the shared engine only")

    def multipliers(self, lanes):
        """Multipliers of the datapath with group size (lanes) ``lanes``."""
        if self.name == "shared":
            return lanes
        return sum(lanes // p for p in self.passes)

    @property
    def base(self):
        """The architecture without its loader/drainer width (what a program depends on)."""
        return Arch(self.name, self.passes, self.balance)

    def describe(self, lanes):
        if self.name == "shared":
            wide = (f", {self.channels_per_cycle} channels per cycle in and out"
                    if self.channels_per_cycle > 1 else "")
            lut = ", line buffer in LUT RAM" if self.line_buffer == "distributed" else ""
            return f"shared, {lanes} lanes{wide}{lut}"
        sq, one, three = (lanes // p for p in self.passes)
        return (f"dataflow, {lanes}-pixel groups: squeeze {sq}, expand-1x1 {one}, "
                f"expand-3x3 {three} multipliers")

    def program(self, layer_specs, *, code_bits=8, weight_bits=16):
        """The engine program of ``layer_specs`` (as :class:`EngineProgram` takes them)."""
        if self.name == "shared":
            from hw.fire.program import EngineProgram
            return EngineProgram(layer_specs, code_bits=code_bits, weight_bits=weight_bits)
        from hw.dataflow.program import DataflowProgram
        return DataflowProgram(layer_specs, code_bits=code_bits, weight_bits=weight_bits,
                               balance=self.balance, passes=self.passes)

    def engine(self, program, *, lanes, channels_per_beat, acc_width=32,
               bank_depth=DEFAULT_BANK_DEPTH, fixed_widths=False):
        """The engine for ``program`` (made by :meth:`program`). ``fixed_widths``: the shared
        engine runs Fire layers only at their own widths (see
        :class:`~hw.fire.engine.FireEngine`), and so do the dataflow units."""
        if self.name == "shared":
            from hw.fire.engine import FireEngine
            return FireEngine(program, lanes=lanes, channels_per_beat=channels_per_beat,
                              acc_width=acc_width, bank_depth=bank_depth,
                              channels_per_cycle=self.channels_per_cycle,
                              fixed_widths=fixed_widths, line_buffer_ram=self.line_buffer)
        from hw.dataflow.engine import DataflowEngine
        return DataflowEngine(program, lanes=lanes, channels_per_beat=channels_per_beat,
                              acc_width=acc_width, bank_depth=bank_depth,
                              fixed_widths=fixed_widths)

    def layer_cycles(self, program, index, *, lanes, channels_per_beat, height=None,
                     width=None, input_ready=None):
        """Exact cycles of one run of layer ``index`` of ``program``."""
        if self.name == "shared":
            from hw.fire.cycle_model import run_cycles
            return run_cycles(program.layers[index], lanes=lanes,
                              channels_per_beat=channels_per_beat, height=height, width=width,
                              input_ready=input_ready,
                              channels_per_cycle=self.channels_per_cycle)
        from hw.dataflow.cycle_model import layer_cycles
        from hw.dataflow.engine import DataflowEngine
        params = {"lanes": lanes, "channels_per_beat": channels_per_beat,
                  "line_groups": DataflowEngine.line_groups_for(program, lanes)}
        return layer_cycles(params, program, index, height=height, width=width,
                            input_ready=input_ready)


SHARED = Arch()


def arch_of(engine_config):
    """The :class:`Arch` an engine configuration (``board.engine`` and the build's options:
    ``arch``, ``passes``, ``balance``, ``channels_per_cycle``, ``line_buffer``) asks for."""
    return Arch(engine_config.get("arch", "shared"), tuple(engine_config.get("passes", (1, 1, 1))),
                engine_config.get("balance", "all"), engine_config.get("channels_per_cycle", 1),
                engine_config.get("line_buffer", "block"))


def dataflow_candidates(budget):
    """``(lanes, passes)`` of every dataflow datapath with at most ``budget`` multipliers and
    more than half of them: lanes a power of two, passes 1, 2 or 4 per unit."""
    found = []
    lanes = 1
    while lanes <= budget:
        for passes in itertools.product((1, 2, 4), repeat=3):
            if any(lanes % p for p in passes):
                continue
            used = sum(lanes // p for p in passes)
            if budget // 2 < used <= budget:
                found.append((lanes, passes))
        lanes *= 2
    return found


def choose_dataflow(budget, evaluate, *, balance="all"):
    """The dataflow datapath of at most ``budget`` multipliers with the fewest cycles:
    ``(cycles, lanes, Arch)``; ``evaluate(arch, lanes)`` gives the cycles of the work that
    counts (fewer multipliers first on ties).

    Raises
    ------
    ValueError
        If no dataflow datapath fits ``budget`` (it needs at least 3 multipliers).
    """
    candidates = dataflow_candidates(budget)
    if not candidates:
        raise ValueError(f"a dataflow datapath needs at least 3 multipliers, not {budget}")
    best = None
    for lanes, passes in candidates:
        arch = Arch("dataflow", passes, balance)
        key = (evaluate(arch, lanes), arch.multipliers(lanes), lanes, passes)
        if best is None or key < best[0]:
            best = (key, lanes, arch)
    return best[0][0], best[1], best[2]
