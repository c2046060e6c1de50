"""Blocks worth testing alone on their generated Verilog: the entry decoder and the requantiser.

The cocotb sides are ``sim/tb_entry_decoder.py`` and ``sim/tb_requantizer.py``.
"""

import os

import numpy as np

from golden.fixed import requantize
from golden.network import Conv
from hw.blocks.entry_decoder import EntryDecoder
from hw.blocks.requantizer import Requantizer
from sim import cases, toolchain
from testkit.fire_cases import random_qconv

SEED = int(os.environ.get("SIM_SEED", "2024"))
CODE_BITS = 8


def _decoder_convs():
    """Real convolutions (fire2 whole: 96 -> 16 -> 64 + 64 3x3; fire9's squeeze: 512 inputs)
    and random ones with 1..5 input channels, very sparse (long gaps, fillers, empty output
    channels) or dense, where the tap/channel carries of a gap are the most varied."""
    model = cases.model()
    fires = model.fires
    convs = list(fires["fire2"][1:]) + [fires["fire9"][1]]
    rng = np.random.default_rng(SEED)
    for cin in (1, 2, 3, 5):
        for kernel in (1, 3):
            for density in (0.03, 0.5, 0.97):
                spec = Conv(f"rand_c{cin}_k{kernel}_d{density}", int(rng.integers(3, 12)), cin,
                            kernel, pad=kernel // 2)
                convs.append(random_qconv(rng, spec, density=density, code_bits=CODE_BITS))
    return model, convs


def test_entry_decoder(simulator, test_id):
    """Every decoded (o, c, tap, first, code) of every entry equals the golden position split
    by division, across convolutions back to back, with random idle cycles carrying junk."""
    model, convs = _decoder_convs()
    streams = [cases.decoder_positions(conv, CODE_BITS) for conv in convs]
    arrays = {key: np.concatenate([s[key] for s in streams])
              for key in ("entry", "o", "c", "tap", "first", "code")}
    sizes = [len(s["o"]) for s in streams]
    starts = np.cumsum([0] + sizes[:-1])
    restart = np.zeros(sum(sizes), np.int64)
    restart[starts] = 1
    arrays["restart"] = restart
    arrays["kernel3"] = np.repeat([int(c.spec.kernel == 3) for c in convs], sizes)
    arrays["in_channels"] = np.repeat([c.spec.in_channels for c in convs], sizes)
    arrays["conv_start"] = starts
    max_channels = max(max(c.spec.in_channels, c.spec.out_channels) for c in convs)
    source = toolchain.verilog(lambda: EntryDecoder(CODE_BITS, max_channels), "entry_decoder",
                               toolchain.digest("hw.blocks.entry_decoder", CODE_BITS, max_channels))
    meta = {"code_bits": CODE_BITS, "convs": [c.spec.name for c in convs],
            "latency": EntryDecoder.latency,
            "model": model.label, "idle": (0.2, 3)}
    toolchain.run(simulator, source, "entry_decoder", "sim.tb_entry_decoder", test_id,
                  write_case=lambda run_dir: cases.write_case(run_dir / "case.npz", meta,
                                                              **arrays),
                  env={"COCOTB_RANDOM_SEED": str(SEED)})


def _requantizer_values(rng, acc_width=32):
    lo, hi = -(1 << (acc_width - 1)), (1 << (acc_width - 1)) - 1
    accs, shifts = [], []
    for shift in range(32):
        half = (1 << (shift - 1)) if shift else 0
        values = {lo, lo + 1, -1, 0, 1, hi - 1, hi}
        for k in (0, 1, 2, 127, 128, 254, 255, 256, 257, 1000):
            for sign in (1, -1):
                for d in (-1, 0, 1):
                    values.add(sign * ((k << shift) + half) + d)
                    values.add(sign * (k << shift) + d)
        values.update(int(v) for v in rng.integers(lo, hi, 64, endpoint=True))
        magnitudes = np.exp2(rng.uniform(0, acc_width - 1, 64)).astype(np.int64)
        values.update(int(v) for v in magnitudes * rng.choice([-1, 1], 64))
        values = sorted(v for v in values if lo <= v <= hi)
        accs += values
        shifts += [shift] * len(values)
    accs = np.array(accs, np.int64)
    shifts = np.array(shifts, np.int64)
    expected = np.concatenate([requantize(accs[shifts == s], s) for s in range(32)])
    return accs, shifts, expected


def test_requantizer(simulator, test_id):
    """Rounding half up, ReLU and saturation at every shift 0..31, at the edges (int32 limits,
    exact halves, 255/256 boundaries) and on random accumulators: equal to
    golden.fixed.requantize."""
    accs, shifts, expected = _requantizer_values(np.random.default_rng(SEED))
    source = toolchain.verilog(lambda: Requantizer(32), "requantizer",
                               toolchain.digest("hw.blocks.requantizer", 32))
    toolchain.run(simulator, source, "requantizer", "sim.tb_requantizer", test_id,
                  write_case=lambda run_dir: cases.write_case(
                      run_dir / "case.npz",
                      {"acc_width": 32, "latency": Requantizer.latency},
                      acc=accs, shift=shifts,
                      expected=expected),
                  env={"COCOTB_RANDOM_SEED": str(SEED)})
