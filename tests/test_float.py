"""Tests of golden.preprocess and golden.float_ref.

Expected values: the pixel checksums and the float top-5 table of the model README, hand
values, and plain-Python loops for the float operations.
"""

import math

import numpy as np
import pytest

from golden import codec
from golden.float_ref import conv_relu, maxpool, run_float, softmax
from golden.preprocess import (BGR_MEAN, load_image, pixel_checksum, preprocess, resize_rgb)

REAL = codec.SHARED_MODEL_PATH
needs_real = pytest.mark.skipif(not REAL.exists(),
                                reason=f"real model not found at {REAL}: ../shared is absent")

# Model README: source shape and pixel sum of the 227x227x3 RGB uint8 image after resize+round.
README_CHECKSUMS = {
    "chelsea": ((300, 451, 3), 17_824_070),
    "coffee": ((400, 600, 3), 15_243_896),
    "astronaut": ((512, 512, 3), 17_716_089),
    "rocket": ((427, 640, 3), 10_094_513),
}

# Model README float reference: (class, prob, pool_final) of the top 5, best first.
README_TOP5 = {
    "chelsea": [(285, 0.7922, 19.782), (282, 0.1045, 17.756), (281, 0.0898, 17.604),
                (287, 0.0066, 14.999), (397, 0.0047, 14.648)],
    "coffee": [(967, 0.9892, 22.139), (968, 0.0031, 16.359), (809, 0.0018, 15.824),
               (868, 0.0008, 14.989), (960, 0.0007, 14.888)],
    "astronaut": [(505, 0.0905, 12.263), (550, 0.0829, 12.175), (859, 0.0733, 12.052),
                  (521, 0.0722, 12.038), (473, 0.0605, 11.860)],
    "rocket": [(718, 0.1306, 10.471), (839, 0.1202, 10.388), (733, 0.1191, 10.379),
               (628, 0.1174, 10.364), (657, 0.0654, 9.779)],
}


# ----------------------------------------------------------------------------- preprocessing


@pytest.mark.parametrize("name", sorted(README_CHECKSUMS))
def test_readme_pixel_checksums(name):
    shape, checksum = README_CHECKSUMS[name]
    rgb = load_image(name)
    assert rgb.shape == shape and rgb.dtype == np.uint8
    resized = resize_rgb(rgb)
    assert resized.shape == (227, 227, 3) and resized.dtype == np.uint8
    assert pixel_checksum(resized) == checksum
    assert pixel_checksum(preprocess(rgb)) == checksum


def test_preprocess_is_bgr_chw():
    rgb = load_image("coffee")
    resized = resize_rgb(rgb)
    bgr = preprocess(rgb)
    assert bgr.shape == (3, 227, 227) and bgr.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(bgr[channel], resized[:, :, 2 - channel])


def test_pixel_checksum_hand_value():
    assert pixel_checksum(np.full((2, 3), 255, np.uint8)) == 6 * 255
    with pytest.raises(ValueError, match="uint8"):
        pixel_checksum(np.zeros(3, np.int16))


# imageio leaves the handle of an undecodable file open; that is its leak, not ours.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_load_image_from_file_and_errors(tmp_path):
    import skimage.io

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 30, 3)).astype(np.uint8)
    path = tmp_path / "x.png"
    skimage.io.imsave(path, image, check_contrast=False)
    np.testing.assert_array_equal(load_image(str(path)), image)
    np.testing.assert_array_equal(load_image(path), image)

    grey = image[:, :, 0]
    skimage.io.imsave(tmp_path / "g.png", grey, check_contrast=False)
    np.testing.assert_array_equal(load_image(tmp_path / "g.png"), np.stack([grey] * 3, -1))

    with pytest.raises(FileNotFoundError, match="no such image"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(FileNotFoundError, match="no such image"):
        load_image("download_all")  # a skimage.data helper, not an image
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image"):
        load_image(tmp_path / "junk.png")


def test_load_image_bundled_photographs():
    from golden.preprocess import SKIMAGE_PHOTOS

    for name in SKIMAGE_PHOTOS:
        image = load_image(name)
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8, name


# ----------------------------------------------------------------------------- float operations


def ref_conv_relu(x, w, b, stride, pad):
    channels, height, width = x.shape
    out_channels, _, kernel, _ = w.shape
    out_h = (height + 2 * pad - kernel) // stride + 1
    out_w = (width + 2 * pad - kernel) // stride + 1
    out = np.zeros((out_channels, out_h, out_w))
    for o in range(out_channels):
        for oy in range(out_h):
            for ox in range(out_w):
                total = float(b[o])
                for c in range(channels):
                    for ky in range(kernel):
                        for kx in range(kernel):
                            iy, ix = oy * stride + ky - pad, ox * stride + kx - pad
                            if 0 <= iy < height and 0 <= ix < width:
                                total += float(x[c, iy, ix]) * float(w[o, c, ky, kx])
                out[o, oy, ox] = max(total, 0.0)
    return out


@pytest.mark.parametrize("shape", [(3, 9, 9, 4, 7, 2, 0), (4, 5, 6, 3, 3, 1, 1),
                                   (5, 4, 4, 6, 1, 1, 1), (2, 6, 6, 2, 1, 1, 0)])
def test_conv_relu_matches_reference(shape):
    channels, height, width, out_channels, kernel, stride, pad = shape
    rng = np.random.default_rng(sum(shape))
    x = rng.normal(0, 50, (channels, height, width)).astype(np.float32)
    w = rng.normal(0, 0.1, (out_channels, channels, kernel, kernel)).astype(np.float32)
    b = rng.normal(0, 1, out_channels).astype(np.float32)
    got = conv_relu(x, w, b, stride, pad)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref_conv_relu(x, w, b, stride, pad), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("size", [(7, 7), (6, 8), (3, 3), (111, 111)])
def test_float_maxpool_ceil_mode(size):
    rng = np.random.default_rng(size[0])
    x = rng.normal(0, 1, (2, *size)).astype(np.float32)
    out_h, out_w = math.ceil((size[0] - 3) / 2) + 1, math.ceil((size[1] - 3) / 2) + 1
    expected = np.array([[[max(x[c, y, xx] for y in range(2 * oy, min(2 * oy + 3, size[0]))
                               for xx in range(2 * ox, min(2 * ox + 3, size[1])))
                           for ox in range(out_w)] for oy in range(out_h)] for c in range(2)])
    np.testing.assert_array_equal(maxpool(x), expected)


def test_softmax_hand_values():
    np.testing.assert_allclose(softmax([0.0, math.log(3.0)]), [0.25, 0.75], rtol=1e-12)
    np.testing.assert_allclose(softmax([1000.0, 1000.0]), [0.5, 0.5], rtol=1e-12)


def test_run_float_shapes_on_synthetic_model():
    model = codec.load()
    out = run_float(model, preprocess(load_image("chelsea")))
    expected = {"conv1": (96, 111, 111), "pool1": (96, 55, 55), "fire2/conv1x1_1": (16, 55, 55),
                "fire2": (128, 55, 55), "fire4": (256, 55, 55), "pool3": (256, 27, 27),
                "fire8": (512, 27, 27), "pool4": (512, 13, 13), "fire9": (512, 13, 13),
                "conv_final": (1000, 15, 15), "pool_final": (1000,), "logits": (1000,)}
    for key, shape in expected.items():
        assert out[key].shape == shape, key
    # pool_final is the plain mean of conv_final over its 15 x 15 map.
    np.testing.assert_allclose(out["logits"], out["conv_final"].mean(axis=(1, 2)), rtol=1e-5)


def test_run_float_subtracts_the_mean():
    # A grey image equal to the mean is all zeros after subtraction: conv1 = ReLU(bias).
    model = codec.load()
    bgr = np.broadcast_to(np.array(BGR_MEAN, np.uint8)[:, None, None], (3, 227, 227)).copy()
    out = run_float(model, bgr)
    bias = model.layer("conv1").bias
    np.testing.assert_allclose(out["conv1"], np.broadcast_to(np.maximum(bias, 0)[:, None, None],
                                                             (96, 111, 111)), rtol=0, atol=0)


@pytest.fixture(scope="module")
def real_float():
    if not REAL.exists():
        pytest.skip(f"real model not found at {REAL}: ../shared is absent")
    model = codec.load(REAL)
    return {name: run_float(model, preprocess(load_image(name))) for name in README_TOP5}


@needs_real
@pytest.mark.parametrize("name", sorted(README_TOP5))
def test_real_float_top5_matches_readme(real_float, name):
    logits = real_float[name]["logits"]
    prob = softmax(logits)
    top5 = list(np.argsort(-prob, kind="stable")[:5])
    assert top5 == [c for c, _, _ in README_TOP5[name]]
    np.testing.assert_allclose(prob[top5], [p for _, p, _ in README_TOP5[name]], atol=1e-3)
    # pool_final is printed with 3 decimals in the README.
    np.testing.assert_allclose(logits[top5], [v for _, _, v in README_TOP5[name]], atol=1e-3)
