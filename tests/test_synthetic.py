"""Tests of golden.synthetic, the embedded default model.

Reference densities are the README's non-zero and dense counts of the real model (facts about
the real file), not the densities hard-coded in golden.synthetic.
"""

import time

import numpy as np
import pytest

from golden import codec, synthetic
from golden.codec import decode, encode
from golden.network import conv_layers, squeezenet_v1_0

# README layer table of the real model: name -> (non-zero weights, dense weights).
README_NONZERO = {
    "conv1": (13902, 14112),
    "fire2/conv1x1_1": (1528, 1536), "fire2/conv1x1_2": (1020, 1024),
    "fire2/conv3x3_2": (3039, 9216),
    "fire3/conv1x1_1": (2038, 2048), "fire3/conv1x1_2": (1023, 1024),
    "fire3/conv3x3_2": (3039, 9216),
    "fire4/conv1x1_1": (4085, 4096), "fire4/conv1x1_2": (4071, 4096),
    "fire4/conv3x3_2": (12156, 36864),
    "fire5/conv1x1_1": (8160, 8192), "fire5/conv1x1_2": (4067, 4096),
    "fire5/conv3x3_2": (12147, 36864),
    "fire6/conv1x1_1": (12161, 12288), "fire6/conv1x1_2": (4602, 9216),
    "fire6/conv3x3_2": (27325, 82944),
    "fire7/conv1x1_1": (9205, 18432), "fire7/conv1x1_2": (9129, 9216),
    "fire7/conv3x3_2": (27336, 82944),
    "fire8/conv1x1_1": (24388, 24576), "fire8/conv1x1_2": (8187, 16384),
    "fire8/conv3x3_2": (44144, 147456),
    "fire9/conv1x1_1": (16370, 32768), "fire9/conv1x1_2": (16303, 16384),
    "fire9/conv3x3_2": (44173, 147456),
    "conv_final": (102323, 512000),
}

REAL = codec.SHARED_MODEL_PATH


def generate(seed=synthetic.DEFAULT_SEED, code_bits=8):
    """Generate without the cache, so that determinism is really tested."""
    return synthetic._generate.__wrapped__(seed, code_bits, "1.0")


def test_generation_is_deterministic_and_fast():
    start = time.perf_counter()
    first = generate()
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0
    assert generate() == first
    assert synthetic.synthetic_squeezenet_bytes() == first
    assert generate(seed=1) != first
    assert generate(code_bits=6) != first


def test_model_decodes_and_roundtrips():
    model = synthetic.synthetic_squeezenet()
    data = encode(model)
    assert encode(decode(data)) == data
    assert [layer.spec for layer in model.layers] == conv_layers(squeezenet_v1_0())
    assert model.code_bits == 8


def test_load_none_is_the_synthetic_model():
    assert codec.load(None).sha256 == synthetic.synthetic_squeezenet().sha256


def test_densities_follow_the_real_model():
    model = synthetic.synthetic_squeezenet()
    assert [layer.name for layer in model.layers] == list(README_NONZERO)
    for layer in model.layers:
        nonzero, dense = README_NONZERO[layer.name]
        assert layer.spec.weight_count == dense
        real = nonzero / dense
        assert abs(layer.density - real) <= 0.01 * real, layer.name
        # density is what the weights say, not just the entry bookkeeping
        assert np.count_nonzero(layer.dense_weights()) == layer.nonzero


@pytest.mark.skipif(not REAL.exists(),
                    reason=f"real model not found at {REAL}: ../shared is absent")
def test_densities_match_the_decoded_real_file():
    real = codec.load(REAL)
    model = synthetic.synthetic_squeezenet()
    for ours, theirs in zip(model.layers, real.layers):
        assert abs(ours.density - theirs.density) <= 0.01 * theirs.density, ours.name


def test_format_features_are_exercised():
    model = synthetic.synthetic_squeezenet()
    # Sparse layers need fillers, as in the real file, so the filler path is covered.
    assert model.layer("conv_final").fillers > 1000
    assert model.layer("fire9/conv3x3_2").fillers > 100
    for layer in model.layers:
        filler = layer.codes == 0
        assert np.all(layer.rel[filler] == 15), layer.name
    assert any(layer.entries % 2 for layer in model.layers)  # padding nibbles occur


@pytest.mark.parametrize("code_bits", [4, 5, 6, 7, 8])
def test_codebooks_and_biases(code_bits):
    model = synthetic.synthetic_squeezenet(code_bits=code_bits)
    for layer in model.layers:
        codebook = layer.codebook
        assert codebook.shape == (2 ** code_bits,) and codebook.dtype == np.float32
        assert codebook[0] == 0.0
        assert np.all(codebook[1:] != 0)
        assert len(np.unique(codebook[1:])) == 2 ** code_bits - 1
        assert np.all(np.abs(layer.bias) < 0.1)
        assert layer.bias.std() > 0


def test_weight_scale_shrinks_with_fan_in():
    """Weights scale like 1 / sqrt(density * fan_in), so that activations keep their size."""
    model = synthetic.synthetic_squeezenet()
    for layer in model.layers:
        spec = layer.spec
        weights = layer.codebook[layer.codes[layer.codes != 0]]
        rms = float(np.sqrt(np.mean(weights.astype(np.float64) ** 2)))
        feeding = layer.density * spec.in_channels * spec.kernel ** 2
        assert 0.8 < rms * np.sqrt(feeding) < 1.25, layer.name


def test_cli_writes_the_model(tmp_path, capsys):
    out = tmp_path / "synthetic.net"
    assert synthetic.main([str(out), "--code-bits", "5", "--seed", "7"]) == 0
    data = out.read_bytes()
    assert data == generate(seed=7, code_bits=5)
    assert decode(data, code_bits=5).entries > 400_000
    assert str(out) in capsys.readouterr().out


def test_cli_unwritable_path(tmp_path, capsys):
    assert synthetic.main([str(tmp_path / "no" / "such" / "dir.net")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write") and len(err.splitlines()) == 1


def test_bad_arguments():
    with pytest.raises(ValueError, match="Code width must be an integer from 4 to 8, not 9"):
        synthetic.synthetic_squeezenet(code_bits=9)
    with pytest.raises(TypeError, match="Seed must be an integer, not '2017'"):
        synthetic.synthetic_squeezenet(seed="2017")


def test_v1_1_model():
    """The synthetic v1.1: v1.1's 26 layers (64 3x3 conv1 filters), the real densities, and it
    loads through the codec by version, from a file too."""
    from golden.network import squeezenet_v1_1
    model = codec.load(None, version="1.1")
    assert model.network == squeezenet_v1_1()
    conv1 = model.layers[0]
    assert conv1.spec.weight_shape == (64, 3, 3, 3)
    assert len(model.layers) == 26
    dense = sum(layer.spec.weight_count for layer in model.layers)
    # torchvision's squeezenet1_1 has 1,235,496 parameters, 3,944 of them biases.
    assert dense == 1_235_496 - 3_944
    assert synthetic.synthetic_squeezenet_bytes(version="1.1") != \
        synthetic.synthetic_squeezenet_bytes()


def test_v1_1_file_round_trip(tmp_path):
    path = tmp_path / "v11.net"
    assert synthetic.main([str(path), "--version", "1.1"]) == 0
    assert codec.load(path, version="1.1").network == codec.load(None, version="1.1").network
    with pytest.raises(ValueError, match="SqueezeNet version must be 1.0 or 1.1, not '2.0'"):
        synthetic.synthetic_squeezenet(version="2.0")
