"""Small random SqueezeNets in the golden model's terms, for whole-network tests.

Everything here builds *inputs* (weights, images); expected outputs come from
``golden.fixed.QuantizedModel.run``.
"""

import numpy as np

from golden.fixed import QuantizedModel
from golden.network import Conv, Fire, GlobalAvgPool, MaxPool, conv_layers
from testkit.fire_cases import random_qconv


class _Plan:
    """The one field of a QuantPlan that QuantizedModel reads."""

    def __init__(self, weight_bits):
        self.weight_bits = weight_bits


def tiny_network(*, conv1=(8, 3, 2), fires=((4, 4, 4), (4, 6, 6)), pool_after=("conv1",),
                 classes=10, final_pad=1):
    """A SqueezeNet-shaped network: conv1 ``(out, kernel, stride)``, Fire modules
    ``(squeeze, e1, e3)`` from fire2 on, pools after the named layers, a last 1x1 convolution of
    ``classes`` channels with ``final_pad`` padding and the global pool."""
    out, kernel, stride = conv1
    ops = [Conv("conv1", out, 3, kernel, stride=stride)]
    if "conv1" in pool_after:
        ops.append(MaxPool("pool1"))
    channels = out
    for i, (s, e1, e3) in enumerate(fires):
        fire = Fire(f"fire{i + 2}", channels, s, e1, e3)
        ops.append(fire)
        channels = fire.out_channels
        if fire.name in pool_after:
            ops.append(MaxPool(f"pool_{fire.name}"))
    ops += [Conv("conv_final", classes, channels, 1, pad=final_pad), GlobalAvgPool()]
    return tuple(ops)


def random_model(rng, network, *, density=0.4, weight_bits=16):
    """A QuantizedModel of ``network`` with random sparse weights, biases and shifts.

    Shifts are chosen so that activations stay in range for random uint8 images (neither all 0
    nor all 255), which keeps every layer's result informative.
    """
    layers = {}
    for spec in conv_layers(network):
        fan_in = spec.in_channels * spec.kernel * spec.kernel
        shift = int(np.clip(np.ceil(np.log2(max(1.0, fan_in * density))) + 8, 6, 24))
        layers[spec.name] = random_qconv(rng, spec, density=density, weight_bits=weight_bits,
                                         shift=shift)
    return QuantizedModel(network, layers, _Plan(weight_bits))
