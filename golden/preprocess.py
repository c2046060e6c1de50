"""Image loading and the Caffe preprocessing of the compressed SqueezeNet model.

The steps follow the model README (``../shared/models/squeezenet_v1_0_deep_compression``):

1. resize the whole image to 227x227 (no crop, aspect ratio not kept) with
   ``skimage.transform.resize(img, (227, 227), order=1, mode='reflect', anti_aliasing=True,
   preserve_range=True)``;
2. round to the nearest integer and clip to uint8;
3. reverse RGB to BGR and lay the result out as CHW.

The mean (B=104, G=117, R=123) is *not* subtracted here: the fixed-point datapath takes the raw
uint8 pixels and folds the mean into conv1's bias, and the float reference subtracts it itself
(``BGR_MEAN``), so both start from the same bytes.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["INPUT_SIZE", "BGR_MEAN", "SKIMAGE_PHOTOS", "load_image", "resize_rgb", "preprocess",
           "pixel_checksum"]

#: Spatial input size of SqueezeNet v1.0.
INPUT_SIZE = 227

#: Per-channel Caffe mean in BGR order, as integers (the fixed-point path needs them exact).
BGR_MEAN = (104, 117, 123)

#: Colour photographs bundled with scikit-image 0.26.0 that need no download, by name.
#: ``motorcycle`` is the left view of ``skimage.data.stereo_motorcycle``.
SKIMAGE_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "hubble_deep_field",
                  "immunohistochemistry", "retina", "motorcycle")


# skimage.data entries that are helpers, not images (download_all would go to the internet).
_NOT_IMAGES = frozenset({"data_dir", "download_all", "file_hash",
                         "lbp_frontal_face_cascade_filename"})


def _as_rgb(image, source):
    """Return ``image`` as uint8 RGB (H, W, 3); grey is replicated, an alpha channel dropped."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"image {source!r} must be 8-bit, not {image.dtype}")
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    elif image.ndim == 3 and image.shape[2] == 4:
        # Dropping alpha (rather than compositing) keeps the colour bytes as stored.
        image = image[:, :, :3]
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image {source!r} must be grey, RGB or RGBA, not shape {image.shape}")
    return np.ascontiguousarray(image)


def load_image(name_or_path):
    """Load an image as uint8 RGB.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        A name of a ``skimage.data`` image (``chelsea``, ``coffee``, ``astronaut``, ``rocket``,
        ``motorcycle`` and the others in ``SKIMAGE_PHOTOS``, or any other ``skimage.data``
        function that returns an image without a download), or else a file path read with
        ``skimage.io.imread``.

    Returns
    -------
    numpy.ndarray
        uint8 array (H, W, 3), RGB.

    Raises
    ------
    FileNotFoundError
        If the argument is neither a known name nor an existing file.
    ValueError
        If the image is not 8-bit grey, RGB or RGBA, or the file cannot be decoded.
    """
    import skimage.data
    import skimage.io

    text = os.fspath(name_or_path)
    if not os.path.exists(text):
        if text == "motorcycle":
            return _as_rgb(skimage.data.stereo_motorcycle()[0], text)
        loader = getattr(skimage.data, text, None) if text.isidentifier() else None
        if callable(loader) and text in skimage.data.__all__ and text not in _NOT_IMAGES:
            try:
                image = loader()
            except (ModuleNotFoundError, OSError) as exc:
                # Images that scikit-image would fetch from the internet need pooch + network.
                raise FileNotFoundError(f"skimage.data.{text} is not available offline: "
                                        f"{exc}") from exc
            if isinstance(image, np.ndarray):
                return _as_rgb(image, text)
        raise FileNotFoundError(f"no such image file or skimage.data image: {text!r}")
    try:
        image = skimage.io.imread(text)
    except Exception as exc:  # imageio raises many types for undecodable files
        raise ValueError(f"cannot read image {text!r}: {exc}") from exc
    return _as_rgb(image, text)


def resize_rgb(rgb):
    """Steps 1-2 of the README: resize to 227x227, round, clip to uint8 (still RGB, HWC).

    Parameters
    ----------
    rgb : numpy.ndarray
        uint8 (H, W, 3) RGB image.

    Returns
    -------
    numpy.ndarray
        uint8 (227, 227, 3) RGB image.
    """
    from skimage.transform import resize

    rgb = _as_rgb(rgb, "input")
    resized = resize(rgb, (INPUT_SIZE, INPUT_SIZE), order=1, mode="reflect", anti_aliasing=True,
                     preserve_range=True)
    return np.clip(np.rint(resized), 0, 255).astype(np.uint8)


def preprocess(rgb):
    """Turn an RGB photograph into the network input: uint8 BGR, CHW, 227x227, mean not removed.

    ``rgb`` is what :func:`resize_rgb` takes (uint8 (H, W, 3) RGB); the result is its resized
    image as uint8 (3, 227, 227), channel 0 = blue.
    """
    resized = resize_rgb(rgb)
    return np.ascontiguousarray(resized[:, :, ::-1].transpose(2, 0, 1))


def pixel_checksum(image):
    """Sum of all bytes of a uint8 image, the README's check of the resize.

    The sum does not depend on channel order or layout, so it is the same for the output of
    ``resize_rgb`` and of ``preprocess``.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 array of any shape.

    Returns
    -------
    int
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"pixel checksum is defined on uint8 images, not {image.dtype}")
    return int(image.sum(dtype=np.int64))
