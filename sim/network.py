"""Whole-network simulation cases: the accelerator's Verilog, the image as beats, the run.

Used by ``python -m sim.classify`` and by ``sim/test_network.py``: :func:`simulate` generates
(or reuses) the Verilog of a :class:`~hw.network.accelerator.NetworkAccelerator`, compiles it
once per simulator, streams one image through it under cocotb (``sim/tb_network.py``) and
returns the hardware's global sums and the cycles from ``start`` to ``done``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.arch import SHARED
from hw.network.accelerator import NetworkAccelerator
from hw.network.cycle_model import network_cycles
from sim import toolchain
from sim.cases import write_case
from testkit.engine_driver import from_beats, to_beats

TB = "sim.tb_network"
TOP = "network_accelerator"
#: Cycles between two progress reports of the testbench.
PROGRESS_EVERY = 250_000

__all__ = ["NetworkRun", "simulate", "verilog"]


@dataclass
class NetworkRun:
    """What one image through the simulated accelerator gave."""
    sums: np.ndarray        # int64 (classes,)
    traced: dict            # step name -> (C, H, W) engine output, with ``trace`` only
    cycles: int             # start .. done
    predicted: int          # the network cycle model's cycles
    stats: dict             # simulator, wall seconds, cycles per second


def _key(program, lanes, trace, arch=SHARED):
    qmodel = program.qmodel
    parts = [lanes, trace, program.channels_per_beat, program.input_size, repr(qmodel.network),
             repr(arch), program.patch_runs]
    for name in sorted(qmodel.layers):
        c = qmodel.layers[name]
        parts += [name, c.codebook, c.codes, c.rel, c.bias, c.shift]
    return toolchain.digest("hw.network.accelerator", *parts)


def verilog(program, lanes, trace=False, arch=SHARED):
    """Path of the accelerator's Verilog (cached by a digest of the program and the sources)."""
    return toolchain.verilog(
        lambda: NetworkAccelerator(program, lanes=lanes, trace=trace, arch=arch), TOP,
        _key(program, lanes, trace, arch))


def simulate(program, lanes, image, simulator, test_id, *, in_pytest=True, progress=None,
             trace=False, arch=SHARED):
    """Run ``image`` (3, H, W) uint8 through the simulated accelerator.

    ``progress(text)``, if given, is called with a line of progress now and then (Verilog,
    compile, simulated cycles). With ``trace`` every engine output beat is recorded too
    (slower), and :attr:`NetworkRun.traced` holds each step's output map. Raises
    ``toolchain.SimulationFailed`` (or fails the pytest item) if the testbench fails.
    """
    say = progress or (lambda text: None)
    predicted = network_cycles(program, lanes=lanes, arch=arch).cycles
    started = time.perf_counter()
    say(f"generating Verilog of the whole network ({lanes} lanes) ...")
    source = verilog(program, lanes, trace, arch)
    say(f"compiling for {simulator} (once per design; minutes for a large one) ...")
    toolchain.build(simulator, source, TOP)
    say(f"simulating {predicted:,} predicted cycles ...")
    test_dir = toolchain.run_dir(test_id)
    progress_file = test_dir / "progress.txt"
    progress_file.unlink(missing_ok=True)
    result_file = test_dir / "result.npz"
    result_file.unlink(missing_ok=True)
    meta = {"channels_per_beat": program.channels_per_beat, "classes": program.classes,
            "predicted_cycles": predicted, "progress_every": PROGRESS_EVERY, "trace": trace}

    def write(run_dir):
        return write_case(run_dir / "case.npz", meta,
                          image=to_beats(np.asarray(image, np.uint8), program.channels_per_beat))

    stop = threading.Event()
    watcher = threading.Thread(target=_watch, args=(progress_file, predicted, say, stop),
                               daemon=True)
    watcher.start()
    try:
        stats = toolchain.run(simulator, source, TOP, TB, test_id, write_case=write,
                              env={"SIM_PROGRESS": str(progress_file),
                                   "SIM_RESULT": str(result_file)}, in_pytest=in_pytest)
    finally:
        stop.set()
        watcher.join()
    with np.load(result_file) as result:
        sums, cycles = result["sums"].astype(np.int64), int(result["cycles"])
        traced = _traced_maps(program, result) if trace else {}
    stats["total_seconds"] = round(time.perf_counter() - started, 1)
    return NetworkRun(sums, traced, cycles, predicted, stats)


def _traced_maps(program, result):
    """Step name -> (C, H, W) engine output map from the recorded trace beats."""
    L = program.channels_per_beat
    steps = result["trace_steps"]
    beats = result["trace_beats"].reshape(-1, L)
    maps = {}
    for index, step in enumerate(program.steps):
        mine = beats[steps == index]
        expected = step.height * step.width * program.beats(step.out_channels)
        if len(mine) != expected:
            raise toolchain.SimulationFailed(f"{step.name}: the engine sent {len(mine)} beats, "
                                             f"not {expected}")
        maps[step.name] = from_beats(mine, step.out_channels, step.height, step.width)
    return maps


def _watch(path, predicted, say, stop):
    """Report the testbench's progress file while the simulator runs."""
    seen = None
    while not stop.wait(2.0):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text and text != seen:
            seen = text
            cycles = int(text)
            say(f"  {cycles:,} cycles simulated ({cycles / max(1, predicted):.0%})")
