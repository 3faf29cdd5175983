"""Digit images as people make them (drawn, photographed, scanned) -> MNIST-style 28x28 arrays.

MNIST's recipe: white ink on black, the digit scaled to fit a 20x20 box keeping its aspect ratio,
then placed in 28x28 so that its center of mass is at the center (pixel 14, 14).
"""

import io
import re
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mnist_pipeline import settings
from mnist_pipeline.errors import PipelineError

ACCEPTED_FORMATS = ("PNG", "JPEG", "BMP", "GIF")
JPEG_SCALES = (2, 4, 8)  # the reductions a JPEG decoder does for free, while decoding
OTHER_FORMATS = [  # formats people send that are not read, recognized to say so
    (re.compile(rb"II\*\x00|MM\x00\*"), "TIFF"),
    (re.compile(rb"RIFF....WEBP", re.DOTALL), "WebP"),
    (re.compile(rb"....ftyp(heic|heix|mif1|msf1|avif)", re.DOTALL), "HEIC or AVIF"),
    (re.compile(rb"%PDF"), "PDF"),
    (re.compile(rb"\x00\x00\x01\x00"), "ICO"),
    (re.compile(rb"8BPS"), "Photoshop"),
]
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


def decode_ink(source: Path | BinaryIO, max_pixels: int | None = None) -> np.ndarray:
    """Decode a PNG, JPEG, BMP or GIF (its first frame) at most `max_pixels` large (default: the setting
    MNIST_MAX_IMAGE_PIXELS): a larger JPEG is decoded reduced, any other is refused before decoding."""
    max_pixels = max_pixels or settings.max_image_pixels()
    try:
        with Image.open(source, formats=ACCEPTED_FORMATS) as image:
            fit_under(image, max_pixels)
            image.load()
            return ink_of(ImageOps.exif_transpose(image))
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(not_accepted(source)) from None
    except Image.DecompressionBombError:
        raise ImageError(f"too large for a digit image (at most {max_pixels:,} pixels); crop or downscale it") from None
    except Exception as error:  # a hostile or damaged file can make a decoder raise anything
        raise ImageError(f"truncated or corrupt image ({first_line(error)})") from None


def first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error).strip() else repr(error)


def fit_under(image: Image.Image, max_pixels: int) -> None:
    """Have a JPEG over `max_pixels` decode at 1/2, 1/4 or 1/8 scale to fit; refuse any other large image."""
    width, height = image.size
    if width * height <= max_pixels:
        return
    if image.format == "JPEG":
        scale = next((k for k in JPEG_SCALES if -(-width // k) * -(-height // k) <= max_pixels), None)
        if scale and width >= scale and height >= scale:
            image.draft("L", (width // scale, height // scale))
            if image.width * image.height <= max_pixels:
                return
    raise ImageError(
        f"{width}x{height} pixels is too large for a digit image (at most {max_pixels:,} pixels, "
        f"{settings.MAX_IMAGE_PIXELS_VARIABLE}); crop or downscale it"
    )


def not_accepted(source: Path | BinaryIO) -> str:
    """Why an image could not be opened: the format it is in, if it is a known one that is not read."""
    if isinstance(source, Path):
        with open(source, "rb") as file:
            head = file.read(16)
    else:
        source.seek(0)
        head = source.read(16)
    for signature, name in OTHER_FORMATS:
        if signature.match(head):
            return f"a {name} image: only PNG, JPEG, BMP and GIF are read; save it as PNG or JPEG"
    return "not an image file (expected PNG, JPEG, BMP or GIF)"


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
        if not np.isfinite(values).all():
            raise ImageError("pixel values that are not numbers (NaN or infinite); save it as an 8-bit PNG or JPEG")
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
