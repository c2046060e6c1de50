"""Tests of ``golden.recode``: weighted k-means, recoding to 4..7-bit codes, and its command line.

Expected k-means centres are worked out by hand in the comments; the properties of recoded
layers are checked against the original layers' dense weights, not against the code under test.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from golden import calibrate, codec
from golden.codec import CompressedLayer, CompressedModel, decode, encode
from golden.recode import (_float32_centres, main, packed_bytes, recode, recode_layer,
                           weighted_kmeans_1d)
from golden.recode_report import format_report, report

REPO = Path(__file__).resolve().parent.parent
REAL = codec.SHARED_MODEL_PATH
needs_real = pytest.mark.skipif(not REAL.exists(),
                                reason=f"real model not found at {REAL}: ../shared is absent")
NARROW = (4, 5, 6, 7)
# Layers of different shapes and densities, for the per-layer checks.
SOME_LAYERS = ("conv1", "fire2/conv1x1_2", "fire6/conv3x3_2", "conv_final")


@pytest.fixture(scope="module")
def synthetic():
    return codec.load(None)


@pytest.fixture(scope="module")
def recoded(synthetic):
    return {bits: recode(synthetic, bits) for bits in NARROW}


# ----------------------------------------------------------------------------- k-means


def test_kmeans_is_weighted():
    # Linear start [-3, 4], boundary 0.5: {-3, -1} and {1, 4}. Weighted means: -2 and
    # (6*1 + 4) / 7 = 10/7; boundary -2/7 keeps the same split, so it has converged.
    # (Unweighted, the second centre would be 2.5.)
    centres, labels = weighted_kmeans_1d([4.0, -3.0, 1.0, -1.0], [1, 1, 6, 1], 2)
    np.testing.assert_allclose(centres, [-2.0, 10 / 7], rtol=1e-12)
    assert labels.tolist() == [1, 0, 1, 0]


def test_kmeans_tie_goes_to_lower_centre():
    # Start [0, 10], boundary 5: 5 is equidistant and joins the lower cluster {0, 4, 5}, mean 3;
    # {10} has mean 10; boundary 6.5 keeps the split.
    centres, labels = weighted_kmeans_1d([0.0, 4.0, 5.0, 10.0], [1, 1, 1, 10], 2)
    np.testing.assert_allclose(centres, [3.0, 10.0], rtol=1e-12)
    assert labels.tolist() == [0, 0, 0, 1]


def test_kmeans_reseeds_an_empty_cluster():
    # Start [0, 50, 100], boundaries 25 and 75: the middle cluster is empty. The worst-served
    # value is 2 (squared error 4 from centre 0), so the centres become [0, 2, 100]; 1 is
    # equidistant from 0 and 2 and joins 0. Means: [0.5, 2, 100], which keeps the split.
    centres, labels = weighted_kmeans_1d([0.0, 1.0, 2.0, 100.0], [1, 1, 1, 1], 3)
    np.testing.assert_allclose(centres, [0.5, 2.0, 100.0], rtol=1e-12)
    assert labels.tolist() == [0, 0, 1, 2]


def test_kmeans_quantile_init():
    # Weighted mid-ranks 0.5, 1.5, 2.5, 3.5; quantiles at 1 and 3 give [1.5, 3.5], which are
    # already the means of {1, 2} and {3, 4}.
    centres, labels = weighted_kmeans_1d([1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1], 2, init="quantile")
    np.testing.assert_allclose(centres, [1.5, 3.5], rtol=1e-12)
    assert labels.tolist() == [0, 0, 1, 1]


def test_kmeans_few_values_are_their_own_clusters():
    centres, labels = weighted_kmeans_1d([0.5, -0.25], [3, 1], 15)
    assert centres.tolist() == [-0.25, 0.5]
    assert labels.tolist() == [1, 0]


@pytest.mark.parametrize("values, weights, k, init, match", [
    ([1.0, 1.0, 2.0], [1, 1, 1], 2, "linear", "distinct"),
    ([1.0, 2.0], [1, 0], 1, "linear", "positive"),
    ([1.0, np.nan], [1, 1], 1, "linear", "finite"),
    ([1.0, 2.0], [1, 1], 0, "linear", "Cluster count"),
    ([1.0, 2.0], [1, 1], 1, "median", "init"),
    ([], [], 1, "linear", "non-empty"),
])
def test_kmeans_rejects(values, weights, k, init, match):
    with pytest.raises(ValueError, match=match):
        weighted_kmeans_1d(values, weights, k, init)


def test_float32_centres_never_zero():
    out = _float32_centres(np.array([-1.0, 0.0, 2.0]))
    assert out.dtype == np.float32
    assert out[0] == -1 and out[2] == 2 and 0 < out[1] < 1e-40


# ----------------------------------------------------------------------------- recode


@pytest.mark.parametrize("bits", NARROW)
def test_round_trip(recoded, bits):
    model = recoded[bits]
    data = encode(model)
    back = decode(data, code_bits=bits)
    assert back.code_bits == bits
    for a, b in zip(model.layers, back.layers):
        np.testing.assert_array_equal(a.codes, b.codes)
        np.testing.assert_array_equal(a.rel, b.rel)
        np.testing.assert_array_equal(a.codebook, b.codebook)
        np.testing.assert_array_equal(a.bias, b.bias)
    assert encode(back) == data


@pytest.mark.parametrize("bits", NARROW)
def test_deterministic(synthetic, bits):
    assert encode(recode(synthetic, bits)) == encode(recode(codec.load(None), bits))


@pytest.mark.parametrize("bits", NARROW)
def test_layers_keep_positions_zeros_and_biases(synthetic, recoded, bits):
    for old, new in zip(synthetic.layers, recoded[bits].layers):
        assert new.codebook.dtype == np.float32 and new.codebook.shape == (1 << bits,)
        assert new.codebook[0] == 0.0
        np.testing.assert_array_equal(new.rel, old.rel)
        np.testing.assert_array_equal(new.bias, old.bias)
        np.testing.assert_array_equal(new.codes == 0, old.codes == 0)
        dense_old, dense_new = old.dense_weights(), new.dense_weights()
        np.testing.assert_array_equal(dense_new == 0, dense_old == 0)
        nonzero = new.codebook[1:]
        assert len(np.unique(nonzero)) == len(nonzero) and (nonzero != 0).all()


@pytest.mark.parametrize("bits", (4, 6))
@pytest.mark.parametrize("name", SOME_LAYERS)
def test_centres_are_weighted_means_and_nearest(synthetic, recoded, bits, name):
    old = synthetic.layer(name).dense_weights().ravel()
    new = recoded[bits].layer(name)
    positions = new.positions[new.codes != 0]
    codes = new.codes[new.codes != 0]
    values = old[positions].astype(np.float64)
    # Each centre is the mean of the original weights of its entries (an entry per weight).
    for code in np.unique(codes):
        assert new.codebook[code] == pytest.approx(values[codes == code].mean(), rel=1e-6)
    # Every weight got its nearest centre (Lloyd has converged).
    distance = np.abs(values - new.codebook[codes])
    nearest = np.abs(values[:, None] - new.codebook[None, 1:]).min(axis=1)
    np.testing.assert_allclose(distance, nearest, rtol=1e-6, atol=1e-12)
    # All 2**bits - 1 codes are in use (more distinct values than codes).
    assert len(np.unique(codes)) == (1 << bits) - 1


def _with_layer(model, name, layer):
    layers = [layer if l.name == name else l for l in model.layers]
    return CompressedModel(model.network, layers, model.code_bits)


def test_few_distinct_values_kept_exactly(synthetic):
    old = synthetic.layer("fire2/conv3x3_2")
    codes = np.where(old.codes == 0, 0, 1 + old.codes % 10).astype(np.uint8)  # codes 0..10
    few = CompressedLayer(old.spec, old.codebook, old.bias, codes, old.rel)
    new = recode_layer(few, 4)
    np.testing.assert_array_equal(new.dense_weights(), few.dense_weights())
    np.testing.assert_array_equal(new.codebook[1:11], np.sort(old.codebook[1:11]))
    np.testing.assert_array_equal(new.codebook[11:], 0)  # padding
    # The padded layer encodes and decodes within a whole model.
    model = _with_layer(recode(synthetic, 4), few.name, new)
    back = decode(encode(model), code_bits=4).layer(few.name)
    np.testing.assert_array_equal(back.dense_weights(), few.dense_weights())


def test_widening_keeps_values(recoded):
    four = recoded[4]
    six = recode(four, 6)
    for a, b in zip(four.layers, six.layers):
        np.testing.assert_array_equal(a.dense_weights(), b.dense_weights())


def test_code_with_zero_value_becomes_filler_code(synthetic):
    old = synthetic.layer("fire2/conv1x1_1")
    codebook = old.codebook.copy()
    codebook[5] = 0.0
    layer = CompressedLayer(old.spec, codebook, old.bias, old.codes, old.rel)
    new = recode_layer(layer, 5)
    np.testing.assert_array_equal(new.codes == 0, (old.codes == 0) | (old.codes == 5))
    np.testing.assert_array_equal(new.dense_weights() == 0, layer.dense_weights() == 0)


def test_same_width_is_identical_copy(synthetic):
    same = recode(synthetic, 8)
    assert encode(same) == encode(synthetic)
    assert same.layers[0].codes is not synthetic.layers[0].codes


def test_sizes_shrink_with_fewer_bits(synthetic, recoded):
    models = [synthetic] + [recoded[bits] for bits in (7, 6, 5, 4)]
    files = [len(encode(m)) for m in models]
    packed = [packed_bytes(m) for m in models]
    assert files == sorted(files, reverse=True) and len(set(files)) == 5
    assert packed == sorted(packed, reverse=True) and len(set(packed)) == 5
    # Codes of 5..8 bits take a byte each in the file; only the codebooks shrink.
    assert files[0] - files[1] == 4 * 128 * len(synthetic.layers)
    # 4-bit codes are packed two per byte, like the relative indices.
    assert files[-1] == sum(8 + 4 * 16 + 4 * len(l.bias) + 2 * ((l.entries + 1) // 2)
                            for l in synthetic.layers) - 4 * len(synthetic.layers)


@pytest.mark.parametrize("bits, error", [(3, ValueError), (9, ValueError), ("6", TypeError)])
def test_recode_rejects_code_bits(synthetic, bits, error):
    with pytest.raises(error, match="Code width"):
        recode(synthetic, bits)


def test_recode_rejects_init(synthetic):
    with pytest.raises(ValueError, match="init"):
        recode(synthetic, 6, init="random")


@needs_real
def test_real_model_sizes():
    model = codec.load(REAL)
    # From the model README: 422,083 entries, 26 layers, 3,976 biases.
    assert packed_bytes(model) == 104 + (422083 * 12 + 7) // 8 + 4 * (26 * 256 + 3976)
    six = recode(model, 6)
    assert packed_bytes(six) == 104 + (422083 * 10 + 7) // 8 + 4 * (26 * 64 + 3976)
    assert len(encode(six)) == 675763 - 26 * 4 * (256 - 64)
    back = codec.decode(encode(six), code_bits=6)
    for old, new in zip(model.layers, back.layers):
        np.testing.assert_array_equal(new.dense_weights() == 0, old.dense_weights() == 0)


# ----------------------------------------------------------------------------- report


def test_report_small(synthetic, monkeypatch):
    # One calibration image keeps the fresh 4-bit calibration fast.
    monkeypatch.setattr(calibrate, "CALIBRATION_IMAGES", ("chelsea",))
    result = report(synthetic, (8, 4), images=["chelsea"], progress=None)
    eight, four = result["rows"]
    assert eight["file_bytes"] == len(encode(synthetic))
    assert eight["float"]["sqnr_db"] == float("inf") and eight["float"]["top1_agreement"] == 1
    assert four["file_bytes"] == len(encode(recode(synthetic, 4)))
    assert four["entry_bits"] == synthetic.entries * 8
    assert 0 <= four["fixed"]["top5_overlap"] <= 5
    text = format_report(result, "synthetic")
    assert text.splitlines()[0] == "model: synthetic"
    assert any(line.lstrip().startswith("4 ") for line in text.splitlines())


# ----------------------------------------------------------------------------- command line


def test_cli_writes_recoded_model(synthetic, tmp_path, capsys):
    out = tmp_path / "five.net"
    assert main(["synthetic", str(out), "--code-bits", "5"]) == 0
    assert out.read_bytes() == encode(recode(synthetic, 5))
    assert codec.load(out, code_bits=5).code_bits == 5
    assert "code_bits=5" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["five.net"]


def test_cli_module_runs(tmp_path):
    out = tmp_path / "four.net"
    run = subprocess.run([sys.executable, "-m", "golden.recode", "synthetic", str(out),
                          "--code-bits", "4"], cwd=REPO, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert codec.load(out, code_bits=4).code_bits == 4


def _bad_cases(tmp):
    garbage = tmp / "garbage.net"
    garbage.write_bytes(b"\x01\x02\x03" * 50)
    four = tmp / "four.net"
    four.write_bytes(encode(recode(codec.load(None), 4)))
    locked = tmp / "locked"
    locked.mkdir()
    return {
        "code bits too low": (["synthetic", "OUT", "--code-bits", "3"], "--code-bits 3"),
        "code bits too high": (["synthetic", "OUT", "--code-bits", "9"], "--code-bits 9"),
        "code bits not a number": (["synthetic", "OUT", "--code-bits", "six"], "invalid int"),
        "code bits missing": (["synthetic", "OUT"], "--code-bits missing"),
        "no output": (["--code-bits", "6"], "expected [IN] OUT"),
        "missing input": ([str(tmp / "absent.net"), "OUT", "--code-bits", "6"], "not found"),
        "malformed input": ([str(garbage), "OUT", "--code-bits", "6"], "cannot read input"),
        "wrong input width": ([str(four), "OUT", "--code-bits", "6"], "--in-code-bits"),
        "bad input width": (["synthetic", "OUT", "--code-bits", "6", "--in-code-bits", "2"],
                            "--in-code-bits 2"),
        "output in missing directory": (["synthetic", str(tmp / "no" / "x.net"), "--code-bits",
                                         "6"], "no directory"),
        "output is a directory": (["synthetic", str(locked), "--code-bits", "6"],
                                  "is a directory"),
        "json without report": (["synthetic", "OUT", "--code-bits", "6", "--json",
                                 str(tmp / "r.json")], "--json needs --report"),
        "report with code bits": (["synthetic", "--report", "--code-bits", "6"],
                                  "drop --code-bits"),
        "report with output": (["synthetic", "OUT", "--report"], "at most one path"),
        "report json unwritable": (["synthetic", "--report", "--json", str(locked)],
                                   "is a directory"),
        "unknown option": (["synthetic", "OUT", "--code-bits", "6", "--fast"],
                           "unrecognized"),
    }


BAD = ["code bits too low", "code bits too high", "code bits not a number", "code bits missing",
       "no output", "missing input", "malformed input", "wrong input width", "bad input width",
       "output in missing directory", "output is a directory", "json without report",
       "report with code bits", "report with output", "report json unwritable",
       "unknown option"]


@pytest.mark.parametrize("case", BAD)
def test_cli_bad_arguments(tmp_path, capsys, case):
    argv, expected = _bad_cases(tmp_path)[case]
    out = tmp_path / "out.net"
    argv = [str(out) if arg == "OUT" else arg for arg in argv]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert expected in lines[0]
    assert captured.out == ""
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary file left
