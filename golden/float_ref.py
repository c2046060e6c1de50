"""Float32 reference inference of a compressed SqueezeNet (im2col + matmul).

This is the model README's reference: decoded float weights, the mean subtracted from the BGR
pixels in float, ReLU after every convolution, Caffe ceil-mode max-pools, global average pool;
``pool_final`` (the logits) is returned before softmax. The fixed-point model (``golden.fixed``)
is measured against it, and calibration (``golden.calibrate``) reads its activation ranges.
"""

from __future__ import annotations

import numpy as np

from .fixed import im2col
from .network import Conv, Fire, GlobalAvgPool, MaxPool, output_size
from .preprocess import BGR_MEAN

__all__ = ["conv_relu", "maxpool", "softmax", "run_float"]


def conv_relu(x, weights, bias, stride=1, pad=0):
    """Float32 convolution followed by ReLU.

    Parameters
    ----------
    x : numpy.ndarray
        float32 (C, H, W).
    weights : numpy.ndarray
        float32 (O, C, k, k).
    bias : numpy.ndarray
        float32 (O,).
    stride, pad : int

    Returns
    -------
    numpy.ndarray
        float32 (O, Ho, Wo).
    """
    out_channels, _, kernel, _ = weights.shape
    cols, (out_h, out_w) = im2col(x, kernel, stride, pad, dtype=np.float32)
    y = weights.reshape(out_channels, -1).astype(np.float32) @ cols
    y += bias.astype(np.float32)[:, None]
    np.maximum(y, 0, out=y)
    return y.reshape(out_channels, out_h, out_w)


def maxpool(x, kernel=3, stride=2):
    """Caffe ceil-mode max-pool (no padding; a last partial window covers what is inside).

    Parameters
    ----------
    x : numpy.ndarray
        (C, H, W).
    kernel, stride : int

    Returns
    -------
    numpy.ndarray
        (C, Ho, Wo), same dtype.
    """
    _, height, width = x.shape
    out_h = output_size(height, kernel, stride, ceil_mode=True)
    out_w = output_size(width, kernel, stride, ceil_mode=True)
    need_h, need_w = stride * (out_h - 1) + kernel, stride * (out_w - 1) + kernel
    # -inf padding never wins a max, so partial windows see only real pixels.
    x = np.pad(x, ((0, 0), (0, need_h - height), (0, need_w - width)), constant_values=-np.inf)
    out = np.full((x.shape[0], out_h, out_w), -np.inf, x.dtype)
    for ky in range(kernel):
        for kx in range(kernel):
            np.maximum(out, x[:, ky:ky + stride * (out_h - 1) + 1:stride,
                              kx:kx + stride * (out_w - 1) + 1:stride], out=out)
    return out


def softmax(logits):
    """Softmax over the last axis, in float64 (shifted by the maximum for stability).

    Parameters
    ----------
    logits : array_like

    Returns
    -------
    numpy.ndarray
        float64 probabilities summing to 1.
    """
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def run_float(model, bgr_uint8, mean=BGR_MEAN):
    """Float32 inference of one image.

    Parameters
    ----------
    model : golden.codec.CompressedModel
        Supplies ``network`` and, per conv layer, ``dense_weights()`` and ``bias``.
    bgr_uint8 : numpy.ndarray
        uint8 (3, H, W) BGR pixels (``golden.preprocess.preprocess`` output).
    mean : sequence of float
        Per-channel mean subtracted in float (BGR).

    Returns
    -------
    dict
        float32 post-ReLU activations under the producing layer's name (``conv1``, ``pool1``,
        ``fire2/conv1x1_1``, ``fire2/conv1x1_2``, ``fire2/conv3x3_2``, ``fire2`` (concatenated),
        ..., ``conv_final``), ``pool_final`` and ``logits`` (the same float32 (classes,) vector,
        before softmax).
    """
    x = np.asarray(bgr_uint8)
    if x.dtype != np.uint8 or x.ndim != 3:
        raise ValueError(f"input must be uint8 (C, H, W), not {x.dtype} {x.shape}")
    x = x.astype(np.float32) - np.asarray(mean, np.float32)[:, None, None]
    out = {}

    def run_conv(spec, inp):
        layer = model.layer(spec.name)
        y = out[spec.name] = conv_relu(inp, layer.dense_weights(), layer.bias, spec.stride,
                                       spec.pad)
        return y

    for op in model.network:
        if isinstance(op, Conv):
            x = run_conv(op, x)
        elif isinstance(op, Fire):
            squeeze, e1, e3 = op.convs
            s = run_conv(squeeze, x)
            x = out[op.name] = np.concatenate([run_conv(e1, s), run_conv(e3, s)])
        elif isinstance(op, MaxPool):
            x = out[op.name] = maxpool(x, op.kernel, op.stride)
        elif isinstance(op, GlobalAvgPool):
            x = out[op.name] = x.mean(axis=(1, 2), dtype=np.float32)
            out["logits"] = x
        else:
            raise TypeError(f"unknown operation {op!r}")
    return out
