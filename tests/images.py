"""Small real image files made on the fly, so the suite needs no data outside the repo."""
import io

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
