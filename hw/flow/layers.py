"""What a board holds: the whole network, or which of its layers; the block-RAM plan of a whole
design, decided before synthesis.

The whole network (:class:`~hw.network.accelerator.NetworkAccelerator`: every layer's weights
and the activation store on chip) is chosen where its plan fits the device's block RAM
(:func:`plan_network`); elsewhere the board gets the layers (network steps) that fit behind the
host link, and the host drives the network (:mod:`hw.board.network_host`).

Host-driven: ``--layers`` as given, else the longest run fire2, fire3, ... whose whole design
fits the device's block RAM, or the board's share of it where a full device routes too slowly
(``Board.bram_budget``), then conv1 and the last convolution where they still fit. The
planner (:mod:`hw.flow.planner`) predicts every memory of the
elaborated design; a request that does not fit raises :class:`~hw.flow.errors.BuildError`
saying how many bits and block-RAM sites it needs and the device has.
"""

from __future__ import annotations

from hw.arch import arch_of
from hw.board.top import NetworkStepSystem
from hw.flow.errors import BuildError
from hw.flow.memories import design_memories
from hw.flow.planner import plan_memories

__all__ = ["step_system", "plan_steps", "choose_steps", "plan_network", "network_system",
           "network_program", "NETWORK_INPUT_SIZE"]

#: Image size of the whole-network design (the model's 227 x 227).
NETWORK_INPUT_SIZE = 227


def network_system(program, engine_config):
    """The whole-network design that is synthesised and planned."""
    from hw.network.accelerator import NetworkAccelerator
    return NetworkAccelerator(program, lanes=engine_config["lanes"], arch=arch_of(engine_config))


def network_program(qmodel, engine_config, code_bits=8):
    """The NetworkProgram of ``qmodel`` (``code_bits``-bit codes) at the design's image size
    (ValueError if the network is not one the accelerator runs)."""
    from hw.network.program import NetworkProgram
    return NetworkProgram(qmodel, input_size=NETWORK_INPUT_SIZE,
                          channels_per_beat=engine_config["channels_per_beat"],
                          code_bits=code_bits,
                          patch_runs=engine_config.get("patch_runs", False))


def plan_network(board, program, engine_config):
    """BRAM plan of the whole network on ``board``'s device."""
    return plan_memories(design_memories(network_system(program, engine_config)), board.device)


def step_system(board, program, names, engine_config):
    """The host-driven design (the steps ``names`` on a StepEngine, link, UART) that is
    synthesised and planned; its UART divisor from the design's clock (100 MHz if unknown)."""
    return NetworkStepSystem(program, names, lanes=engine_config["lanes"],
                             clk_hz=board.design_clock_hz or 100e6, arch=arch_of(engine_config))


def plan_steps(board, program, names, engine_config):
    """BRAM plan of a host-driven design holding the steps ``names``."""
    return plan_memories(design_memories(step_system(board, program, names, engine_config)),
                         board.device)


def choose_steps(board, program, engine_config, requested=None):
    """(step names, plan) of the host-driven design; BuildError if they cannot fit.

    ``requested`` as given; else the longest run of Fire steps fire2, fire3, ... that fits the
    device's block RAM (or the board's share of it), then the first step (conv1 on patches) and
    the last (the final convolution with the global sum) where they still fit.
    """
    names = [s.name for s in program.steps]
    if requested:
        unknown = [name for name in requested if name not in names]
        if unknown:
            raise BuildError(f"unknown layer {', '.join(unknown)}: the model's layers are "
                             f"{', '.join(names)}")
        chosen = [name for name in names if name in requested]
        plan = plan_steps(board, program, chosen, engine_config)
        if not plan.fits:
            raise BuildError(_too_big(board, chosen, plan))
        return chosen, plan
    budget = int(board.bram_budget * board.device.bram_sites)
    trials = {}

    def probe(chosen):
        key = tuple(chosen)
        if key not in trials:
            trials[key] = plan_steps(board, program, chosen, engine_config)
        return trials[key].fits and trials[key].sites <= budget

    fires = names[1:-1]
    # More layers never need less memory, so the largest prefix that fits is found by
    # bisection (each probe elaborates a whole design, seconds for a thousand lanes).
    if not probe(fires[:1]):
        raise BuildError(_too_big(board, fires[:1], trials[tuple(fires[:1])]))
    lo, hi = 1, len(fires)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if probe(fires[:mid]):
            lo = mid
        else:
            hi = mid - 1
    chosen = fires[:lo]
    for extra in (names[0], names[-1]):
        trial = [name for name in names if name in chosen or name == extra]
        if probe(trial):
            chosen = trial
    return chosen, trials[tuple(chosen)]


def _too_big(board, layers, plan):
    dev = board.device
    return (f"{', '.join(layers)} do not fit {board.name} ({dev.name}): the design needs "
            f"{plan.bits_used:,} bits of memory in {plan.sites} block-RAM sites, the device has "
            f"{dev.bram_bits:,} bits in {dev.bram_sites} sites; choose fewer layers with "
            f"--layers, fewer --lanes, or a larger board")
