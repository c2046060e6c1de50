"""SqueezeNet topologies as data, and the paper's metaparameter generator."""

import pytest

from golden.network import (Conv, Fire, MaxPool, conv_layers, fire_modules, from_metaparameters,
                            output_size, spatial_sizes, squeezenet_v1_0, squeezenet_v1_1)

# SqueezeNet paper, Table 1: (s1x1, e1x1, e3x3) of fire2..fire9.
TABLE_1 = [(16, 64, 64), (16, 64, 64), (32, 128, 128), (32, 128, 128),
           (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256)]


def dims(net):
    return [(f.squeeze, f.expand1x1, f.expand3x3) for f in fire_modules(net)]


def test_metaparameters_reproduce_table_1():
    net = from_metaparameters(base_e=128, incr_e=128, pct3x3=0.5, freq=2, sr=0.125)
    assert dims(net) == TABLE_1
    assert net == squeezenet_v1_0()


def test_metaparameters_vary():
    net = from_metaparameters(base_e=128, incr_e=128, pct3x3=0.75, freq=2, sr=0.25)
    assert dims(net)[0] == (32, 32, 96)
    assert [f.in_channels for f in fire_modules(net)][1] == 128


def test_v1_0_matches_the_deploy_prototxt():
    net = squeezenet_v1_0()
    convs = conv_layers(net)
    assert len(convs) == 26 and convs[0].name == "conv1" and convs[-1].name == "conv_final"
    assert sum(c.weight_count for c in convs) == 1_244_448
    assert convs[-1].pad == 1 and convs[0] == Conv("conv1", 96, 3, 7, stride=2)
    assert [op.name for op in net if isinstance(op, MaxPool)] == ["pool1", "pool3", "pool4"]
    sizes = spatial_sizes(net)
    assert (sizes["conv1"], sizes["fire2"], sizes["fire5"], sizes["fire9"],
            sizes["conv_final"]) == (111, 55, 27, 13, 15)


def test_v1_1():
    net = squeezenet_v1_1()
    assert conv_layers(net)[0] == Conv("conv1", 64, 3, 3, stride=2)
    assert dims(net) == TABLE_1
    sizes = spatial_sizes(net)
    # 227 -> conv 113 -> ceil pools 56, 28, 14
    assert (sizes["fire2"], sizes["fire4"], sizes["fire6"]) == (56, 28, 14)


def test_caffe_ceil_mode_pooling():
    assert output_size(112, 3, 2, ceil_mode=True) == 56
    assert output_size(112, 3, 2) == 55
    assert output_size(111, 3, 2, ceil_mode=True) == 55


@pytest.mark.parametrize("kwargs,message", [
    ({"pct3x3": 1.5}, "pct3x3 must be between 0 and 1"),
    ({"sr": 0}, "SR must be in"),
    ({"freq": 0}, "freq must be a positive integer"),
])
def test_metaparameter_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        from_metaparameters(**kwargs)


def test_metaparameter_wrong_type():
    with pytest.raises(TypeError, match=r"^freq must be a positive integer, not 2\.0$"):
        from_metaparameters(freq=2.0)


def test_fire_parameters_checked():
    with pytest.raises(ValueError, match="fireX: squeeze must be a positive integer, not 0"):
        Fire("fireX", 96, 0, 64, 64)
    with pytest.raises(TypeError, match="fireX: expand3x3 must be a positive integer, not '64'"):
        Fire("fireX", 96, 16, 64, "64")
    with pytest.raises(TypeError, match="fireX: in_channels must be a positive integer, not True"):
        Fire("fireX", True, 16, 64, 64)
