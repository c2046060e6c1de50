"""Bit-exact integer operations of the fixed-point datapath (see :mod:`golden.fixed`).

Accumulate in 32-bit two's complement, requantise with a round-half-up shift, ReLU and
saturation, max-pool and global sum; the convolution wrappers take any quantised layer with
``spec``, ``weights``, ``bias`` and ``shift`` (a :class:`golden.fixed.QConv`). Every array is
CHW (one image, no batch axis).

Speed
-----
Convolutions run as im2col + matmul in float64. That is exact, not an approximation: all
operands are integers, and when the sum of absolute products of every output is below 2**53,
each partial sum BLAS forms (in any order) is an integer below 2**53, which float64 represents
exactly. ``conv_acc`` checks that bound and otherwise uses integer matmul.
"""

from __future__ import annotations

import numpy as np

from .network import output_size

__all__ = [
    "MAX_SHIFT", "INT32_MIN", "INT32_MAX", "check_int", "wrap_int32", "im2col", "requantize",
    "conv_acc", "conv", "conv1x1", "conv3x3", "conv7x7s2", "expand", "fire", "maxpool3x3s2",
    "global_sum",
]

#: Largest requantisation shift a 32-bit accumulator can use.
MAX_SHIFT = 31

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
# Largest integer magnitude below which float64 arithmetic on integers is exact.
_FLOAT64_EXACT = 1 << 53


def check_int(value, what, low, high):
    """Return ``value`` as an int: TypeError if it is not an integer, ValueError outside
    ``low..high``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an integer, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{what} must be between {low} and {high}, not {value!r}")
    return int(value)


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
    shift = check_int(shift, "shift", 0, MAX_SHIFT)
    acc = np.asarray(acc)
    if acc.dtype.kind not in "iu":
        raise TypeError(f"accumulators must be integers, not {acc.dtype}")
    acc = acc.astype(np.int64)
    if acc.size and (acc.min() < INT32_MIN or acc.max() > INT32_MAX):
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
    if bias.size and (bias.min() < INT32_MIN or bias.max() > INT32_MAX):
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
