"""Decode and check image files: type by content, limits, bombs, truncation, orientation, modes."""
import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image as PILImage
from PIL import ImageOps, UnidentifiedImageError

from .exceptions import InvalidImage

ACCEPTED_FORMATS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif"}


@dataclass(frozen=True)
class CheckedImage:
    content: bytes
    content_hash: str
    extension: str
    rgb: PILImage.Image

    @property
    def width(self) -> int:
        return self.rgb.width

    @property
    def height(self) -> int:
        return self.rgb.height


def megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


def to_rgb(image: PILImage.Image) -> PILImage.Image:
    """Any Pillow mode -> 8-bit RGB; transparency is flattened on white, as drawings expect."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale the used range down to 8 bits instead of clipping it.
        low, high = image.getextrema()
        scale = 255.0 / max(high - low, 1)
        image = image.point(lambda value: (value - low) * scale).convert("L")
    elif image.mode == "F":
        image = image.convert("L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = PILImage.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def decode(content: bytes, *, max_pixels: int) -> tuple[PILImage.Image, str]:
    """Bytes -> (upright RGB image, format), or InvalidImage saying what is wrong."""
    if not content:
        raise InvalidImage("the file is empty")
    with warnings.catch_warnings():
        warnings.simplefilter("error", PILImage.DecompressionBombWarning)
        try:
            image = PILImage.open(io.BytesIO(content))
        except UnidentifiedImageError:
            raise InvalidImage("not an image: the content is in no known image format") from None
        except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
            raise InvalidImage("refused as a decompression bomb: too many pixels for its size") from None
        except (OSError, SyntaxError, ValueError) as error:
            raise InvalidImage(f"the file is truncated or corrupt ({error})") from None
        if image.format not in ACCEPTED_FORMATS:
            raise InvalidImage(f"{image.format} images are not accepted; use one of {', '.join(ACCEPTED_FORMATS)}")
        image_format = image.format
        pixels = image.width * image.height
        if pixels > max_pixels:
            raise InvalidImage(
                f"the image is {image.width}×{image.height} = {pixels:,} pixels; the limit is {max_pixels:,}"
            )
        try:
            image.load()
            image = ImageOps.exif_transpose(image)
        except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
            raise InvalidImage("refused as a decompression bomb: too many pixels for its size") from None
        except (OSError, SyntaxError, ValueError) as error:
            raise InvalidImage(f"the file is truncated or corrupt ({error})") from None
    return to_rgb(image), image_format


def check_image(content: bytes, *, max_bytes: int, max_pixels: int) -> CheckedImage:
    if len(content) > max_bytes:
        raise InvalidImage(f"the file is {megabytes(len(content))}; the limit is {megabytes(max_bytes)}")
    rgb, image_format = decode(content, max_pixels=max_pixels)
    return CheckedImage(
        content=content,
        content_hash=hashlib.sha256(content).hexdigest(),
        extension=ACCEPTED_FORMATS[image_format],
        rgb=rgb,
    )


def thumbnail_bytes(image: PILImage.Image, *, size: int) -> bytes:
    thumbnail = image.copy()
    thumbnail.thumbnail((size, size), PILImage.Resampling.LANCZOS)
    buffer = io.BytesIO()
    thumbnail.save(buffer, format="WEBP", quality=82, method=4)
    return buffer.getvalue()
