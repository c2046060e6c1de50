"""SqueezeNet topologies as data.

A network is an ordered tuple of operations (``Conv``, ``Fire``, ``MaxPool``, ``GlobalAvgPool``).
``conv_layers(net)`` flattens it into the convolution layers in the order the Deep Compression
``.net`` file stores them: each Fire module contributes squeeze 1x1, expand 1x1, expand 3x3.

``squeezenet_v1_0()`` follows ``SqueezeNet_deploy.prototxt`` of the compressed model (conv10 has
pad 1, pools are Caffe ceil-mode); ``squeezenet_v1_1()`` the v1.1 variant; ``from_metaparameters``
is the generator of Section 5.1 of the SqueezeNet paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "Conv", "Fire", "MaxPool", "GlobalAvgPool", "conv_layers", "fire_modules",
    "squeezenet", "squeezenet_v1_0", "squeezenet_v1_1", "from_metaparameters", "output_size",
]


@dataclass(frozen=True)
class Conv:
    """A convolution followed by ReLU (every convolution of SqueezeNet is)."""
    name: str
    out_channels: int
    in_channels: int
    kernel: int
    stride: int = 1
    pad: int = 0

    @property
    def weight_shape(self):
        return (self.out_channels, self.in_channels, self.kernel, self.kernel)

    @property
    def weight_count(self):
        return self.out_channels * self.in_channels * self.kernel * self.kernel


@dataclass(frozen=True)
class Fire:
    """squeeze 1x1 -> ReLU -> (expand 1x1 || expand 3x3 pad 1) -> ReLU -> concat (1x1 first)."""
    name: str
    in_channels: int
    squeeze: int
    expand1x1: int
    expand3x3: int

    def __post_init__(self):
        for field in ("in_channels", "squeeze", "expand1x1", "expand3x3"):
            value = getattr(self, field)
            message = f"Fire {self.name}: {field} must be a positive integer, not {value!r}"
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(message)
            if value < 1:
                raise ValueError(message)

    @property
    def out_channels(self):
        return self.expand1x1 + self.expand3x3

    @property
    def convs(self):
        return (
            Conv(f"{self.name}/conv1x1_1", self.squeeze, self.in_channels, 1),
            Conv(f"{self.name}/conv1x1_2", self.expand1x1, self.squeeze, 1),
            Conv(f"{self.name}/conv3x3_2", self.expand3x3, self.squeeze, 3, pad=1),
        )


@dataclass(frozen=True)
class MaxPool:
    name: str
    kernel: int = 3
    stride: int = 2


@dataclass(frozen=True)
class GlobalAvgPool:
    name: str = "pool_final"


def output_size(size, kernel, stride=1, pad=0, ceil_mode=False):
    """Spatial output size of a convolution (floor) or a Caffe pool (ceil)."""
    span = size + 2 * pad - kernel
    if span < 0:
        raise ValueError(f"kernel {kernel} does not fit an input of {size} with pad {pad}")
    if ceil_mode:
        out = -(-span // stride) + 1
        # Caffe drops a last window that would start inside the padding only.
        if pad and (out - 1) * stride >= size + pad:
            out -= 1
        return out
    return span // stride + 1


def conv_layers(net):
    """All convolutions of ``net`` in ``.net`` file order."""
    layers = []
    for op in net:
        if isinstance(op, Conv):
            layers.append(op)
        elif isinstance(op, Fire):
            layers.extend(op.convs)
    return layers


def fire_modules(net):
    return [op for op in net if isinstance(op, Fire)]


_V1_0_FIRES = [(16, 64, 64), (16, 64, 64), (32, 128, 128), (32, 128, 128),
               (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256)]


def _assemble(conv1, fire_dims, pool_after, num_classes, final_pad):
    """conv1, pool, then Fire modules fire2.. with a pool after the ones named in ``pool_after``."""
    ops = [conv1, MaxPool("pool1")]
    in_channels = conv1.out_channels
    pool_index = 2
    for i, (s, e1, e3) in enumerate(fire_dims):
        fire = Fire(f"fire{i + 2}", in_channels, s, e1, e3)
        ops.append(fire)
        in_channels = fire.out_channels
        if fire.name in pool_after:
            pool_index += 1
            ops.append(MaxPool(f"pool{pool_index}"))
    ops.append(Conv("conv_final", num_classes, in_channels, 1, pad=final_pad))
    ops.append(GlobalAvgPool())
    return tuple(ops)


def squeezenet_v1_0(num_classes=1000):
    """SqueezeNet v1.0 exactly as the compressed model's deploy prototxt (conv10 pad 1)."""
    return _assemble(Conv("conv1", 96, 3, 7, stride=2), _V1_0_FIRES, {"fire4", "fire8"},
                     num_classes, final_pad=1)


def squeezenet_v1_1(num_classes=1000):
    """SqueezeNet v1.1: 64 3x3/2 conv1 and earlier pools (2.4x less computation)."""
    return _assemble(Conv("conv1", 64, 3, 3, stride=2), _V1_0_FIRES, {"fire3", "fire5"},
                     num_classes, final_pad=0)


def squeezenet(version="1.0", num_classes=1000):
    """SqueezeNet ``version`` "1.0" or "1.1"; ValueError for any other."""
    versions = {"1.0": squeezenet_v1_0, "1.1": squeezenet_v1_1}
    if version not in versions:
        raise ValueError(f"SqueezeNet version must be 1.0 or 1.1, not {version!r}")
    return versions[version](num_classes)


def from_metaparameters(base_e=128, incr_e=128, pct3x3=0.5, freq=2, sr=0.125,
                        num_fires=8, num_classes=1000):
    """Fire dimensions from the metaparameters of SqueezeNet Section 5.1.

    ``e_i = base_e + incr_e * floor(i / freq)``, ``e3 = e_i * pct3x3``, ``e1 = e_i - e3``,
    ``s1x1 = SR * e_i``; pools as in v1.0. Returns a network like ``squeezenet_v1_0()``.
    """
    if not (0.0 <= pct3x3 <= 1.0):
        raise ValueError(f"pct3x3 must be between 0 and 1, not {pct3x3!r}")
    if not (0.0 < sr <= 1.0):
        raise ValueError(f"SR must be in (0, 1], not {sr!r}")
    if not isinstance(freq, int) or isinstance(freq, bool):
        raise TypeError(f"freq must be a positive integer, not {freq!r}")
    if freq < 1:
        raise ValueError(f"freq must be a positive integer, not {freq!r}")
    dims = []
    for i in range(num_fires):
        e = base_e + incr_e * math.floor(i / freq)
        e3 = int(round(e * pct3x3))
        e1 = e - e3
        s = int(round(sr * e))
        dims.append((s, e1, e3))
    return _assemble(Conv("conv1", 96, 3, 7, stride=2), dims, {"fire4", "fire8"},
                     num_classes, final_pad=1)


def spatial_sizes(net, size=227):
    """Output height (= width) of every operation of ``net`` for a ``size`` x ``size`` input.

    Pools use Caffe's ceil mode; a Fire module keeps its input size.
    """
    sizes = {}
    for op in net:
        if isinstance(op, Conv):
            size = output_size(size, op.kernel, op.stride, op.pad)
        elif isinstance(op, MaxPool):
            size = output_size(size, op.kernel, op.stride, ceil_mode=True)
        elif isinstance(op, GlobalAvgPool):
            size = 1
        sizes[op.name] = size
    return sizes
