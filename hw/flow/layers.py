"""What a board holds: the whole network, or which Fire layers; the block-RAM plan of a whole
design, decided before synthesis.

The whole network (:class:`~hw.network.accelerator.NetworkAccelerator`: every layer's weights
and the activation store on chip) is chosen where its plan fits the device's block RAM
(:func:`plan_network`); elsewhere the board gets Fire layers behind the host link.

``--layers`` as given, else the longest run fire2, fire3, ... whose whole design fits the
device's block RAM, or the board's share of it where a full device routes too slowly
(``Board.bram_budget``). The planner (:mod:`hw.flow.planner`) predicts every memory of the
elaborated design; a request that does not fit raises :class:`~hw.flow.errors.BuildError`
saying how many bits and block-RAM sites it needs and the device has.
"""

from __future__ import annotations

from hw.board.top import FireSystem
from hw.fire.program import EngineProgram
from hw.flow.errors import BuildError
from hw.flow.memories import design_memories
from hw.flow.planner import plan_memories

__all__ = ["system_for", "plan_for", "choose_layers", "plan_network", "network_system",
           "NETWORK_INPUT_SIZE"]

#: Image size of the whole-network design (the model's 227 x 227).
NETWORK_INPUT_SIZE = 227


def network_system(program, engine_config):
    """The whole-network design that is synthesised and planned."""
    from hw.network.accelerator import NetworkAccelerator
    return NetworkAccelerator(program, lanes=engine_config["lanes"])


def plan_network(board, qmodel, engine_config):
    """(NetworkProgram, BRAM plan) of the whole network on ``board``'s device."""
    from hw.network.program import NetworkProgram
    program = NetworkProgram(qmodel, input_size=NETWORK_INPUT_SIZE,
                             channels_per_beat=engine_config["channels_per_beat"])
    return program, plan_memories(design_memories(network_system(program, engine_config)),
                                  board.device)


def system_for(board, program, engine_config):
    """The board-independent design (engine, link, UART) that is synthesised and planned."""
    clk = board.clock_hz or 100e6
    return FireSystem(program, lanes=engine_config["lanes"],
                      channels_per_beat=engine_config["channels_per_beat"], clk_hz=clk)


def plan_for(board, qmodel, layers, engine_config):
    """(program, BRAM plan) of a design holding ``layers``."""
    program = EngineProgram.from_model(qmodel, layers)
    return program, plan_memories(design_memories(system_for(board, program, engine_config)),
                                  board.device)


def choose_layers(board, qmodel, engine_config, requested=None):
    """(layers, program, plan) of the Fire layers to build; BuildError if they cannot fit."""
    fires = [name for name, *_ in qmodel.fires]
    if requested:
        unknown = [name for name in requested if name not in fires]
        if unknown:
            raise BuildError(f"unknown layer {', '.join(unknown)}: the model's Fire layers are "
                             f"{', '.join(fires)}")
        program, plan = plan_for(board, qmodel, requested, engine_config)
        if not plan.fits:
            raise BuildError(_too_big(board, requested, plan))
        return list(requested), program, plan
    # More layers never need less memory, so the largest prefix that fits is found by
    # bisection (each probe elaborates a whole design, seconds for a thousand lanes).
    trials = {}

    budget = int(board.bram_budget * board.device.bram_sites)

    def probe(count):
        if count not in trials:
            trials[count] = plan_for(board, qmodel, fires[:count], engine_config)
        return trials[count][1].fits and trials[count][1].sites <= budget

    if probe(len(fires)):
        return fires, *trials[len(fires)]
    if not probe(1):
        raise BuildError(_too_big(board, fires[:1], trials[1][1]))
    lo, hi = 1, len(fires) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if probe(mid):
            lo = mid
        else:
            hi = mid - 1
    return fires[:lo], *trials[lo]


def _too_big(board, layers, plan):
    dev = board.device
    return (f"{', '.join(layers)} do not fit {board.name} ({dev.name}): the design needs "
            f"{plan.bits_used:,} bits of memory in {plan.sites} block-RAM sites, the device has "
            f"{dev.bram_bits:,} bits in {dev.bram_sites} sites; choose fewer layers with "
            f"--layers, fewer --lanes, or a larger board")
