"""The quantisation plan: per-layer power-of-two scales of one model at one weight width,
and the allowed weight widths. Calibrated by :mod:`golden.calibrate`, used by
:func:`golden.fixed.quantize`, stored as JSON in ``golden/data/``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .fixed_ops import check_int

__all__ = ["WEIGHT_BITS_RANGE", "check_weight_bits", "QuantPlan"]

#: Allowed widths of the quantised codebook entries (the multiplier's signed weight input).
WEIGHT_BITS_RANGE = (8, 18)


def check_weight_bits(weight_bits):
    """Return ``weight_bits`` as an int: TypeError if not an integer, ValueError outside
    :data:`WEIGHT_BITS_RANGE`."""
    return check_int(weight_bits, "weight_bits", *WEIGHT_BITS_RANGE)


@dataclass
class QuantPlan:
    """Per-layer power-of-two scales of one model at one weight width.

    Members
    -------
    model_sha256 : str
        The ``.sha256`` of the CompressedModel the plan was calibrated for.
    weight_bits : int
        Codebook entry width the ``w_frac`` values were chosen for.
    w_frac, out_frac : dict of str to int
        Per conv layer (``.net`` names). A Fire's expand 1x1 and expand 3x3 share ``out_frac``.
    calibration_images : list of str
        Images the activation statistics came from.
    statistic : str
        How the activation range was measured (e.g. ``"max"``).
    act_range : dict of str to float
        The measured float activation range per layer (informative).
    """
    model_sha256: str
    weight_bits: int
    w_frac: dict
    out_frac: dict
    calibration_images: list = field(default_factory=list)
    statistic: str = "max"
    act_range: dict = field(default_factory=dict)

    def to_json(self):
        """Serialise to a JSON string (layers in ``.net`` file order)."""
        layers = {name: {"w_frac": int(self.w_frac[name]), "out_frac": int(self.out_frac[name]),
                         **({"act_range": float(self.act_range[name])}
                            if name in self.act_range else {})}
                  for name in self.w_frac}
        return json.dumps({
            "format": "squeezefire-quant-plan-1",
            "model_sha256": self.model_sha256,
            "weight_bits": int(self.weight_bits),
            "statistic": self.statistic,
            "calibration_images": list(self.calibration_images),
            "layers": layers,
        }, indent=1) + "\n"

    @classmethod
    def from_json(cls, text):
        """Parse what ``to_json`` wrote.

        Raises
        ------
        ValueError
            If the text is not a plan.
        """
        try:
            data = json.loads(text)
            if data.get("format") != "squeezefire-quant-plan-1":
                raise ValueError(f"unknown plan format {data.get('format')!r}")
            layers = data["layers"]
            return cls(
                model_sha256=str(data["model_sha256"]),
                weight_bits=check_weight_bits(data["weight_bits"]),
                w_frac={name: int(v["w_frac"]) for name, v in layers.items()},
                out_frac={name: int(v["out_frac"]) for name, v in layers.items()},
                calibration_images=list(data.get("calibration_images", [])),
                statistic=str(data.get("statistic", "max")),
                act_range={name: float(v["act_range"]) for name, v in layers.items()
                           if "act_range" in v},
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a quantisation plan: {exc}") from exc
