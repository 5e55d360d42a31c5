"""The one reader of image files, for every command and data module.

An image's declared size is read from its header (PIL reads no pixel for that) and checked
against a pixel limit before anything is decoded, so a 400 KB PNG that declares 20000x20000
pixels is one line naming the file and its size instead of a process killed for want of memory.
The limit is PIL's default, ``89,478,485`` pixels (a 9459x9459 image); the environment
variable ``ZOO_MAX_IMAGE_PIXELS`` raises or lowers it, for the process and the data loader
workers it starts (the variable is read at each call, and PIL's own limit is set to it).

Pixels are decoded by OpenCV, about twice as fast as PIL for JPEG and PNG (it matters per epoch);
masks, whose palette indices OpenCV would turn into colours, are read by PIL (``read_pil``).
Every failure is a ``DataError`` naming the file: missing, a folder, not an image, too large,
damaged.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from zoo.core.problems import DataError

MAX_PIXELS_ENV = "ZOO_MAX_IMAGE_PIXELS"
#: PIL's ``Image.MAX_IMAGE_PIXELS`` as it ships: 0.25 GiB of 3-byte pixels
DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3


def max_pixels() -> int:
    """The most pixels an image may declare: ``ZOO_MAX_IMAGE_PIXELS``, else PIL's default."""
    value = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_PIXELS
    try:
        limit = int(float(value))  # "4e8" as well as "400000000"
    except ValueError:
        limit = 0
    if limit < 1:
        raise DataError(MAX_PIXELS_ENV, [f"{value!r}: expected a positive number of pixels (default "
                                         f"{DEFAULT_MAX_PIXELS})"])  # fmt: skip
    return limit


def _too_large(path: str | os.PathLike, declared: str, limit: int) -> DataError:
    return DataError(str(path), [f"declares {declared}, more than the {limit:,} pixels an image may have "
                                 f"(set {MAX_PIXELS_ENV} to read larger images)"])  # fmt: skip


def _open(path: str | os.PathLike) -> Image.Image:
    """The image at ``path``, opened by PIL (header read, no pixel decoded), its size checked."""
    p = Path(path)
    try:
        is_dir, is_file = p.is_dir(), p.is_file()
    except OSError as e:  # a name the OS refuses to look up, e.g. longer than it allows
        raise DataError(str(path), [f"not a usable file name ({e.strerror})"]) from None
    if is_dir:
        raise DataError(str(path), ["a folder, expected an image file"])
    if not is_file:
        raise DataError(str(path), ["no such image file"])
    limit = max_pixels()
    Image.MAX_IMAGE_PIXELS = limit  # PIL warns past it and refuses past twice it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below, with the size
            im = Image.open(p)
    except Image.DecompressionBombError:  # PIL does not say the width and height
        raise _too_large(path, f"more than {2 * limit:,} pixels", limit) from None
    except Exception as e:  # PIL raises several types (OSError, SyntaxError, ...) for what is no image
        raise DataError(str(path), [f"not a readable image ({type(e).__name__}: {e}); expected a PNG, JPEG, "
                                    "BMP, WebP or TIFF file"]) from None  # fmt: skip
    width, height = im.size
    if width * height > limit:
        im.close()
        raise _too_large(path, f"{width}x{height} pixels ({width * height / 1e6:.0f} megapixels)", limit)
    return im


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` from the header of the image at ``path``, checked against the limit."""
    with _open(path) as im:
        return im.size


def read_pil(path: str | os.PathLike) -> Image.Image:
    """The image at ``path`` decoded by PIL, in its own mode (``P``, ``L``, ``RGB``, ...)."""
    im = _open(path)
    try:
        im.load()  # then PIL closes the file
    except Exception as e:  # a damaged file: truncated, flipped bytes, ...
        im.close()
        raise DataError(str(path), [f"damaged image data ({type(e).__name__}: {e})"]) from None
    return im


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """The image at ``path`` as an ``(H, W, 3)`` uint8 RGB array (grey images repeated to three
    channels, an alpha channel dropped)."""
    image_size(path)
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise DataError(str(path), ["damaged image data (OpenCV cannot decode it); expected a PNG, JPEG, "
                                    "BMP, WebP or TIFF file"])  # fmt: skip
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def decode_problem(path: str | os.PathLike) -> str | None:
    """Why the image at ``path`` cannot be used (``name (reason)``), or None when it decodes
    completely; JPEGs decode at a reduced scale, which still reads every byte."""
    try:
        with _open(path) as im:
            im.draft("RGB", (64, 64))
            im.load()
    except DataError as e:
        return f"{Path(path).name} ({e.problems[0]})"
    except Exception as e:  # damaged pixel data: PIL raises several types
        return f"{Path(path).name} ({type(e).__name__}: {e})"
    return None
