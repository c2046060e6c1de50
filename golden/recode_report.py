"""The recoding report: size and fidelity of a model recoded to each code width
(``python -m golden.recode [IN] --report``; the method and the sizes against the paper's Table 2
are in :mod:`golden.recode`)."""

from __future__ import annotations

import sys

import numpy as np

from .codec import REL_BITS, encode
from .recode import packed_bytes, recode

__all__ = ["REPORT_CODE_BITS", "report", "format_report"]

#: Code widths the report compares, widest first.
REPORT_CODE_BITS = (8, 7, 6, 5, 4)


def _progress(message):
    print(message, file=sys.stderr, flush=True)


def report(model, code_bits_list=REPORT_CODE_BITS, images=None, weight_bits=16,
           init="linear", progress=_progress):
    """Size and accuracy of ``model`` recoded to each width in ``code_bits_list``.

    The reference is the float32 logits of ``model`` itself. For each width: the encoded file
    size, the packed weight-store size, and on each image the fixed-point logits (16-bit weights,
    plan from :func:`golden.calibrate.load_plan`, calibrated fresh when no stored plan matches)
    and the float32 logits of the recoded model.

    Parameters
    ----------
    model : golden.codec.CompressedModel
    code_bits_list : sequence of int
    images : sequence of str, optional
        ``skimage.data`` names or image files; default the calibration images.
    weight_bits : int
    init : str
    progress : callable, optional
        Called with one-line progress messages (default: standard error); ``None`` is silent.

    Returns
    -------
    dict
        JSON-ready: ``images``, ``weight_bits``, ``reference_code_bits`` and one row per width.
    """
    from .calibrate import CALIBRATION_IMAGES, load_plan
    from .classify import sqnr_db, top_k
    from .fixed import quantize
    from .float_ref import run_float
    from .preprocess import load_image, preprocess

    say = progress or (lambda message: None)
    names = list(CALIBRATION_IMAGES if images is None else images)
    say(f"loading {len(names)} images")
    bgrs = [preprocess(load_image(name)) for name in names]
    say(f"float32 reference: {model.code_bits}-bit model")
    reference = [run_float(model, bgr)["logits"].astype(np.float64) for bgr in bgrs]

    def compare(logits):
        top1 = [top_k(r, 1) == top_k(t, 1) for r, t in zip(reference, logits)]
        top5 = [len(set(top_k(r, 5)) & set(top_k(t, 5))) for r, t in zip(reference, logits)]
        per_image = [sqnr_db(r, t) for r, t in zip(reference, logits)]
        return {"top1_agreement": float(np.mean(top1)), "top5_overlap": float(np.mean(top5)),
                "sqnr_db": sqnr_db(np.concatenate(reference), np.concatenate(logits)),
                "sqnr_db_worst": float(min(per_image))}

    rows = []
    for bits in code_bits_list:
        say(f"{bits}-bit: recoding")
        recoded = recode(model, bits, init)
        data = encode(recoded)
        say(f"{bits}-bit: fixed-point plan")
        plan = load_plan(recoded, weight_bits)
        qmodel = quantize(recoded, plan, weight_bits)
        say(f"{bits}-bit: running {len(bgrs)} images (fixed point and float32)")
        fixed = [qmodel.run(bgr)["logits"] for bgr in bgrs]
        floats = [run_float(recoded, bgr)["logits"].astype(np.float64) for bgr in bgrs]
        rows.append({
            "code_bits": bits, "file_bytes": len(data), "file_mb": len(data) / 1e6,
            "packed_bytes": packed_bytes(recoded),
            "entry_bits": recoded.entries * (bits + REL_BITS),
            "storage_bits": recoded.storage_bits(),
            "sha256": recoded.sha256,
            "fixed": compare(fixed), "float": compare(floats),
        })
    return {"images": names, "weight_bits": weight_bits, "init": init,
            "reference_code_bits": model.code_bits, "entries": model.entries,
            "fillers": model.fillers, "rows": rows}


def format_report(result, source=""):
    """The readable table of a :func:`report` result."""
    n = len(result["images"])
    lines = [
        f"model: {source}" if source else "",
        f"{result['entries']:,} entries ({result['fillers']:,} fillers); reference: float32 "
        f"logits of the {result['reference_code_bits']}-bit model on {n} images; fixed point: "
        f"{result['weight_bits']}-bit weights, each width's own calibrated plan",
        "packed = header + entries x (code bits + 4 index bits) + float32 codebooks and biases",
    ]
    header = (f"{'bits':>4} {'file bytes':>11} {'file MB':>8} {'packed bytes':>13} "
              f"{'packed MB':>9} {'entry Mbit':>10} | {'fixed top-1':>11} {'top-5':>5} "
              f"{'SQNR dB':>7} {'worst':>6} | {'float top-1':>11} {'top-5':>5} {'SQNR dB':>7}")
    lines += [header, "-" * len(header)]

    def db(value):
        return "inf" if value == float("inf") else f"{value:.1f}"

    for row in result["rows"]:
        fx, fl = row["fixed"], row["float"]
        lines.append(
            f"{row['code_bits']:>4} {row['file_bytes']:>11,} {row['file_mb']:>8.3f} "
            f"{row['packed_bytes']:>13,} {row['packed_bytes'] / 1e6:>9.3f} "
            f"{row['entry_bits'] / 1e6:>10.3f} | {round(fx['top1_agreement'] * n):>7}/{n:<3} "
            f"{fx['top5_overlap']:>5.2f} {db(fx['sqnr_db']):>7} {db(fx['sqnr_db_worst']):>6} | "
            f"{round(fl['top1_agreement'] * n):>7}/{n:<3} {fl['top5_overlap']:>5.2f} "
            f"{db(fl['sqnr_db']):>7}")
    return "\n".join(line for line in lines if line) + "\n"


# ----------------------------------------------------------------------------- command line
