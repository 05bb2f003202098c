"""Small real image files made on the fly, so the suite needs no data outside the repo."""
import io
import struct
import zlib

from PIL import Image as PILImage

DEMO = "catalog/fixtures/openclipart-demo"


def image_bytes(color=(200, 30, 30), size=(32, 24), format="PNG", mode="RGB", **save) -> bytes:
    buffer = io.BytesIO()
    PILImage.new(mode, size, color).save(buffer, format=format, **save)
    return buffer.getvalue()


def distinct_pngs(count: int, *, size=(24, 24)) -> list[bytes]:
    """`count` PNGs whose bytes all differ (so none is a duplicate of another)."""
    return [image_bytes(color=(index % 256, index // 256 % 256, 99), size=size) for index in range(count)]


def banner_png(size=(65_000, 700)) -> bytes:
    """A long, thin PNG of about 130 KB; padded to a square at full size it took 17.7 GB."""
    return image_bytes(color=(250, 250, 250), size=size)


def saved(image: PILImage.Image, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, **save)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_16_bit_rgb(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """Pillow cannot write a 48-bit PNG, so it is built by hand."""
    row = b"\x00" + struct.pack(">HHH", *rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(row * height)) + png_chunk(b"IEND", b"")
