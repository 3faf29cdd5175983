"""Digit images as people make them (drawn, photographed, scanned) -> MNIST-style 28x28 arrays.

MNIST's recipe: white ink on black, the digit scaled to fit a 20x20 box keeping its aspect ratio,
then placed in 28x28 so that its center of mass is at the center (pixel 14, 14).
"""

import io
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnist_pipeline.errors import PipelineError

MAX_PIXELS = 40_000_000  # a 12-megapixel phone photo fits; a decompression bomb does not
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
DIGIT_BOX = 20
SIDE = 28
NOISE_FLOOR = 0.2  # ink fainter than this fraction of the strongest stroke is paper texture or noise
OUTLIER_MASS = 0.002  # a speck or noisy pixel outside the digit holds less than this share of the ink


class ImageError(PipelineError):
    """An input file that cannot be turned into a digit."""


def find_images(paths: list[str]) -> list[Path]:
    """Files as given; folders expanded to the image files they hold, sorted (a folder without any
    stays, so that it is reported)."""
    found: list[Path] = []
    for path in map(Path, paths):
        inside = (
            sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if path.is_dir()
            else []
        )
        found.extend(inside or [path])
    return found


def read_ink(path: Path) -> np.ndarray:
    """The image file as ink intensity in [0, 1] (1 is the strongest stroke), or ImageError."""
    if not path.exists():
        raise ImageError("no such file")
    if path.is_dir():
        raise ImageError("a folder without PNG, JPEG, BMP or GIF files")
    if path.stat().st_size == 0:
        raise ImageError("empty file")
    return decode_ink(path)


def read_ink_bytes(data: bytes) -> np.ndarray:
    """Encoded image bytes (an upload, a request body) as ink in [0, 1], or ImageError."""
    if not data:
        raise ImageError("empty image: no bytes")
    return decode_ink(io.BytesIO(data))


def decode_ink(source: Path | BinaryIO) -> np.ndarray:
    """Decode a file or stream, refusing images over MAX_PIXELS before decoding them."""
    try:
        with Image.open(source) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ImageError(
                    f"{image.width}x{image.height} pixels is too large for a digit image "
                    f"(at most {MAX_PIXELS:,} pixels); crop or downscale it"
                )
            image.load()
            return ink_of(ImageOps.exif_transpose(image))
    except UnidentifiedImageError:
        raise ImageError("not an image file (expected PNG, JPEG, BMP or GIF)") from None
    except Image.DecompressionBombError:
        raise ImageError(f"too large for a digit image (at most {MAX_PIXELS:,} pixels)") from None
    except (OSError, SyntaxError) as error:
        raise ImageError(f"truncated or corrupt image ({error})") from None


def ink_of(image: Image.Image) -> np.ndarray:
    """Ink in [0, 1] for any mode: transparency marks the ink where it varies; otherwise the
    background is the border's median, and dark ink on light paper is inverted."""
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA"):
        alpha = np.asarray(image.getchannel("A"), np.float32) / 255
        if alpha.min() < 0.5 < alpha.max():
            return alpha
        image = image.convert("RGB")
    gray = grayscale(image)
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = float(np.median(border))
    if background > 0.5:
        gray, background = 1 - gray, 1 - background
    return np.clip((gray - background) / max(1 - background, 1e-6), 0, 1)


def grayscale(image: Image.Image) -> np.ndarray:
    """Luminance in [0, 1]; 16- and 32-bit images keep their full range."""
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, np.float64)
        full_scale = 255 if values.max() <= 255 else 65535 if values.max() <= 65535 else values.max()
        return (values / full_scale).astype(np.float32)
    return np.asarray(image.convert("L"), np.float32) / 255


def mass_bounds(profile: np.ndarray) -> tuple[int, int]:
    """First and last index of a row or column profile, leaving out OUTLIER_MASS of ink at each end."""
    cumulative = np.cumsum(profile) / profile.sum()
    return int(np.searchsorted(cumulative, OUTLIER_MASS)), int(np.searchsorted(cumulative, 1 - OUTLIER_MASS))


def to_mnist(ink: np.ndarray) -> np.ndarray:
    """Crop to the digit, fit it in 20x20 keeping its aspect ratio, center by mass in 28x28: uint8."""
    strongest = float(ink.max())
    if strongest < 0.1:
        raise ImageError("blank image: no digit found")
    ink = np.where(ink >= NOISE_FLOOR * strongest, ink / strongest, 0)
    first_row, last_row = mass_bounds(ink.sum(axis=1))
    first_column, last_column = mass_bounds(ink.sum(axis=0))
    crop = ink[first_row : last_row + 1, first_column : last_column + 1]
    scale = DIGIT_BOX / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    digit = np.asarray(
        Image.fromarray(np.uint8(np.round(crop * 255))).resize(size, Image.Resampling.LANCZOS), np.float64
    )

    y, x = np.indices(digit.shape)
    mass = digit.sum()
    top = round(SIDE / 2 - (y * digit).sum() / mass)
    left = round(SIDE / 2 - (x * digit).sum() / mass)
    canvas = np.zeros((SIDE, SIDE), np.uint8)
    rows_from, rows_to = max(0, -top), min(digit.shape[0], SIDE - top)
    columns_from, columns_to = max(0, -left), min(digit.shape[1], SIDE - left)
    canvas[top + rows_from : top + rows_to, left + columns_from : left + columns_to] = np.clip(
        digit[rows_from:rows_to, columns_from:columns_to], 0, 255
    )
    return canvas


def load_digit(path: Path) -> np.ndarray:
    """An image file as an MNIST-style uint8 28x28 digit, or ImageError saying what is wrong."""
    return to_mnist(read_ink(path))


def digit_from_bytes(data: bytes) -> np.ndarray:
    """Encoded image bytes as an MNIST-style uint8 28x28 digit, prepared exactly as `load_digit` does."""
    return to_mnist(read_ink_bytes(data))
