"""Fire engine on its generated Verilog, under cocotb: bit-exact with golden.fixed.fire, cycles
exactly as hw.fire.cycle_model predicts, random stalls, reset in the middle of a layer.

One pytest item per (case, simulator); the cocotb side is ``sim/tb_fire_engine.py``, whose
cocotb tests are the *scenarios*:

- ``ideal_streams_bit_exact_and_cycles``: always-valid input, always-ready output; every run
  bit-exact and ``cycles == layer_cycles(...)`` exactly;
- ``random_stalls_bit_exact``: random idle cycles on ``i``, random back-pressure on ``o``;
- ``reset_mid_layer_then_rerun``: reset at a random point of a run, then a clean rerun,
  bit-exact and cycle-exact;
- ``back_to_back_runs_with_start_held``: each next ``start`` held valid during the previous
  run; runs follow without a gap, each bit-exact and cycle-exact (random layers only);
- ``unknown_layer_and_empty_size_rejected``: ``done`` the next cycle, nothing moves.
"""

import os
import zlib

import numpy as np
import pytest

from hw.arch import Arch
from sim import cases, toolchain

TB = "sim.tb_fire_engine"
SEED = int(os.environ.get("SIM_SEED", "2024"))

#: Engine configuration of the full-size runs: 16 pixel lanes, 8 channels per beat (measured:
#: fire5 + fire9 with every scenario take about 25 s on Verilator, see sim/README.md).
LANES, BEAT = 16, 8

ALL = None
IDEAL = ["ideal_streams_bit_exact_and_cycles", "unknown_layer_and_empty_size_rejected"]
#: On real layers every scenario but the back-to-back one (a second full pass of every run).
REAL_ALL = IDEAL + ["random_stalls_bit_exact", "reset_mid_layer_then_rerun"]

#: Full-size real layers in the default suite, per simulator. Icarus is about 20x slower per
#: cycle than Verilator on this engine (fire9 alone, 868k cycles, takes 3.4 min on these
#: 2-core machines), so its full-size runs are in the slow set only; it runs every random and
#: block case of the default suite.
DEFAULT_REAL = {"verilator": (("fire5", "fire9"), "all")}
#: ``pytest -m slow``: every Fire layer at full size, one program each.
SLOW_REAL = {"verilator": "all", "icarus": "ideal"}
FIRES = [f"fire{n}" for n in range(2, 10)]

#: Random gaps on real layers: idle/stall before a beat with probability 0.5, up to 40 cycles
#: (longer than the L=8 cycles the loader/drainer spend per beat, so they do stall).
REAL_GAPS = {"idle": (0.5, 40), "stall": (0.5, 40)}


def run_case(simulator, test_id, case, *, testcase=ALL, **meta):
    return toolchain.run(simulator, case.verilog(), "fire_engine", TB, test_id,
                         write_case=lambda run_dir: case.write(run_dir / "case.npz", **meta),
                         testcase=testcase, env={"COCOTB_RANDOM_SEED": str(SEED)})


def _announce_model():
    model = cases.model()
    if model.label != "real":
        print(model.reason)
    return model


# ---------------------------------------------------------------------------- small random layers

# (lanes, channels_per_beat, [(cin, csq, e1, e3, height, width), ...], crops) -- two layers per
# program so that runs switch layers; widths/heights around the lane count exercise the borders;
# crops are extra runs (layer, height, width) smaller than the layer, down to 1x1.
RANDOM_CONFIGS = {
    "P4-L4": (4, 4, [(12, 4, 6, 5, 5, 7), (8, 3, 4, 4, 3, 3)], [(0, 2, 3), (1, 1, 1)]),
    "P8-L3": (8, 3, [(7, 5, 8, 8, 6, 9), (10, 4, 3, 6, 9, 2)], [(0, 6, 1), (1, 1, 2)]),
    "P16-L8": (16, 8, [(24, 8, 8, 8, 7, 17), (16, 6, 10, 6, 4, 16)], [(0, 3, 15), (0, 7, 16)]),
    "P2-L1": (2, 1, [(3, 2, 2, 3, 4, 3), (5, 3, 1, 2, 1, 6)], [(1, 1, 1), (0, 3, 1)]),
}


#: The two middle configurations run with -m slow (16 s each on Verilator): the default suite
#: keeps the widest and the narrowest and stays under 15 minutes.
MIDDLE_CONFIGS = ("P4-L4", "P8-L3")


@pytest.mark.parametrize("config", [
    pytest.param(c, marks=[pytest.mark.slow] if c in MIDDLE_CONFIGS else [])
    for c in RANDOM_CONFIGS])
def test_random_layers(simulator, test_id, config):
    """Random sparse layers and inputs, two layers per program, two runs each plus cropped
    runs, every scenario (gaps up to 6 cycles, longer than a beat, so stalls reach the lanes)."""
    lanes, beat, shapes, crops = RANDOM_CONFIGS[config]
    case = cases.random_layer_case(zlib.crc32(config.encode()) % 1000, lanes=lanes,
                                   channels_per_beat=beat, shapes=shapes, density=0.3,
                                   runs_per_layer=2, crops=crops)
    run_case(simulator, test_id, case, idle=(0.4, 6), stall=(0.4, 6), reset_run=1)


def test_extreme_values(simulator, test_id):
    """Full-scale weights and biases, inputs of only 0 and 255: accumulator wrap and clipping."""
    case = cases.random_layer_case(77, lanes=4, channels_per_beat=4, density=0.9, extreme=True,
                                   shapes=[(12, 4, 4, 4, 4, 5)], runs_per_layer=2)
    run_case(simulator, test_id, case, testcase=IDEAL)


# ---------------------------------------------------------------------------- the suite can fail


@pytest.mark.parametrize("corruption,message", [
    ("value", "differs from golden.fixed.fire"),
    ("cycles", "hw.fire.cycle_model.layer_cycles predicts"),
])
def test_testbench_catches_errors(simulator, test_id, corruption, message):
    """A golden output with one bit flipped, or a prediction one cycle off, must fail the
    testbench with a message saying so: the checks are live."""
    case = cases.random_layer_case(5, lanes=4, channels_per_beat=4, density=0.5,
                                   shapes=[(6, 3, 4, 4, 4, 5)])

    def corrupted(run_dir):
        path = case.write(run_dir / "case.npz")
        meta, arrays = cases.read_case(path)
        if corruption == "value":
            expected = arrays["expected0"]
            expected[tuple(np.array(expected.shape) // 2)] ^= 1
        else:
            meta["runs"][0]["cycles"] += 1
        return cases.write_case(path, meta, **arrays)

    with pytest.raises(pytest.fail.Exception, match=message):
        toolchain.run(simulator, case.verilog(), "fire_engine", TB, test_id,
                      write_case=corrupted, testcase=["ideal_streams_bit_exact_and_cycles"])


# ---------------------------------------------------------------------------- real layers


def _real_params(plans, layer_sets):
    label = cases.model_label()
    params = []
    for param in toolchain.simulator_params():
        sim = param.values[0]
        if sim not in plans:
            continue
        for layers in layer_sets(sim):
            scenario = plans[sim] if isinstance(plans[sim], str) else plans[sim][1]
            params.append(pytest.param(sim, layers, scenario, marks=param.marks,
                                       id=f"{sim}-{label}-{'-'.join(layers)}-{scenario}"))
    return params


@pytest.mark.slow   # 43 s; the shared engine's default cocotb runs are the random layers,
#                     the extreme values and the small whole network (sim/test_network.py)
@pytest.mark.parametrize("sim,layers,scenario",
                         _real_params(DEFAULT_REAL, lambda sim: [DEFAULT_REAL[sim][0]]))
def test_real_layers(sim, layers, scenario, test_id):
    """Full-size fire5 (27x27, 256 in) and fire9 (13x13, 512 in) of the real model (the
    embedded synthetic one if ../shared is absent: the test id says which) on their golden
    inputs for the chelsea image, in one program. ``all``: both bit-exact and cycle-exact, the
    last layer with random stalls, and a reset in its middle followed by a clean rerun."""
    toolchain.require(sim)
    _announce_model()
    case = cases.real_layer_case(layers, lanes=LANES, channels_per_beat=BEAT)
    last = len(layers) - 1
    run_case(sim, test_id, case, testcase=REAL_ALL if scenario == "all" else IDEAL,
             stall_runs=[last], reset_run=last, reset_fraction=(0.05, 0.3), **REAL_GAPS)


#: The dataflow datapath of the full-size runs: 16-pixel groups, a squeeze PE array of 16
#: multipliers, expand units of 8 each (32 in all).
DATAFLOW = Arch("dataflow", (1, 2, 2))


@pytest.mark.parametrize("sim,layers,scenario",
                         _real_params(DEFAULT_REAL, lambda sim: [DEFAULT_REAL[sim][0]]))
def test_real_layers_dataflow(sim, layers, scenario, test_id):
    """The same full-size fire5 and fire9 on the dataflow datapath (squeeze PE array ||
    expand-1x1 || expand-3x3 units): bit-exact, cycle-exact with hw.dataflow.cycle_model,
    random stalls and a reset in the middle of the last layer."""
    toolchain.require(sim)
    _announce_model()
    case = cases.real_layer_case(layers, lanes=LANES, channels_per_beat=BEAT, arch=DATAFLOW)
    last = len(layers) - 1
    run_case(sim, test_id, case, testcase=REAL_ALL if scenario == "all" else IDEAL,
             stall_runs=[last], reset_run=last, reset_fraction=(0.05, 0.3), **REAL_GAPS)


@pytest.mark.slow
@pytest.mark.parametrize("sim,layers,scenario",
                         _real_params(SLOW_REAL, lambda sim: [(name,) for name in FIRES]))
def test_every_fire_layer_full_size(sim, layers, scenario, test_id):
    """Every Fire layer fire2..fire9 at full size on its golden input, one program each."""
    toolchain.require(sim)
    _announce_model()
    case = cases.real_layer_case(layers, lanes=LANES, channels_per_beat=BEAT)
    run_case(sim, test_id, case, testcase=REAL_ALL if scenario == "all" else IDEAL,
             reset_fraction=(0.2, 0.8), **REAL_GAPS)
