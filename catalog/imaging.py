"""Decode and check image files: type by content, limits, bombs, truncation, orientation, modes.

Memory: an image is refused on its header (pixels, aspect ratio) before any pixel is
decoded; the decoded image (at most 4 bytes × max_pixels) is then converted to RGB band by
band and reduced by a whole factor on the way, so no full-size copy is ever made and what
the thumbnail and the model see is at most WORKING_SIDE × 2 on its longest side.
"""
import hashlib
import io
import struct
import warnings
from dataclasses import dataclass
from typing import Iterator

import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from .exceptions import InvalidImage

ACCEPTED_FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif"}
# Images of up to 2 × WORKING_SIDE - 1 pixels on their longest side are kept at full size,
# larger ones are reduced to between WORKING_SIDE and twice that: plenty for a 256-pixel
# thumbnail and a 224-pixel model input, and at most 16 MB of RGB.
WORKING_SIDE = 1024
# Pixels converted at a time: each band's temporary copies take a few MB.
BAND_PIXELS = 1024 * 1024
HIGH_DEPTH_MODES = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")
# Pillow's plugins raise any of these on malformed data.
CORRUPT = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError, struct.error, ZeroDivisionError)
BOMB = (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning)
ORIENTATION = 0x0112
TRANSPOSE_FOR_ORIENTATION = {
    2: PILImage.Transpose.FLIP_LEFT_RIGHT,
    3: PILImage.Transpose.ROTATE_180,
    4: PILImage.Transpose.FLIP_TOP_BOTTOM,
    5: PILImage.Transpose.TRANSPOSE,
    6: PILImage.Transpose.ROTATE_270,
    7: PILImage.Transpose.TRANSVERSE,
    8: PILImage.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class Decoded:
    rgb: PILImage.Image  # upright, 8-bit RGB, reduced when large (see WORKING_SIDE)
    format: str
    width: int  # of the upright image at full size
    height: int


@dataclass(frozen=True)
class CheckedImage:
    content: bytes
    content_hash: str
    extension: str
    rgb: PILImage.Image
    width: int
    height: int


def megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


def size_over_limit(size: int, limit: int) -> str:
    """Sizes that differ when printed: in bytes too where rounding would make them equal."""
    if megabytes(size) != megabytes(limit):
        return f"the file is {megabytes(size)}; the limit is {megabytes(limit)}"
    return f"the file is {megabytes(size)} ({size:,} bytes); the limit is {limit:,} bytes"


def used_range(bands: Iterator[PILImage.Image]) -> tuple[float, float]:
    """Lowest and highest finite value over all bands of a 16/32-bit or float image."""
    low, high = np.inf, -np.inf
    for band in bands:
        values = np.asarray(band, dtype=np.float32)
        finite = values[np.isfinite(values)]
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    return (low, high) if low <= high else (0.0, 0.0)


def scaled_to_8_bits(image: PILImage.Image, value_range: tuple[float, float]) -> PILImage.Image:
    """16/32-bit or float -> L, the used range stretched to 0–255 (a float TIFF in 0–1 is not black)."""
    low, high = value_range
    values = np.nan_to_num(np.asarray(image, dtype=np.float32), nan=low, posinf=high, neginf=low)
    scale = 255.0 / (high - low) if high > low else 0.0
    return PILImage.fromarray(np.clip((values - low) * scale + 0.5, 0, 255).astype(np.uint8), "L")


def to_rgb(image: PILImage.Image, *, value_range: tuple[float, float] | None = None) -> PILImage.Image:
    """Any Pillow mode -> 8-bit RGB; transparency is flattened on white, as drawings expect.

    High-depth modes are scaled by `value_range`, the whole image's, when `image` is a band of it.
    """
    if image.mode in HIGH_DEPTH_MODES:
        image = scaled_to_8_bits(image, value_range or used_range(iter([image])))
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = PILImage.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def bands(image: PILImage.Image, rows: int) -> Iterator[PILImage.Image]:
    for top in range(0, image.height, rows):
        yield image.crop((0, top, image.width, min(top + rows, image.height)))


def reduced_rgb(image: PILImage.Image, *, factor: int) -> PILImage.Image:
    """to_rgb, then reduce by `factor`, one band of rows at a time so no full-size copy is made.

    Every step is per pixel or per factor × factor box, so the result equals converting
    and reducing the whole image at once.
    """
    rows = factor * max(1, BAND_PIXELS // (image.width * factor))
    value_range = used_range(bands(image, rows)) if image.mode in HIGH_DEPTH_MODES else None
    reduced = PILImage.new("RGB", (-(-image.width // factor), -(-image.height // factor)))
    for number, band in enumerate(bands(image, rows)):
        rgb = to_rgb(band, value_range=value_range)
        reduced.paste(rgb.reduce(factor) if factor > 1 else rgb, (0, number * rows // factor))
    return reduced


def opened(content: bytes, *, max_pixels: int, max_aspect_ratio: float) -> PILImage.Image:
    """The image with only its header read, or InvalidImage when its header already says no."""
    try:
        image = PILImage.open(io.BytesIO(content))
    except UnidentifiedImageError:
        raise InvalidImage("not an image: the content is in no known image format") from None
    except BOMB:
        raise InvalidImage("refused as a decompression bomb: too many pixels for its size") from None
    except CORRUPT as error:
        raise InvalidImage(f"the file is truncated or corrupt ({error})") from None
    if image.format not in ACCEPTED_FORMATS:
        raise InvalidImage(f"{image.format} images are not accepted; use one of {', '.join(ACCEPTED_FORMATS)}")
    width, height = image.size
    pixels = width * height
    if pixels == 0:
        raise InvalidImage(f"the image is {width}×{height}: it has no pixels")
    if pixels > max_pixels:
        raise InvalidImage(f"the image is {width}×{height} = {pixels:,} pixels; the limit is {max_pixels:,}")
    if max(width, height) > max_aspect_ratio * min(width, height):
        raise InvalidImage(
            f"the image is {width}×{height}, an aspect ratio of {max(width, height) / min(width, height):.1f}:1; "
            f"the limit is {max_aspect_ratio:g}:1"
        )
    return image


def decode(content: bytes, *, max_pixels: int, max_aspect_ratio: float) -> Decoded:
    """Bytes -> an upright RGB image no larger than it needs to be, or InvalidImage saying what is wrong."""
    if not content:
        raise InvalidImage("the file is empty")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        image = opened(content, max_pixels=max_pixels, max_aspect_ratio=max_aspect_ratio)
        width, height = image.size
        try:
            orientation = image.getexif().get(ORIENTATION)
            factor = max(width, height) // WORKING_SIDE
            if factor > 1 and image.format == "JPEG":
                # The JPEG decoder itself scales by 1/2, 1/4 or 1/8: it never holds the full size.
                image.draft(None, (width // factor, height // factor))
                factor = max(image.size) // WORKING_SIDE
            image.load()
        except BOMB:
            raise InvalidImage("refused as a decompression bomb: too many pixels for its size") from None
        except CORRUPT as error:
            raise InvalidImage(f"the file is truncated or corrupt ({error})") from None
    try:
        rgb = reduced_rgb(image, factor=max(factor, 1))
    except ValueError as error:
        raise InvalidImage(f"{image.mode} images cannot be converted to RGB ({error})") from None
    transpose = TRANSPOSE_FOR_ORIENTATION.get(orientation) if isinstance(orientation, int) else None
    if transpose is None:
        return Decoded(rgb=rgb, format=image.format, width=width, height=height)
    sideways = orientation in (5, 6, 7, 8)
    return Decoded(
        rgb=rgb.transpose(transpose),
        format=image.format,
        width=height if sideways else width,
        height=width if sideways else height,
    )


def check_image(content: bytes, *, max_bytes: int, max_pixels: int, max_aspect_ratio: float) -> CheckedImage:
    if len(content) > max_bytes:
        raise InvalidImage(size_over_limit(len(content), max_bytes))
    decoded = decode(content, max_pixels=max_pixels, max_aspect_ratio=max_aspect_ratio)
    return CheckedImage(
        content=content,
        content_hash=hashlib.sha256(content).hexdigest(),
        extension=ACCEPTED_FORMATS[decoded.format],
        rgb=decoded.rgb,
        width=decoded.width,
        height=decoded.height,
    )


def thumbnail_bytes(image: PILImage.Image, *, size: int) -> bytes:
    thumbnail = image.copy()
    thumbnail.thumbnail((size, size), PILImage.Resampling.LANCZOS)
    buffer = io.BytesIO()
    thumbnail.save(buffer, format="WEBP", quality=82, method=4)
    return buffer.getvalue()
