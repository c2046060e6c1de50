"""Classify one image with the float reference or the bit-exact fixed-point model.

Command line::

    python -m golden.classify IMAGE [--mode float|fixed] [--model PATH] [--topk 5]
                                    [--weight-bits 16]

``IMAGE`` is a ``skimage.data`` name (``chelsea``, ``coffee``, ...) or an image file. Standard
output gets one tab-separated line per class: rank, class index, wnid, name, probability.
Without ``--model`` the embedded synthetic model is used (its classes mean nothing), which is
said on standard error. ``--mode fixed`` also reports on standard error the SQNR of the
fixed-point logits against the float ones. Bad input gives one ``error: ...`` line on standard
error and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from .fixed import WEIGHT_BITS_RANGE, quantize
from .float_ref import run_float, softmax
from .preprocess import load_image, preprocess

__all__ = ["SYNSET_FILENAME", "class_labels", "sqnr_db", "top_k", "classify", "main"]

#: Class list shipped next to the real model: line i = ``<wnid> <names>`` of class i.
SYNSET_FILENAME = "synset_words.txt"


def class_labels(num_classes, synset_path=None):
    """(wnid, name) of every class.

    Parameters
    ----------
    num_classes : int
    synset_path : str or os.PathLike, optional
        Default: ``synset_words.txt`` next to ``golden.codec.SHARED_MODEL_PATH``.

    Returns
    -------
    list of (str, str)
        From the synset file (name = its first comma-separated name, as the model README
        prints it) when the file exists and has ``num_classes`` lines; otherwise
        ``("-", "class_<i>")``.
    """
    if synset_path is None:
        from . import codec
        synset_path = os.path.join(os.path.dirname(codec.SHARED_MODEL_PATH), SYNSET_FILENAME)
    fallback = [("-", f"class_{i}") for i in range(num_classes)]
    try:
        with open(synset_path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError:
        return fallback
    if len(lines) != num_classes:
        return fallback
    labels = []
    for line in lines:
        wnid, _, names = line.partition(" ")
        labels.append((wnid, names.split(",")[0].strip()))
    return labels


def sqnr_db(reference, test):
    """Signal-to-quantisation-noise ratio of ``test`` against ``reference``, in dB.

    ``10 log10(sum(ref**2) / sum((test - ref)**2))``; infinite when they are equal.
    """
    reference = np.asarray(reference, np.float64)
    noise = np.sum((np.asarray(test, np.float64) - reference) ** 2)
    signal = np.sum(reference ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(signal / noise))


def top_k(probabilities, k):
    """Indices of the ``k`` largest values, largest first (ties: lower index first)."""
    probabilities = np.asarray(probabilities)
    order = np.argsort(-probabilities, kind="stable")
    return [int(i) for i in order[:k]]


def classify(model, bgr, mode="float", weight_bits=16, plan=None):
    """Logits of one preprocessed image.

    Parameters
    ----------
    model : golden.codec.CompressedModel
    bgr : numpy.ndarray
        uint8 (3, 227, 227) BGR (``golden.preprocess.preprocess`` output).
    mode : {"float", "fixed"}
    weight_bits : int
        Fixed mode only: codebook entry width.
    plan : golden.fixed.QuantPlan, optional
        Fixed mode only: default ``golden.calibrate.load_plan(model, weight_bits)``.

    Returns
    -------
    numpy.ndarray
        float64 logits (pre-softmax).
    """
    if mode == "float":
        return run_float(model, bgr)["logits"].astype(np.float64)
    if mode == "fixed":
        if plan is None:
            from .calibrate import load_plan
            plan = load_plan(model, weight_bits)
        return quantize(model, plan, weight_bits).run(bgr)["logits"]
    raise ValueError(f"mode must be 'float' or 'fixed', not {mode!r}")


def _parser():
    parser = argparse.ArgumentParser(prog="python -m golden.classify",
                                     description="Classify an image with compressed SqueezeNet.")
    parser.add_argument("image", help="skimage.data name (chelsea, coffee, ...) or image file")
    parser.add_argument("--mode", choices=("float", "fixed"), default="float",
                        help="float32 reference or bit-exact fixed point (default float)")
    parser.add_argument("--model", help="compressed .net file (default: the embedded synthetic "
                        "model)")
    parser.add_argument("--topk", type=int, default=5, help="classes to print (default 5)")
    parser.add_argument("--weight-bits", type=int, default=16,
                        help="fixed mode: codebook entry width, %d..%d (default 16)"
                        % WEIGHT_BITS_RANGE)
    return parser


def main(argv=None):
    """Command-line entry point.

    Returns
    -------
    int
        0 on success, 2 on bad arguments or input.
    """
    from . import codec

    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its message; callers want a status
        return int(exit_.code or 0)
    try:
        low, high = WEIGHT_BITS_RANGE
        if not low <= args.weight_bits <= high:
            raise ValueError(f"--weight-bits must be between {low} and {high}, not "
                             f"{args.weight_bits}")
        bgr = preprocess(load_image(args.image))
        model = codec.load(args.model)
        num_classes = model.layers[-1].spec.out_channels
        if not 1 <= args.topk <= num_classes:
            raise ValueError(f"--topk must be between 1 and {num_classes}, not {args.topk}")
        # Said only once the input is known good, so that an error stays a single line.
        if args.model is None:
            print("using the embedded synthetic model (random weights, meaningless classes); "
                  "pass --model for real weights", file=sys.stderr)
        logits = classify(model, bgr, args.mode, args.weight_bits)
        if args.mode == "fixed":
            reference = classify(model, bgr, "float")
            print(f"logit SQNR of fixed point vs float: {sqnr_db(reference, logits):.2f} dB",
                  file=sys.stderr)
    except (OSError, ValueError) as exc:  # CodecError is a ValueError
        # One line, whatever the underlying library put in its message.
        print("error: " + " ".join(str(exc).split("\n")), file=sys.stderr)
        return 2
    probabilities = softmax(logits)
    labels = class_labels(len(probabilities))
    for rank, index in enumerate(top_k(probabilities, args.topk), start=1):
        wnid, name = labels[index]
        print(f"{rank}\t{index}\t{wnid}\t{name}\t{probabilities[index]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
