"""Time one 227x227 inference of the fixed-point and the float reference model.

Command line: ``python -m golden.bench [--model PATH] [--json FILE] [--runs 5] [--image NAME]``.
Prints the median wall-clock time of ``--runs`` runs of each (after one warm-up run), and
writes them with the machine description to ``--json``. Preprocessing, decoding, calibration
and quantisation are outside the timed region; quantisation is timed separately.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

from .fixed import quantize
from .float_ref import run_float
from .preprocess import load_image, preprocess

__all__ = ["FIXED_TARGET_S", "median_time", "bench", "main"]

#: Budget for one fixed-point inference on the project's 2-core machines.
FIXED_TARGET_S = 3.0


def median_time(fn, runs):
    """Median wall-clock seconds of ``runs`` calls of ``fn()``, after one untimed warm-up."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bench(model, image="chelsea", runs=5, weight_bits=16):
    """Measure inference times.

    Parameters
    ----------
    model : golden.codec.CompressedModel
    image : str
        ``skimage.data`` name or file.
    runs : int
        Timed runs per mode (the median is reported).
    weight_bits : int

    Returns
    -------
    dict
        ``fixed_s``, ``float_s``, ``quantize_s`` (seconds), ``runs``, ``image``, ``model_sha256``,
        ``weight_bits``, ``fixed_target_s`` and the machine (``cpu_count``, ``platform``,
        ``python``, ``numpy``).
    """
    from .calibrate import load_plan

    if runs < 1:
        raise ValueError(f"runs must be a positive integer, not {runs!r}")
    bgr = preprocess(load_image(image))
    plan = load_plan(model, weight_bits)
    start = time.perf_counter()
    qmodel = quantize(model, plan, weight_bits)
    _ = [q.weights for q in qmodel.layers.values()]  # dense weights are built lazily
    quantize_s = time.perf_counter() - start
    return {
        "image": image,
        "model_sha256": model.sha256,
        "weight_bits": weight_bits,
        "runs": runs,
        "fixed_s": median_time(lambda: qmodel.run(bgr), runs),
        "float_s": median_time(lambda: run_float(model, bgr), runs),
        "quantize_s": quantize_s,
        "fixed_target_s": FIXED_TARGET_S,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def main(argv=None):
    """Command-line entry point; returns 0, or 2 on bad input."""
    from . import codec

    parser = argparse.ArgumentParser(prog="python -m golden.bench",
                                     description="Time fixed-point and float inference.")
    parser.add_argument("--model", help="compressed .net file (default: the embedded synthetic "
                        "model)")
    parser.add_argument("--json", help="write the results to this JSON file")
    parser.add_argument("--runs", type=int, default=5, help="timed runs per mode (default 5)")
    parser.add_argument("--image", default="chelsea", help="image (default chelsea)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        model = codec.load(args.model)
        result = bench(model, args.image, args.runs)
    except (OSError, ValueError) as exc:
        print("error: " + " ".join(str(exc).split("\n")), file=sys.stderr)
        return 2
    result["model"] = str(args.model) if args.model else "embedded synthetic"
    verdict = "within" if result["fixed_s"] < FIXED_TARGET_S else "OVER"
    print(f"model {result['model']} ({result['model_sha256'][:12]}), image {args.image}, "
          f"median of {args.runs}")
    print(f"fixed-point inference: {result['fixed_s']:.3f} s ({verdict} the "
          f"{FIXED_TARGET_S:.0f} s target)")
    print(f"float inference:       {result['float_s']:.3f} s")
    print(f"quantisation:          {result['quantize_s']:.3f} s (once per model)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
