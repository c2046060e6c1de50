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

Speed
-----
Convolutions run as im2col + matmul in float64. That is exact, not an approximation: all
operands are integers, and when the sum of absolute products of every output is below 2**53,
each partial sum BLAS forms (in any order) is an integer below 2**53, which float64 represents
exactly. ``conv_acc`` checks that bound and otherwise uses integer matmul.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .network import Conv, Fire, GlobalAvgPool, MaxPool, conv_layers, output_size
from .preprocess import BGR_MEAN

__all__ = [
    "WEIGHT_BITS_RANGE", "MAX_SHIFT", "wrap_int32", "im2col", "requantize", "conv_acc", "conv",
    "conv1x1", "conv3x3", "conv7x7s2", "expand", "fire", "maxpool3x3s2", "global_sum",
    "quantize_codebook", "quantize_bias", "fold_mean_into_bias", "QConv", "QuantPlan",
    "QuantizedModel", "quantize", "input_fracs",
]

#: Allowed widths of the quantised codebook entries (the multiplier's signed weight input).
WEIGHT_BITS_RANGE = (8, 18)

#: Largest requantisation shift a 32-bit accumulator can use.
MAX_SHIFT = 31

_INT32_MIN = -(1 << 31)
_INT32_MAX = (1 << 31) - 1
# Largest integer magnitude below which float64 arithmetic on integers is exact.
_FLOAT64_EXACT = 1 << 53


def _check_int(value, what, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an integer, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{what} must be between {low} and {high}, not {value!r}")
    return int(value)


def _check_weight_bits(weight_bits):
    return _check_int(weight_bits, "weight_bits", *WEIGHT_BITS_RANGE)


def wrap_int32(values):
    """Wrap integers to 32-bit two's complement, as a 32-bit hardware accumulator does.

    Parameters
    ----------
    values : array_like of int
        Exact integer values (must fit int64).

    Returns
    -------
    numpy.ndarray
        int32 array, ``((values + 2**31) mod 2**32) - 2**31``.
    """
    values = np.asarray(values, dtype=np.int64)
    return (((values + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)).astype(np.int32)


def im2col(x, kernel, stride=1, pad=0, dtype=None):
    """Unfold a CHW tensor into the columns of a convolution.

    Parameters
    ----------
    x : numpy.ndarray
        (C, H, W) input.
    kernel, stride, pad : int
        Square kernel size, stride and zero padding on every side.
    dtype : numpy.dtype, optional
        Dtype of the result (default ``x.dtype``); converting while copying avoids a second pass.

    Returns
    -------
    cols : numpy.ndarray
        (C*kernel*kernel, Ho*Wo); row ``(c*kernel + ky)*kernel + kx`` matches a weight tensor
        (O, C, kernel, kernel) reshaped to (O, C*kernel*kernel).
    out_shape : tuple of int
        (Ho, Wo).
    """
    channels, height, width = x.shape
    out_h = output_size(height, kernel, stride, pad)
    out_w = output_size(width, kernel, stride, pad)
    dtype = x.dtype if dtype is None else np.dtype(dtype)
    if kernel == 1 and stride == 1 and pad == 0:
        return x.reshape(channels, height * width).astype(dtype, copy=False), (out_h, out_w)
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((channels, kernel, kernel, out_h, out_w), dtype)
    for ky in range(kernel):
        for kx in range(kernel):
            cols[:, ky, kx] = x[:, ky:ky + stride * (out_h - 1) + 1:stride,
                                kx:kx + stride * (out_w - 1) + 1:stride]
    return cols.reshape(channels * kernel * kernel, out_h * out_w), (out_h, out_w)


def requantize(acc, shift):
    """Requantise accumulators to uint8 activations: round-half-up shift, ReLU, saturate.

    ``y = (acc + 2**(shift-1)) >> shift`` (arithmetic, i.e. floor) for ``shift > 0``, ``y = acc``
    for ``shift == 0``; the result is ``clip(y, 0, 255)``. Computed in int64 so that adding the
    rounding constant cannot overflow (hardware needs 33 bits there, or saturating logic).

    Parameters
    ----------
    acc : array_like of int
        Accumulator values within int32.
    shift : int
        0..31.

    Returns
    -------
    numpy.ndarray
        uint8 array of the same shape.

    Raises
    ------
    TypeError
        If ``shift`` is not an integer or ``acc`` not an integer array.
    ValueError
        If ``shift`` is outside 0..31 or ``acc`` outside int32.
    """
    shift = _check_int(shift, "shift", 0, MAX_SHIFT)
    acc = np.asarray(acc)
    if acc.dtype.kind not in "iu":
        raise TypeError(f"accumulators must be integers, not {acc.dtype}")
    acc = acc.astype(np.int64)
    if acc.size and (acc.min() < _INT32_MIN or acc.max() > _INT32_MAX):
        raise ValueError("accumulators must be within int32 (wrap them first)")
    if shift:
        acc = (acc + (1 << (shift - 1))) >> shift
    return np.clip(acc, 0, 255).astype(np.uint8)


def conv_acc(x, w, bias, stride=1, pad=0):
    """Integer convolution: 32-bit wrapped accumulators ``sum(x * w) + bias``.

    Parameters
    ----------
    x : numpy.ndarray
        Integer (C, H, W) activations (uint8 in the datapath). Padding adds zeros.
    w : numpy.ndarray
        Integer (O, C, k, k) weights.
    bias : numpy.ndarray
        Integer (O,) biases within int32, added once per output.
    stride, pad : int
        Convolution stride and zero padding on every side.

    Returns
    -------
    numpy.ndarray
        int32 (O, Ho, Wo): the exact sum wrapped to 32-bit two's complement.

    Raises
    ------
    TypeError
        If an operand is not an integer array.
    ValueError
        If shapes disagree, the bias leaves int32, or an exact sum could exceed int64.
    """
    x, w, bias = np.asarray(x), np.asarray(w), np.asarray(bias)
    for name, value in (("activations", x), ("weights", w), ("bias", bias)):
        if value.dtype.kind not in "iu":
            raise TypeError(f"{name} must be integers, not {value.dtype}")
    if x.ndim != 3 or w.ndim != 4 or w.shape[2] != w.shape[3]:
        raise ValueError(f"need x (C,H,W) and square w (O,C,k,k), not {x.shape} and {w.shape}")
    if w.shape[1] != x.shape[0]:
        raise ValueError(f"weights expect {w.shape[1]} input channels, activations have "
                         f"{x.shape[0]}")
    if bias.shape != (w.shape[0],):
        raise ValueError(f"bias must have shape ({w.shape[0]},), not {bias.shape}")
    bias = bias.astype(np.int64)
    if bias.size and (bias.min() < _INT32_MIN or bias.max() > _INT32_MAX):
        raise ValueError("bias must be within int32")
    out_channels, _, kernel, _ = w.shape
    w2d = w.reshape(out_channels, -1).astype(np.int64)
    # Largest possible |sum of products| of any output, before the bias: bounds every partial
    # sum whatever order the matmul adds in.
    x_max = int(np.abs(x.astype(np.int64)).max()) if x.size else 0
    bound = x_max * int(np.abs(w2d).sum(axis=1).max()) if w2d.size else 0
    if bound < _FLOAT64_EXACT:
        cols, (out_h, out_w) = im2col(x, kernel, stride, pad, dtype=np.float64)
        acc = (w2d.astype(np.float64) @ cols).astype(np.int64)
    elif bound < (1 << 62):  # leaves room for the bias and the wrap's +2**31 in int64
        cols, (out_h, out_w) = im2col(x, kernel, stride, pad, dtype=np.int64)
        acc = w2d @ cols
    else:
        raise ValueError(f"sums of products up to {bound} do not fit int64")
    acc += bias[:, None]
    return wrap_int32(acc).reshape(out_channels, out_h, out_w)


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
    weight_bits = _check_weight_bits(weight_bits)
    w_frac = _check_int(w_frac, "w_frac", -64, 64)
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
    frac = _check_int(frac, "bias frac", -128, 128)
    scaled = np.floor(np.asarray(bias, np.float64) * 2.0 ** frac + 0.5)
    return np.clip(scaled, _INT32_MIN, _INT32_MAX).astype(np.int64)


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
    return np.clip(folded, _INT32_MIN, _INT32_MAX)


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
        _check_weight_bits(self.weight_bits)
        _check_int(self.shift, f"{self.spec.name}: shift", 0, MAX_SHIFT)
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
        positions = np.cumsum(self.rel.astype(np.int64) + 1) - 1
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


def conv(x, qconv):
    """Any quantised convolution: ``requantize(conv_acc(x, weights, bias, stride, pad), shift)``.

    Parameters
    ----------
    x : numpy.ndarray
        uint8 (C, H, W) activations.
    qconv : QConv

    Returns
    -------
    numpy.ndarray
        uint8 (O, Ho, Wo).
    """
    if x.shape[0] != qconv.spec.in_channels:
        raise ValueError(f"{qconv.name} expects {qconv.spec.in_channels} input channels, "
                         f"not {x.shape[0]}")
    acc = conv_acc(x, qconv.weights, qconv.bias, qconv.spec.stride, qconv.spec.pad)
    return requantize(acc, qconv.shift)


def _check_geometry(qconv, kernel, stride, pads):
    spec = qconv.spec
    if spec.kernel != kernel or spec.stride != stride or spec.pad not in pads:
        raise ValueError(f"{spec.name} is {spec.kernel}x{spec.kernel}/{spec.stride} pad "
                         f"{spec.pad}, not {kernel}x{kernel}/{stride} pad {pads}")


def conv1x1(x, qconv):
    """1x1 stride-1 convolution (squeeze, expand 1x1, and conv_final with its pad 1).

    Zero padding, if the layer has any, makes border outputs ``requantize(bias)``.
    See ``conv`` for parameters.
    """
    _check_geometry(qconv, 1, 1, (0, 1))
    return conv(x, qconv)


def conv3x3(x, qconv):
    """3x3 stride-1 convolution with zero padding 1 (expand 3x3). See ``conv``."""
    _check_geometry(qconv, 3, 1, (1,))
    return conv(x, qconv)


def conv7x7s2(x, qconv):
    """7x7 stride-2 convolution without padding (conv1 of v1.0; the mean is in its bias).

    See ``conv``.
    """
    _check_geometry(qconv, 7, 2, (0,))
    return conv(x, qconv)


def expand(squeezed, expand1x1, expand3x3):
    """The expand half of a Fire module: 1x1 and 3x3 on the same input, concatenated.

    Parameters
    ----------
    squeezed : numpy.ndarray
        uint8 (S, H, W), the squeeze output.
    expand1x1, expand3x3 : QConv
        They must share ``out_frac``, because their outputs form one tensor.

    Returns
    -------
    numpy.ndarray
        uint8 (E1 + E3, H, W), expand-1x1 channels first.
    """
    if expand1x1.out_frac != expand3x3.out_frac:
        raise ValueError(f"{expand1x1.name} and {expand3x3.name} are concatenated, so they need "
                         f"one out_frac, not {expand1x1.out_frac} and {expand3x3.out_frac}")
    return np.concatenate([conv1x1(squeezed, expand1x1), conv3x3(squeezed, expand3x3)])


def fire(x, squeeze, expand1x1, expand3x3):
    """A Fire module: squeeze 1x1, then expand 1x1 and expand 3x3 (pad 1), concatenated.

    Parameters
    ----------
    x : numpy.ndarray
        uint8 (C, H, W).
    squeeze, expand1x1, expand3x3 : QConv

    Returns
    -------
    numpy.ndarray
        uint8 (E1 + E3, H, W), expand-1x1 channels first.
    """
    return expand(conv1x1(x, squeeze), expand1x1, expand3x3)


def maxpool3x3s2(x):
    """Max-pool 3x3 stride 2 in Caffe ceil mode (a last partial window is kept).

    Windows that run past the bottom/right edge take the maximum over the pixels inside; padding
    with 0 gives the same result because activations are unsigned.

    Parameters
    ----------
    x : numpy.ndarray
        uint8 (C, H, W), H and W at least 3.

    Returns
    -------
    numpy.ndarray
        uint8 (C, Ho, Wo), same scale as ``x``.
    """
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 3:
        raise ValueError(f"max-pool takes uint8 (C, H, W), not {x.dtype} {x.shape}")
    _, height, width = x.shape
    out_h = output_size(height, 3, 2, ceil_mode=True)
    out_w = output_size(width, 3, 2, ceil_mode=True)
    need_h, need_w = 2 * (out_h - 1) + 3, 2 * (out_w - 1) + 3
    x = np.pad(x, ((0, 0), (0, need_h - height), (0, need_w - width)))
    out = x[:, 0:2 * out_h - 1:2, 0:2 * out_w - 1:2].copy()
    for ky in range(3):
        for kx in range(3):
            np.maximum(out, x[:, ky:ky + 2 * out_h - 1:2, kx:kx + 2 * out_w - 1:2], out=out)
    return out


def global_sum(x):
    """Global pool as the hardware does it: the integer sum of each channel over H x W.

    Parameters
    ----------
    x : numpy.ndarray
        uint8 (C, H, W).

    Returns
    -------
    numpy.ndarray
        int64 (C,); at most 255 * H * W, so 32 bits suffice for any SqueezeNet map.
    """
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim != 3:
        raise ValueError(f"global sum takes uint8 (C, H, W), not {x.dtype} {x.shape}")
    return x.sum(axis=(1, 2), dtype=np.int64)


# ----------------------------------------------------------------------------- plan and model


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
                weight_bits=_check_weight_bits(data["weight_bits"]),
                w_frac={name: int(v["w_frac"]) for name, v in layers.items()},
                out_frac={name: int(v["out_frac"]) for name, v in layers.items()},
                calibration_images=list(data.get("calibration_images", [])),
                statistic=str(data.get("statistic", "max")),
                act_range={name: float(v["act_range"]) for name, v in layers.items()
                           if "act_range" in v},
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not a quantisation plan: {exc}") from exc


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
                out["logits"] = (sums.astype(np.float64) * 2.0 ** -last_conv.out_frac
                                 / (x.shape[1] * x.shape[2]))
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
    weight_bits = _check_weight_bits(weight_bits)
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
            dense[np.cumsum(source.rel.astype(np.int64) + 1) - 1] = codebook[source.codes]
            bias = fold_mean_into_bias(unclipped.astype(np.int64),
                                       dense.reshape(spec.weight_shape))
        else:
            bias = quantize_bias(source.bias, in_frac[spec.name] + w_frac)
        layers[spec.name] = QConv(spec=spec, codebook=codebook, codes=source.codes,
                                  rel=source.rel, bias=bias, shift=shift, w_frac=w_frac,
                                  in_frac=in_frac[spec.name], out_frac=out_frac,
                                  weight_bits=weight_bits)
    return QuantizedModel(model.network, layers, plan)
