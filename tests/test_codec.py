"""Tests of golden.codec: the real Deep Compression file, malformed files, code widths, CLI.

Expected values come from the model README (counts, sha256) or from the format description,
worked out independently of the codec (block offsets by the README's size formula, fillers by
hand); malformed files are edits of the synthetic model's bytes so they need no ``../shared``.
Over 400 lines because every located error of the file format has its own case; the subject is
one (the ``.net`` codec).
"""

import hashlib
import re
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from golden import codec
from golden.codec import (CodecError, check_code_bits, compress_layer, decode, encode,
                          encode_positions, entry_positions)
from golden.network import Conv, conv_layers, from_metaparameters, squeezenet_v1_0
from golden.synthetic import synthetic_squeezenet, synthetic_squeezenet_bytes

REPO = Path(__file__).resolve().parent.parent
REAL = codec.SHARED_MODEL_PATH
needs_real = pytest.mark.skipif(not REAL.exists(),
                                reason=f"real model not found at {REAL}: ../shared is absent")

SPECS = conv_layers(squeezenet_v1_0())
NAMES = [spec.name for spec in SPECS]

# From the README's layer table: name -> (entries N_i, filler entries, non-zero weights).
README_COUNTS = {
    "conv1": (13902, 0, 13902),
    "fire2/conv3x3_2": (3073, 34, 3039),
    "fire7/conv1x1_2": (9132, 3, 9129),
    "fire9/conv1x1_1": (16371, 1, 16370),
    "fire9/conv3x3_2": (45038, 865, 44173),
    "conv_final": (105973, 3650, 102323),
}
README_SHA256 = "e4ab6960ae8cd81505e1c2136921201507e930966c53deaf15862a395b3a3261"


def layout(data, specs=SPECS, code_bits=8):
    """Block start offsets of each layer, straight from the README's format description."""
    counts = struct.unpack_from(f"<{len(specs)}I", data, 0)
    offset = 4 * len(specs)
    blocks = []
    for spec, n in zip(specs, counts):
        code_bytes = (n + 1) // 2 if code_bits == 4 else n
        start = {"n": n, "codebook": offset}
        start["bias"] = start["codebook"] + 4 * 2 ** code_bits
        start["codes"] = start["bias"] + 4 * spec.out_channels
        start["rel"] = start["codes"] + code_bytes
        start["end"] = start["rel"] + (n - 1) // 2 + 1
        offset = start["end"]
        blocks.append(start)
    return blocks


@pytest.fixture(scope="module")
def synth():
    return synthetic_squeezenet_bytes()


@pytest.fixture(scope="module")
def real_bytes():
    return REAL.read_bytes()


def decode_error(data, **kwargs):
    with pytest.raises(CodecError) as info:
        decode(data, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return info.value, message


# --- the real file -------------------------------------------------------------------------

@needs_real
def test_real_file_matches_readme_provenance(real_bytes):
    assert len(real_bytes) == 675_763
    assert hashlib.sha256(real_bytes).hexdigest() == README_SHA256


@needs_real
def test_real_totals(real_bytes):
    model = decode(real_bytes)
    assert [layer.name for layer in model.layers] == NAMES
    assert model.entries == 422_083
    assert model.fillers == 6_162
    assert model.nonzero == 415_921
    dense = [layer.dense_weights() for layer in model.layers]
    assert sum(int(np.count_nonzero(w)) for w in dense) == 415_921
    assert sum(w.size for w in dense) == 1_244_448
    assert sum(layer.bias.size for layer in model.layers) == 3_976


@needs_real
@pytest.mark.parametrize("name", sorted(README_COUNTS))
def test_real_layer_counts(real_bytes, name):
    layer = decode(real_bytes).layer(name)
    assert (layer.entries, layer.fillers, layer.nonzero) == README_COUNTS[name]


@needs_real
def test_real_fillers_follow_readme(real_bytes):
    model = decode(real_bytes)
    gap16 = 0
    for layer in model.layers:
        filler = layer.codes == 0
        # README: all code-0 entries are fillers (nibble 15), codebook entry 0 the only zero.
        assert np.all(layer.rel[filler] == 15), layer.name
        assert layer.codebook[0] == 0 and np.count_nonzero(layer.codebook == 0) == 1
        gap16 += int(np.count_nonzero(~filler & (layer.rel == 15)))
        assert layer.positions[-1] < layer.spec.weight_count
        assert np.all(np.diff(layer.positions) > 0)
    assert gap16 == 1_383


@needs_real
def test_real_roundtrip_is_byte_identical(real_bytes):
    model = decode(real_bytes)
    assert encode(model) == real_bytes
    assert model.sha256 == README_SHA256


@needs_real
def test_real_decode_is_fast(real_bytes):
    decode(real_bytes)  # warm up imports and caches
    start = time.perf_counter()
    decode(real_bytes)
    assert time.perf_counter() - start < 0.5


@needs_real
def test_compress_layer_reproduces_every_real_layer(real_bytes):
    model = decode(real_bytes)
    for layer in model.layers:
        again = compress_layer(layer.spec, layer.dense_weights(), layer.bias, layer.codebook)
        np.testing.assert_array_equal(again.codes, layer.codes, err_msg=layer.name)
        np.testing.assert_array_equal(again.rel, layer.rel, err_msg=layer.name)
        np.testing.assert_array_equal(again.codebook, layer.codebook)
        np.testing.assert_array_equal(again.bias, layer.bias)


@needs_real
def test_dense_weights_place_codebook_values(real_bytes):
    """Decode conv1's first entries by hand from the raw bytes and compare."""
    model = decode(real_bytes)
    blocks = layout(real_bytes)[0]
    codebook = np.frombuffer(real_bytes, "<f4", 256, blocks["codebook"])
    codes = np.frombuffer(real_bytes, np.uint8, 6, blocks["codes"])
    rel_bytes = np.frombuffer(real_bytes, np.uint8, 3, blocks["rel"])
    nibbles = [rel_bytes[0] & 15, rel_bytes[0] >> 4, rel_bytes[1] & 15, rel_bytes[1] >> 4,
               rel_bytes[2] & 15, rel_bytes[2] >> 4]
    flat = model.layer("conv1").dense_weights().ravel()
    position = -1
    for code, nibble in zip(codes, nibbles):
        position += int(nibble) + 1
        assert flat[position] == codebook[code]


@needs_real
def test_load_real_file():
    model = codec.load(REAL)
    assert model.entries == 422_083 and model.code_bits == 8


# --- compress_layer on hand-made layers ------------------------------------------------------

def small_codebook(code_bits=8):
    codebook = np.zeros(2 ** code_bits, np.float32)
    codebook[1:] = np.arange(1, 2 ** code_bits, dtype=np.float32) * 0.25 - 1.125
    return codebook


def test_compress_layer_fillers_by_hand():
    spec = Conv("t", 4, 1, 5)  # 100 weights
    codebook = small_codebook()
    weights = np.zeros(100, np.float32)
    nz = {40: 5, 56: 6, 73: 7, 99: 8}  # gaps 41, 16, 17, 26
    for position, code in nz.items():
        weights[position] = codebook[code]
    layer = compress_layer(spec, weights.reshape(spec.weight_shape), np.zeros(4), codebook)
    # gap 41: fillers at 15 and 31, entry rel 8; gap 16: rel 15, no filler;
    # gap 17: filler at 72, entry rel 0; gap 26: filler at 89, entry rel 9.
    assert layer.codes.tolist() == [0, 0, 5, 6, 0, 7, 0, 8]
    assert layer.rel.tolist() == [15, 15, 8, 15, 15, 0, 15, 9]
    assert layer.positions.tolist() == [15, 31, 40, 56, 72, 73, 89, 99]
    assert (layer.entries, layer.fillers, layer.nonzero) == (8, 4, 4)
    np.testing.assert_array_equal(layer.dense_weights().ravel(), weights)


def test_compress_layer_gap_of_32_and_33():
    spec = Conv("t", 1, 1, 10)  # 100 weights
    codebook = small_codebook(5)
    weights = np.zeros(100, np.float32)
    weights[[0, 32, 65]] = codebook[[1, 2, 3]]  # gaps 1, 32, 33
    layer = compress_layer(spec, weights.reshape(spec.weight_shape), [0.5], codebook, code_bits=5)
    assert layer.rel.tolist() == [0, 15, 15, 15, 15, 0]
    assert layer.codes.tolist() == [1, 0, 2, 0, 0, 3]


def test_compress_layer_all_zero_and_full():
    spec = Conv("t", 2, 3, 1)
    codebook = small_codebook()
    empty = compress_layer(spec, np.zeros(spec.weight_shape), np.zeros(2), codebook)
    assert empty.entries == 0 and empty.positions.size == 0
    assert not empty.dense_weights().any()
    full_weights = codebook[1:7].reshape(spec.weight_shape)
    full = compress_layer(spec, full_weights, np.zeros(2), codebook)
    assert full.rel.tolist() == [0] * 6 and full.codes.tolist() == [1, 2, 3, 4, 5, 6]


def test_compress_layer_rejects_bad_input():
    spec = Conv("t", 2, 3, 1)
    codebook = small_codebook()
    weights = np.zeros(spec.weight_shape, np.float32)
    weights[1, 2] = 0.3  # not a codebook value
    with pytest.raises(ValueError, match=r"'t'.*0\.3.*\(1, 2, 0, 0\).*not an entry"):
        compress_layer(spec, weights, np.zeros(2), codebook)
    bad0 = codebook.copy()
    bad0[0] = 1e-3
    with pytest.raises(ValueError, match="entry 0"):
        compress_layer(spec, np.zeros(spec.weight_shape), np.zeros(2), bad0)
    dup = codebook.copy()
    dup[5] = dup[4]
    with pytest.raises(ValueError, match="more than once"):
        compress_layer(spec, np.zeros(spec.weight_shape), np.zeros(2), dup)
    with pytest.raises(ValueError, match="weight shape"):
        compress_layer(spec, np.zeros((2, 3)), np.zeros(2), codebook)
    with pytest.raises(ValueError, match="bias shape"):
        compress_layer(spec, np.zeros(spec.weight_shape), np.zeros(3), codebook)
    with pytest.raises(ValueError, match="codebook shape"):
        compress_layer(spec, np.zeros(spec.weight_shape), np.zeros(2), codebook, code_bits=7)


def test_storage_bits_counts_entries_codebook_and_bias():
    spec = Conv("t", 4, 1, 5)
    layer = compress_layer(spec, np.zeros(spec.weight_shape), np.zeros(4), small_codebook())
    layer.codes = np.zeros(10, np.uint8)
    layer.rel = np.full(10, 15, np.uint8)
    assert layer.storage_bits() == 10 * 12 + 256 * 32 + 4 * 32
    assert layer.storage_bits(6) == 10 * 10 + 64 * 32 + 4 * 32
    assert layer.storage_bits(6, value_bits=16) == 10 * 10 + 64 * 16 + 4 * 16
    with pytest.raises(ValueError):
        layer.storage_bits(9)


# --- model object ---------------------------------------------------------------------------

def test_layer_lookup_and_sha256(synth):
    model = decode(synth)
    assert model.layer("fire5/conv3x3_2") is model.layers[12]
    with pytest.raises(KeyError, match="no layer named 'fire10/conv1x1_1'.*conv_final"):
        model.layer("fire10/conv1x1_1")
    assert model.sha256 == hashlib.sha256(synth).hexdigest()
    model.layers[0].bias[0] += 1.0
    assert model.sha256 != hashlib.sha256(synth).hexdigest()


def test_decoded_arrays_have_the_documented_types(synth):
    layer = decode(synth).layer("fire2/conv3x3_2")
    assert layer.codebook.dtype == np.float32 and layer.codebook.shape == (256,)
    assert layer.bias.dtype == np.float32 and layer.bias.shape == (64,)
    assert layer.codes.dtype == np.uint8 and layer.rel.dtype == np.uint8
    assert layer.codes.shape == layer.rel.shape == (layout(synth)[3]["n"],)
    assert layer.positions.dtype == np.int64
    assert layer.dense_weights().dtype == np.float32
    assert layer.dense_weights().shape == (64, 16, 3, 3)
    layer.codes[0] = 1  # the model owns writable copies, not views of the input bytes


def test_encode_rejects_inconsistent_models(synth):
    model = decode(synth)
    model.layers[4].rel[0] = 16
    with pytest.raises(ValueError, match="fire3/conv1x1_1.*relative"):
        encode(model)
    model = decode(synth)
    del model.layers[-1]
    with pytest.raises(ValueError, match="25 layers.*26"):
        encode(model)
    model = decode(synth)
    model.layers[2].codes = model.layers[2].codes[:-1]
    with pytest.raises(ValueError, match="fire2/conv1x1_2"):
        encode(model)


# --- malformed files ------------------------------------------------------------------------

def test_truncated_in_header(synth):
    err, message = decode_error(synth[:50])  # 12.5 counts: fire5/conv3x3_2's is cut
    assert "header" in message and "'fire5/conv3x3_2'" in message and "byte offset 50" in message
    assert (err.layer, err.offset) == ("fire5/conv3x3_2", 50)


@pytest.mark.parametrize("index, block, block_name", [
    (0, "codebook", "codebook"), (3, "codebook", "codebook"), (7, "bias", "bias"),
    (5, "codes", "codes"), (25, "codes", "codes"), (9, "rel", "relative-index"),
    (25, "rel", "relative-index"),
])
def test_truncated_in_a_block(synth, index, block, block_name):
    start = layout(synth)[index][block]
    err, message = decode_error(synth[:start + 3])
    assert f"'{NAMES[index]}'" in message
    assert f"truncated in the {block_name} block" in message
    assert f"byte offset {start}" in message
    assert (err.layer, err.offset) == (NAMES[index], start)


def test_truncated_exactly_at_a_block_start(synth):
    start = layout(synth)[10]["codes"]
    _, message = decode_error(synth[:start])
    assert "'fire5/conv1x1_1'" in message and f"byte offset {start}" in message
    assert "codes block" in message and "only 0 remain" in message


def test_trailing_bytes(synth):
    err, message = decode_error(synth + b"\x00\x01\x02")
    assert "3 trailing bytes" in message and "'conv_final'" in message
    assert f"byte offset {len(synth)}" in message
    assert err.offset == len(synth)


def test_entries_run_past_the_layer(synth):
    blocks = layout(synth)[0]  # conv1: 14,112 weights, about 13,900 entries
    data = bytearray(synth)
    data[blocks["rel"]:blocks["end"]] = b"\xff" * (blocks["end"] - blocks["rel"])
    # With every nibble 15, entry j sits at 16 j + 15: entry 882 is the first at >= 14,112.
    err, message = decode_error(bytes(data))
    assert "'conv1'" in message and "run past" in message and "entry 882 " in message
    assert f"byte offset {blocks['rel'] + 441}" in message
    assert err.offset == blocks["rel"] + 441


def tiny_file(rel_nibbles, codes, code_bits=8):
    """A one-layer file for a 1x1x4x4 convolution (16 weights), built byte by byte."""
    codebook = [0.0] + [0.5 + i for i in range(2 ** code_bits - 1)]
    rel = list(rel_nibbles) + [0] * (len(rel_nibbles) % 2)
    return (struct.pack("<I", len(codes)) + struct.pack(f"<{len(codebook)}f", *codebook)
            + struct.pack("<f", 0.25) + bytes(codes)
            + bytes(lo | hi << 4 for lo, hi in zip(rel[0::2], rel[1::2])))


TINY = (Conv("tiny", 1, 1, 4),)


def test_tiny_file_last_weight_and_one_past_it():
    model = decode(tiny_file([14, 0], [3, 4]), network=TINY)  # positions 14 and 15 of 16
    assert model.layers[0].positions.tolist() == [14, 15]
    assert model.layers[0].dense_weights().ravel().tolist() == [0.0] * 14 + [2.5, 3.5]
    data = tiny_file([15, 0], [3, 4])  # positions 15 and 16: one past the last weight
    err, message = decode_error(data, network=TINY)
    assert "'tiny'" in message and "entry 1 of 2" in message and "flat index 16" in message
    assert err.offset == 4 + 1024 + 4 + 2  # the first (only) relative-index byte


def test_tiny_file_without_entries():
    data = tiny_file([], [])  # an all-zero layer: no codes, no relative-index bytes
    assert len(data) == 4 + 1024 + 4
    model = decode(data, network=TINY)
    assert model.layers[0].entries == 0 and not model.layers[0].dense_weights().any()
    assert encode(model) == data


def test_entry_count_larger_than_the_layer(synth):
    data = bytearray(synth)
    struct.pack_into("<I", data, 4 * 2, 1025)  # fire2/conv1x1_2 has 1,024 weights
    _, message = decode_error(bytes(data))
    assert "'fire2/conv1x1_2'" in message and "byte offset 8" in message
    assert "1025" in message and "1024 weights" in message


@pytest.mark.parametrize("value", [0.5, float("nan"), -1e-30])
def test_codebook_entry_0_not_zero(synth, value):
    start = layout(synth)[7]["codebook"]
    data = bytearray(synth)
    struct.pack_into("<f", data, start, value)
    err, message = decode_error(bytes(data))
    assert "'fire4/conv1x1_1'" in message and "codebook entry 0" in message
    assert f"byte offset {start}" in message and err.offset == start


def test_negative_zero_codebook_entry_is_zero(synth):
    start = layout(synth)[7]["codebook"]
    data = bytearray(synth)
    struct.pack_into("<f", data, start, -0.0)
    assert encode(decode(bytes(data))) == bytes(data)


def test_code_outside_the_codebook():
    data = bytearray(synthetic_squeezenet_bytes(code_bits=6))
    start = layout(data, code_bits=6)[1]["codes"]
    data[start + 10] = 64
    err, message = decode_error(bytes(data), code_bits=6)
    assert "'fire2/conv1x1_1'" in message and "code 64" in message and "64-entry" in message
    assert f"byte offset {start + 10}" in message and err.offset == start + 10


def test_layer_missing_from_the_file(synth):
    blocks = layout(synth)
    # A well-formed 25-layer file: header without conv_final's count, bodies of 25 layers.
    data = synth[:4 * 25] + synth[blocks[0]["codebook"]:blocks[24]["end"]]
    err, message = decode_error(data)
    assert "layer count" in message and "25 entry counts" in message
    assert "'conv_final'" in message and "byte offset 100" in message
    assert (err.layer, err.offset) == ("conv_final", 100)


def test_network_with_fewer_layers_than_the_file(synth):
    network = from_metaparameters(num_fires=7)  # 23 conv layers
    err, message = decode_error(synth, network=network)
    assert "layer count" in message and "26 entry counts" in message and "23 conv" in message
    assert "'conv_final'" in message and "byte offset 92" in message
    assert err.offset == 92


def test_code_zero_entries_that_are_not_fillers_are_accepted(synth):
    blocks = layout(synth)[1]
    data = bytearray(synth)
    data[blocks["codes"] + 5] = 0  # fire2/conv1x1_1 has no fillers, so entry 5 was non-zero
    original = decode(synth).layer("fire2/conv1x1_1")
    changed = decode(bytes(data)).layer("fire2/conv1x1_1")
    assert changed.nonzero == original.nonzero - 1
    assert changed.dense_weights().ravel()[changed.positions[5]] == 0.0
    assert encode(decode(bytes(data))) == bytes(data)


def odd_layer(data, code_bits=8):
    """Index of the first layer with an odd entry count (it has a padding nibble)."""
    return next(i for i, b in enumerate(layout(data, code_bits=code_bits)) if b["n"] % 2)


def test_padding_nibble_is_ignored_but_not_reproduced(synth):
    index = odd_layer(synth)
    last = layout(synth)[index]["end"] - 1
    data = bytearray(synth)
    data[last] |= 0x70
    model = decode(bytes(data))
    np.testing.assert_array_equal(model.layers[index].rel, decode(synth).layers[index].rel)
    assert encode(model) == synth


# --- code widths ----------------------------------------------------------------------------

@pytest.mark.parametrize("code_bits", [4, 5, 6, 7, 8])
def test_code_widths_roundtrip(code_bits):
    model = synthetic_squeezenet(code_bits=code_bits)
    data = encode(model)
    blocks = layout(data, code_bits=code_bits)
    assert len(data) == blocks[-1]["end"]  # file size as the format description predicts
    again = decode(data, code_bits=code_bits)
    assert again.code_bits == code_bits
    assert encode(again) == data
    for before, after in zip(model.layers, again.layers):
        assert len(after.codebook) == 2 ** code_bits
        assert after.codes.max() < 2 ** code_bits
        np.testing.assert_array_equal(before.dense_weights(), after.dense_weights())


def test_four_bit_codes_are_packed_low_nibble_first():
    data = synthetic_squeezenet_bytes(code_bits=4)
    blocks = layout(data, code_bits=4)
    model = decode(data, code_bits=4)
    for index in (0, 25):
        raw = np.frombuffer(data, np.uint8, 2, blocks[index]["codes"])
        codes = model.layers[index].codes
        assert codes[:4].tolist() == [raw[0] & 15, raw[0] >> 4, raw[1] & 15, raw[1] >> 4]
    index = odd_layer(data, code_bits=4)
    pad = data[blocks[index]["rel"] - 1]  # last byte of the codes block
    assert pad >> 4 == 0


@pytest.mark.parametrize("code_bits, error", [
    (3, ValueError), (9, ValueError), (0, ValueError), (True, TypeError), (8.0, TypeError),
    ("8", TypeError),
])
def test_code_width_out_of_range(synth, code_bits, error):
    message = rf"^Code width must be an integer from 4 to 8, not {re.escape(repr(code_bits))}$"
    with pytest.raises(error, match=message):
        decode(synth, code_bits=code_bits)
    with pytest.raises(error, match=message):
        compress_layer(SPECS[1], np.zeros(SPECS[1].weight_shape), np.zeros(16),
                       np.zeros(256), code_bits=code_bits)
    with pytest.raises(error, match=message):
        codec.load(None, code_bits=code_bits)
    with pytest.raises(error, match=message):
        check_code_bits(code_bits)


def test_entry_positions():
    # rel is the gap minus one; the first entry counts from position -1.
    np.testing.assert_array_equal(entry_positions(np.array([0, 0, 3, 15], np.uint8)),
                                  [0, 1, 5, 21])
    assert entry_positions(np.array([], np.uint8)).dtype == np.int64
    # uint8 rel must not wrap: 200 entries of rel 15 reach position 3,199.
    assert entry_positions(np.full(200, 15, np.uint8))[-1] == 3199


def test_encode_positions_bridges_long_gaps_with_fillers():
    codes, rel = encode_positions([0, 16, 17, 50], [3, 4, 5, 6])
    # Gap 34 from 17 to 50: two fillers (code 0, rel 15) at 33 and 49, then rel 0.
    np.testing.assert_array_equal(codes, [3, 4, 5, 0, 0, 6])
    np.testing.assert_array_equal(rel, [0, 15, 0, 15, 15, 0])
    np.testing.assert_array_equal(entry_positions(rel), [0, 16, 17, 33, 49, 50])
    assert codes.dtype == rel.dtype == np.uint8
    first = encode_positions([16], [1])
    np.testing.assert_array_equal(first[0], [0, 1])
    np.testing.assert_array_equal(first[1], [15, 0])
    empty = encode_positions([], [])
    assert empty[0].size == empty[1].size == 0


@pytest.mark.parametrize("seed", range(5))
def test_encode_positions_inverts_entry_positions(seed):
    rng = np.random.default_rng(seed)
    positions = np.sort(rng.choice(5000, 300, replace=False))
    values = rng.integers(1, 256, positions.size)
    codes, rel = encode_positions(positions, values)
    real = codes != 0
    np.testing.assert_array_equal(entry_positions(rel)[real], positions)
    np.testing.assert_array_equal(codes[real], values)
    assert np.all(rel[~real] == 15)
    gaps = np.diff(positions, prepend=-1)
    assert np.count_nonzero(~real) == int(((gaps - 1) // 16).sum())


def test_encode_positions_rejects_bad_positions():
    with pytest.raises(ValueError, match="strictly increasing"):
        encode_positions([3, 3], [1, 2])
    with pytest.raises(ValueError, match="strictly increasing"):
        encode_positions([-1], [1])
    with pytest.raises(ValueError, match="same length"):
        encode_positions([1, 2], [1])


def test_wrong_code_width_is_a_codec_error(synth):
    with pytest.raises(CodecError):
        decode(synth, code_bits=7)


# --- load -----------------------------------------------------------------------------------

def test_load_default_is_the_synthetic_model(synth):
    assert encode(codec.load()) == synth
    assert codec.load() is not codec.load()  # callers may modify their copy


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="compressed model not found.*nope.net"):
        codec.load(tmp_path / "nope.net")


def test_load_malformed_file_names_path_layer_offset(tmp_path, synth):
    path = tmp_path / "cut.net"
    path.write_bytes(synth[:1000])
    with pytest.raises(CodecError, match=r"cut\.net: layer 'conv1' .*byte offset 104"):
        codec.load(path)


def test_shared_model_path_is_beside_the_repository():
    expected = REPO.parent / "shared/models/squeezenet_v1_0_deep_compression"
    assert codec.SHARED_MODEL_PATH == expected / "compressed_SqueezeNet.net"


# --- CLI ------------------------------------------------------------------------------------

def test_cli_info_default_model(capsys):
    assert codec.main(["info", "--verify-roundtrip"]) == 0
    out = capsys.readouterr().out
    assert "embedded default model" in out
    model = synthetic_squeezenet()
    for layer in model.layers:
        assert layer.name in out
    assert f"{model.entries:,}" in out and f"{model.storage_bits():,}" in out
    assert "roundtrip OK" in out


@needs_real
def test_cli_info_real_file(capsys):
    assert codec.main(["info", str(REAL), "--verify-roundtrip"]) == 0
    out = capsys.readouterr().out
    assert "422,083" in out and "6,162" in out and "415,921" in out and "1,244,448" in out
    conv_final = next(line for line in out.splitlines() if line.startswith("conv_final"))
    assert conv_final.split()[1:6] == ["1000x512x1x1", "105,973", "3,650", "102,323",
                                       "512,000"]
    assert README_SHA256 in out and "roundtrip OK" in out


def test_cli_roundtrip_difference_exits_1(tmp_path, synth, capsys):
    index = odd_layer(synth)
    last = layout(synth)[index]["end"] - 1
    data = bytearray(synth)
    data[last] |= 0x10  # padding nibble: decodes, but is written back as 0
    path = tmp_path / "padded.net"
    path.write_bytes(bytes(data))
    assert codec.main(["info", str(path)]) == 0
    capsys.readouterr()
    assert codec.main(["info", str(path), "--verify-roundtrip"]) == 1
    out = capsys.readouterr().out
    assert f"first difference at byte offset {last} " in out
    assert f"'{NAMES[index]}', relative-index block" in out


@pytest.mark.parametrize("make", ["missing", "truncated", "trailing", "code-bits"])
def test_cli_errors_exit_2(tmp_path, synth, capsys, make):
    path = tmp_path / "model.net"
    argv = ["info", str(path)]
    if make == "truncated":
        path.write_bytes(synth[:5000])
    elif make == "trailing":
        path.write_bytes(synth + b"\0")
    elif make == "code-bits":
        path.write_bytes(synth)
        argv.append("--code-bits=9")
    assert codec.main(argv) == 2
    captured = capsys.readouterr()
    if make == "code-bits":  # argparse's own usage error
        assert "--code-bits" in captured.err
        return
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "model.net" in lines[0]
    if make != "missing":
        assert "byte offset" in lines[0] and "layer" in lines[0]


def test_cli_as_a_module(tmp_path, synth):
    run = [sys.executable, "-m", "golden.codec", "info"]
    ok = subprocess.run(run + ["--verify-roundtrip"], cwd=REPO, capture_output=True, text=True,
                        timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "embedded default model" in ok.stdout and "roundtrip OK" in ok.stdout
    bad = tmp_path / "bad.net"
    bad.write_bytes(synth[:-1])
    fail = subprocess.run(run + [str(bad)], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert fail.returncode == 2
    assert fail.stderr.startswith("error: ") and "'conv_final'" in fail.stderr
