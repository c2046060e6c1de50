"""Bit-exact fixed-point model of the SqueezeNet datapath: the contract the hardware implements.

Number formats
--------------
- Activations are uint8 with a per-layer power-of-two scale: real = q * 2**-frac. The network
  input is the raw uint8 BGR image (frac 0); the Caffe mean is folded into conv1's bias exactly.
- Weights are the codebook entries quantised to ``weight_bits``-bit signed integers with scale
  2**-w_frac; the dense integer weight at each stored position is ``codebook_q[code]``.
- A conv layer accumulates ``sum(x * w) + bias_q`` in a 32-bit two's-complement accumulator
  (the exact sum wrapped modulo 2**32), then requantises: arithmetic shift right by
  ``shift = in_frac + w_frac - out_frac`` with round-half-up, ReLU and saturation to 0..255.
- Max-pool 3x3/2 (Caffe ceil mode) works on uint8 and keeps the scale; the global pool is an
  integer sum, turned into logits only for reporting.

Every array is CHW (one image, no batch axis).

The integer operations (accumulate, requantise, convolve, pool) are in :mod:`golden.fixed_ops`
and importable from here too; this module quantises a compressed model into the integer network
(:class:`QConv` layers, a :class:`QuantPlan` of scales, the runnable :class:`QuantizedModel`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .codec import entry_positions
from .fixed_ops import (INT32_MAX, INT32_MIN, MAX_SHIFT, check_int, conv, conv1x1, conv3x3,
                        conv7x7s2, conv_acc, expand, fire, global_sum, im2col, maxpool3x3s2,
                        requantize, wrap_int32)
from .network import Conv, Fire, GlobalAvgPool, MaxPool, conv_layers
from .quant_plan import WEIGHT_BITS_RANGE, QuantPlan, check_weight_bits
from .preprocess import BGR_MEAN

__all__ = [
    "WEIGHT_BITS_RANGE", "MAX_SHIFT", "wrap_int32", "im2col", "requantize", "conv_acc", "conv",
    "conv1x1", "conv3x3", "conv7x7s2", "expand", "fire", "maxpool3x3s2", "global_sum",
    "logits_from_sums", "quantize_codebook", "quantize_bias", "fold_mean_into_bias", "QConv", "QuantPlan",
    "QuantizedModel", "quantize", "input_fracs", "check_weight_bits",
]

# ----------------------------------------------------------------------------- quantisation


def quantize_codebook(codebook, w_frac, weight_bits):
    """Quantise codebook entries to ``weight_bits``-bit signed integers with scale 2**-w_frac.

    ``clip(floor(c * 2**w_frac + 0.5), -2**(N-1), 2**(N-1) - 1)``; entry 0 (the zero weight of
    the fillers) stays 0.

    Parameters
    ----------
    codebook : array_like of float
    w_frac : int
    weight_bits : int
        8..18.

    Returns
    -------
    numpy.ndarray
        int64 array of the same length.
    """
    weight_bits = check_weight_bits(weight_bits)
    w_frac = check_int(w_frac, "w_frac", -64, 64)
    scaled = np.floor(np.asarray(codebook, np.float64) * 2.0 ** w_frac + 0.5)
    half = 1 << (weight_bits - 1)
    q = np.clip(scaled, -half, half - 1).astype(np.int64)
    q[0] = 0
    return q


def quantize_bias(bias, frac):
    """Quantise biases to the accumulator scale 2**-frac: ``floor(b * 2**frac + 0.5)``, clipped
    to int32.

    Parameters
    ----------
    bias : array_like of float
    frac : int
        ``in_frac + w_frac`` of the layer.

    Returns
    -------
    numpy.ndarray
        int64 array.
    """
    frac = check_int(frac, "bias frac", -128, 128)
    scaled = np.floor(np.asarray(bias, np.float64) * 2.0 ** frac + 0.5)
    return np.clip(scaled, INT32_MIN, INT32_MAX).astype(np.int64)


def fold_mean_into_bias(bias_q_unclipped, weights, mean=BGR_MEAN):
    """Fold the input mean into the first layer's bias, exactly in integers.

    ``sum(w * (x - mean)) + b == sum(w * x) + (b - sum(w * mean))``; exact at every output only
    because the first layer has no padding (a padded border would see ``0``, not ``mean``).

    Parameters
    ----------
    bias_q_unclipped : numpy.ndarray
        int64 (O,) ``floor(bias * 2**w_frac + 0.5)``, before clipping.
    weights : numpy.ndarray
        int64 (O, C, k, k) quantised weights.
    mean : sequence of int
        Per-input-channel mean (BGR).

    Returns
    -------
    numpy.ndarray
        int64 (O,), clipped to int32.
    """
    mean = np.asarray(mean, np.int64)
    if weights.shape[1] != mean.shape[0]:
        raise ValueError(f"mean has {mean.shape[0]} channels, weights {weights.shape[1]}")
    folded = bias_q_unclipped - np.einsum("ocyx,c->o", weights.astype(np.int64), mean)
    return np.clip(folded, INT32_MIN, INT32_MAX)


@dataclass(frozen=True, eq=False)
class QConv:
    """A quantised convolution layer: what the hardware stores and how it scales.

    Members
    -------
    spec : golden.network.Conv
        Shape, stride and padding.
    codebook : numpy.ndarray
        int64 (2**code_bits,), the quantised codebook (entry 0 is 0).
    codes, rel : numpy.ndarray
        uint8 (N,), the stored entries' codebook index and 4-bit gap, as in the compressed file.
    bias : numpy.ndarray
        int64 (O,) within int32, at the accumulator scale 2**-(in_frac + w_frac).
    shift : int
        ``in_frac + w_frac - out_frac``, 0..31.
    w_frac, in_frac, out_frac : int
        Power-of-two scales of weights, input and output activations.
    weight_bits : int
        Width of the signed codebook entries.
    """
    spec: Conv
    codebook: np.ndarray
    codes: np.ndarray
    rel: np.ndarray
    bias: np.ndarray
    shift: int
    w_frac: int
    in_frac: int
    out_frac: int
    weight_bits: int

    def __post_init__(self):
        check_weight_bits(self.weight_bits)
        check_int(self.shift, f"{self.spec.name}: shift", 0, MAX_SHIFT)
        if self.shift != self.in_frac + self.w_frac - self.out_frac:
            raise ValueError(f"{self.spec.name}: shift {self.shift} != in_frac + w_frac - "
                             f"out_frac = {self.in_frac + self.w_frac - self.out_frac}")
        if self.codes.shape != self.rel.shape:
            raise ValueError(f"{self.spec.name}: {self.codes.shape[0]} codes but "
                             f"{self.rel.shape[0]} relative indices")
        if self.bias.shape != (self.spec.out_channels,):
            raise ValueError(f"{self.spec.name}: bias shape {self.bias.shape}")

    @property
    def name(self):
        """Layer name (``spec.name``)."""
        return self.spec.name

    @cached_property
    def positions(self):
        """int64 (N,) flat row-major (out, in, kh, kw) index of each stored entry."""
        positions = entry_positions(self.rel)
        if positions.size and positions[-1] >= self.spec.weight_count:
            raise ValueError(f"{self.spec.name}: entries run past the {self.spec.weight_count} "
                             f"weights")
        return positions

    @cached_property
    def weights(self):
        """int64 (O, C, k, k) dense integer weights: ``codebook[codes]`` at ``positions``."""
        dense = np.zeros(self.spec.weight_count, np.int64)
        dense[self.positions] = self.codebook[self.codes]
        dense.flags.writeable = False
        return dense.reshape(self.spec.weight_shape)


# ----------------------------------------------------------------------------- plan and model


def logits_from_sums(sums, out_frac, pixels):
    """The global average pool's output from its integer sums: ``sums * 2**-out_frac / pixels``.

    Parameters
    ----------
    sums : array_like of int
        Per-class sums over the last layer's ``pixels`` output pixels.
    out_frac : int
        Scale of the last layer's activations.
    pixels : int

    Returns
    -------
    numpy.ndarray
        float64 logits.
    """
    return np.asarray(sums).astype(np.float64) * 2.0 ** -out_frac / pixels


def input_fracs(network, out_frac):
    """The input scale of every conv layer, following the data flow of ``network``.

    The network input (raw pixels) has frac 0; pools pass the scale through; a Fire's expand
    layers read its squeeze output, and the Fire output has the expand layers' shared scale.

    Parameters
    ----------
    network : tuple
        Operations from ``golden.network``.
    out_frac : dict of str to int

    Returns
    -------
    dict of str to int
    """
    fracs = {}
    current = 0
    for op in network:
        if isinstance(op, Conv):
            fracs[op.name] = current
            current = out_frac[op.name]
        elif isinstance(op, Fire):
            squeeze, e1, e3 = op.convs
            fracs[squeeze.name] = current
            fracs[e1.name] = fracs[e3.name] = out_frac[squeeze.name]
            if out_frac[e1.name] != out_frac[e3.name]:
                raise ValueError(f"{op.name}: expand layers must share out_frac, not "
                                 f"{out_frac[e1.name]} and {out_frac[e3.name]}")
            current = out_frac[e1.name]
    return fracs


class QuantizedModel:
    """A CompressedModel quantised by a QuantPlan: the integer network the hardware runs.

    Members
    -------
    network : tuple
        Operations from ``golden.network``.
    layers : dict of str to QConv
        In ``.net`` file order.
    fires : list of (str, QConv, QConv, QConv)
        (name, squeeze, expand 1x1, expand 3x3) per Fire module.
    plan : QuantPlan
    weight_bits : int
    """

    def __init__(self, network, layers, plan):
        self.network = network
        self.layers = layers
        self.plan = plan
        self.weight_bits = plan.weight_bits
        self.fires = [(op.name, *(layers[c.name] for c in op.convs))
                      for op in network if isinstance(op, Fire)]

    def run(self, bgr):
        """Run one image through the integer network.

        Parameters
        ----------
        bgr : numpy.ndarray
            uint8 (3, H, W) raw BGR pixels, mean not subtracted (``preprocess`` output).

        Returns
        -------
        dict
            uint8 activations under the names of the layers that produce them (``conv1``,
            ``pool1``, ``fire2/conv1x1_1`` (squeeze), ``fire2`` (concatenated expand), ...,
            ``conv_final``), ``global_sum`` (int64 (classes,)) and ``logits`` (float64,
            ``global_sum * 2**-out_frac / (H*W)``).
        """
        x = np.asarray(bgr)
        if x.dtype != np.uint8 or x.ndim != 3:
            raise ValueError(f"input must be uint8 (C, H, W), not {x.dtype} {x.shape}")
        out = {}
        last_conv = None
        for op in self.network:
            if isinstance(op, Conv):
                last_conv = self.layers[op.name]
                x = out[op.name] = conv(x, last_conv)
            elif isinstance(op, Fire):
                squeeze, e1, e3 = (self.layers[c.name] for c in op.convs)
                squeezed = out[squeeze.name] = conv1x1(x, squeeze)
                x = out[op.name] = expand(squeezed, e1, e3)
                last_conv = e1
            elif isinstance(op, MaxPool):
                if (op.kernel, op.stride) != (3, 2):
                    raise ValueError(f"{op.name}: only 3x3/2 max-pool is implemented")
                x = out[op.name] = maxpool3x3s2(x)
            elif isinstance(op, GlobalAvgPool):
                sums = out["global_sum"] = global_sum(x)
                out["logits"] = logits_from_sums(sums, last_conv.out_frac,
                                                 x.shape[1] * x.shape[2])
            else:
                raise TypeError(f"unknown operation {op!r}")
        return out


def quantize(model, plan, weight_bits=16):
    """Quantise a CompressedModel with a plan.

    Parameters
    ----------
    model : golden.codec.CompressedModel
    plan : QuantPlan
        Calibrated for this model (same sha256) and this ``weight_bits``.
    weight_bits : int
        8..18, width of the quantised codebook entries.

    Returns
    -------
    QuantizedModel

    Raises
    ------
    ValueError
        If the plan belongs to another model or weight width, misses a layer, gives a shift
        outside 0..31, or the first layer is padded (the mean fold would not be exact).
    """
    weight_bits = check_weight_bits(weight_bits)
    if plan.model_sha256 != model.sha256:
        raise ValueError(f"plan is for model {plan.model_sha256[:12]}, not {model.sha256[:12]}")
    if plan.weight_bits != weight_bits:
        raise ValueError(f"plan was calibrated for {plan.weight_bits}-bit weights, not "
                         f"{weight_bits}; calibrate for {weight_bits} bits")
    specs = conv_layers(model.network)
    missing = [s.name for s in specs if s.name not in plan.w_frac or s.name not in plan.out_frac]
    if missing:
        raise ValueError(f"plan has no scales for {', '.join(missing)}")
    in_frac = input_fracs(model.network, plan.out_frac)
    first = specs[0].name
    layers = {}
    for spec in specs:
        source = model.layer(spec.name)
        w_frac, out_frac = plan.w_frac[spec.name], plan.out_frac[spec.name]
        shift = in_frac[spec.name] + w_frac - out_frac
        if not 0 <= shift <= MAX_SHIFT:
            raise ValueError(f"{spec.name}: shift {shift} (in_frac {in_frac[spec.name]} + "
                             f"w_frac {w_frac} - out_frac {out_frac}) is outside 0..{MAX_SHIFT}")
        codebook = quantize_codebook(source.codebook, w_frac, weight_bits)
        if spec.name == first:
            if spec.pad:
                raise ValueError(f"{spec.name} has padding, so the mean cannot be folded into "
                                 f"its bias exactly")
            unclipped = np.floor(np.asarray(source.bias, np.float64) * 2.0 ** w_frac + 0.5)
            dense = np.zeros(spec.weight_count, np.int64)
            dense[entry_positions(source.rel)] = codebook[source.codes]
            bias = fold_mean_into_bias(unclipped.astype(np.int64),
                                       dense.reshape(spec.weight_shape))
        else:
            bias = quantize_bias(source.bias, in_frac[spec.name] + w_frac)
        layers[spec.name] = QConv(spec=spec, codebook=codebook, codes=source.codes,
                                  rel=source.rel, bias=bias, shift=shift, w_frac=w_frac,
                                  in_frac=in_frac[spec.name], out_frac=out_frac,
                                  weight_bits=weight_bits)
    return QuantizedModel(model.network, layers, plan)
