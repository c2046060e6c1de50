"""Test cases for the cocotb testbenches, built on the pytest side from the golden model.

A *case file* is an ``.npz`` holding the arrays a testbench needs (activations in, golden
outputs, decoded positions ...) plus a JSON ``meta`` entry (engine parameters, predicted
cycles, ...). pytest writes it into the test's run directory and hands its path to the
simulator process in an environment variable; the testbench never recomputes the golden model.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass

import numpy as np

from golden import calibrate, codec, fixed, preprocess
from golden.codec import entry_positions
from golden.network import Conv, Fire, MaxPool
from hw.arch import SHARED
from hw.fire.program import hardware_entries

from . import toolchain

#: The photograph whose golden fixed-point run gives each Fire layer its real input.
IMAGE = "chelsea"


# ---------------------------------------------------------------------------- case files


def write_case(path, meta, **arrays):
    np.savez(path, meta=np.array(json.dumps(meta)), **arrays)
    return path


def read_case(path=None, variable="SIM_CASE"):
    """(meta dict, arrays) of the case file named by ``$SIM_CASE`` (testbench side)."""
    path = path or os.environ[variable]
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files if k != "meta"}
        meta = json.loads(str(data["meta"]))
    return meta, arrays


# ---------------------------------------------------------------------------- the model


@dataclass
class Model:
    """The quantised model and one image's golden activations."""
    label: str            # "real" or "synthetic"
    reason: str           # why this model (shown in test ids / messages)
    quantized: fixed.QuantizedModel
    activations: dict
    fire_inputs: dict     # Fire name -> name of the activation it reads

    @property
    def fires(self):
        return {f[0]: f for f in self.quantized.fires}


@functools.lru_cache(maxsize=1)
def model():
    """The real Deep Compression SqueezeNet from ``../shared`` if present, else the embedded
    synthetic model (same topology, deterministic weights); both through the stored plan."""
    if codec.SHARED_MODEL_PATH.is_file():
        compressed = codec.load(codec.SHARED_MODEL_PATH)
        label, reason = "real", f"real model {codec.SHARED_MODEL_PATH.name}"
    else:
        compressed = codec.load(None)
        label = "synthetic"
        reason = (f"real model absent ({codec.SHARED_MODEL_PATH}); using the embedded synthetic "
                  f"model, an equally valid stand-in: the engine is bit-exact on any weights")
    plan = calibrate.load_plan(compressed, weight_bits=16)
    quantized = fixed.quantize(compressed, plan, weight_bits=16)
    bgr = preprocess.preprocess(preprocess.load_image(IMAGE))
    activations = quantized.run(bgr)
    inputs, previous = {}, None
    for op in quantized.network:
        if isinstance(op, Fire):
            inputs[op.name] = previous
        if isinstance(op, (Conv, Fire, MaxPool)):
            previous = op.name
    return Model(label, reason, quantized, activations, inputs)


def model_label():
    """``real`` or ``synthetic`` without running the model (for test ids)."""
    return "real" if codec.SHARED_MODEL_PATH.is_file() else "synthetic"


# ---------------------------------------------------------------------------- Fire engine


@dataclass
class EngineCase:
    """An engine configuration, the Fire layers its program holds and the runs to do on it."""
    name: str
    lanes: int
    channels_per_beat: int
    fires: list           # (name, height, width, squeeze, expand1x1, expand3x3)
    runs: list            # dicts: layer, x (C,H,W) uint8; expected/cycles are filled in
    arch: object = SHARED  # hw.arch.Arch: the shared-lane engine or the dataflow datapath

    def program(self):
        return self.arch.program(self.fires)

    def key(self):
        parts = [self.lanes, self.channels_per_beat, self.arch]
        for name, h, w, *convs in self.fires:
            parts += [name, h, w]
            for c in convs:
                parts += [c.spec, c.codebook, c.codes, c.rel, c.bias, c.shift]
        module = "hw.dataflow.engine" if self.arch.name == "dataflow" else "hw.fire.engine"
        return toolchain.digest(module, *parts)

    def verilog(self):
        return toolchain.verilog(
            lambda: self.arch.engine(self.program(), lanes=self.lanes,
                                     channels_per_beat=self.channels_per_beat),
            "fire_engine", self.key())

    def write(self, path, **extra_meta):
        """Golden outputs and predicted cycles of every run, into a case file."""
        program = self.program()
        arrays, runs = {}, []
        for index, run in enumerate(self.runs):
            layer = run["layer"]
            fire = program.layers[layer]
            name, _, _, sq, e1, e3 = self.fires[layer]
            x = np.asarray(run["x"], np.uint8)
            _, height, width = x.shape
            expected = fixed.fire(x, sq, e1, e3)
            if "check" in run:
                # The Fire input and output are taken from the golden network run: they agree.
                np.testing.assert_array_equal(expected, run["check"])
            cycles = self.arch.layer_cycles(program, layer, lanes=self.lanes,
                                            channels_per_beat=self.channels_per_beat,
                                            height=height, width=width).cycles
            arrays[f"x{index}"] = x
            arrays[f"expected{index}"] = expected
            runs.append({"name": name, "layer": layer, "height": height, "width": width,
                         "in_channels": fire.in_channels, "out_channels": fire.out_channels,
                         "cycles": cycles})
        meta = {"case": self.name, "lanes": self.lanes, "arch": self.arch.name,
                "channels_per_beat": self.channels_per_beat, "layers": len(self.fires),
                "runs": runs, **extra_meta}
        return write_case(path, meta, **arrays)


def real_layer_case(names, *, lanes=16, channels_per_beat=8, arch=SHARED):
    """Full-size Fire layers of the model, each fed its golden input for the chelsea image, on
    ``arch`` (:class:`hw.arch.Arch`) with group size ``lanes``."""
    m = model()
    fires, runs = [], []
    for index, name in enumerate(names):
        x = m.activations[m.fire_inputs[name]]
        _, height, width = x.shape
        fires.append((name, height, width, *m.fires[name][1:]))
        runs.append({"layer": index, "x": x, "check": m.activations[name]})
    tag = "" if arch == SHARED else f"-{arch.name}{''.join(map(str, arch.passes))}"
    return EngineCase(f"{m.label}-{'-'.join(names)}-P{lanes}-L{channels_per_beat}{tag}", lanes,
                      channels_per_beat, fires, runs, arch)


def random_layer_case(seed, *, lanes, channels_per_beat, shapes, density=0.4, extreme=False,
                      runs_per_layer=1, crops=()):
    """Random Fire layers (``shapes``: (cin, csq, e1, e3, height, width) each) with random
    inputs; with ``extreme`` full-scale weights/biases and inputs of 0/255 only. ``crops``:
    extra runs ``(layer, height, width)`` smaller than the layer's own size (a cropped window is
    just a smaller image to the engine and to ``golden.fixed.fire``)."""
    from testkit.fire_cases import random_fire

    rng = np.random.default_rng(seed)
    fires, runs = [], []
    for index, (cin, csq, e1, e3, height, width) in enumerate(shapes):
        name = f"fireR{index}"
        fires.append((name, height, width,
                      *random_fire(rng, name, cin, csq, e1, e3, density=density,
                                   extreme=extreme)))
        for _ in range(runs_per_layer):
            if extreme:
                x = rng.choice(np.array([0, 255], np.uint8), (cin, height, width))
            else:
                x = rng.integers(0, 256, (cin, height, width)).astype(np.uint8)
            runs.append({"layer": index, "x": x})
    for layer, height, width in crops:
        cin = shapes[layer][0]
        runs.append({"layer": layer,
                     "x": rng.integers(0, 256, (cin, height, width)).astype(np.uint8)})
    return EngineCase(f"random{seed}-P{lanes}-L{channels_per_beat}", lanes, channels_per_beat,
                      fires, runs)


# ---------------------------------------------------------------------------- entry decoder


def decoder_positions(conv, code_bits=8):
    """What the entry decoder must produce for every hardware entry of a golden QConv.

    Positions come from the golden ``rel`` chain (with the hardware's fillers), split by plain
    division into ``(o, c, tap)``; ``first`` marks the first entry of each output channel.
    Returns int64 arrays: entry words, o, c, tap, first, code.
    """
    spec = conv.spec
    k2 = spec.kernel * spec.kernel
    per_channel = spec.in_channels * k2
    codes, rel = hardware_entries(conv.codes, conv.rel, spec.out_channels, per_channel)
    positions = entry_positions(rel)
    # Fillers are code 0 at positions the golden dense tensor has as zero: same weights.
    dense = np.zeros(spec.weight_count, np.int64)
    dense[positions] = conv.codebook[codes]
    np.testing.assert_array_equal(dense.reshape(spec.weight_shape), conv.weights)
    o = positions // per_channel
    c = positions % per_channel // k2
    tap = positions % k2 if spec.kernel == 3 else np.full_like(positions, 4)
    first = np.ones_like(o)
    first[1:] = o[1:] != o[:-1]
    return {"entry": codes.astype(np.int64) | rel.astype(np.int64) << code_bits, "o": o, "c": c,
            "tap": tap, "first": first, "code": codes.astype(np.int64)}
