import io

import pytest
from PIL import Image as PILImage

from catalog.exceptions import InvalidImage
from catalog.imaging import check_image
from tests.images import image_bytes

LIMITS = {"max_bytes": 1_000_000, "max_pixels": 1_000_000}


def test_a_png_is_accepted_with_its_hash_and_size():
    checked = check_image(image_bytes(size=(40, 30)), **LIMITS)
    assert (checked.width, checked.height, checked.extension, len(checked.content_hash)) == (40, 30, "png", 64)


def test_type_comes_from_content_not_name():
    assert check_image(image_bytes(format="JPEG"), **LIMITS).extension == "jpg"
    assert check_image(image_bytes(format="GIF", mode="P", color=3), **LIMITS).extension == "gif"


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "the file is empty"),
        (b"%PDF-1.4 not a picture", "not an image: the content is in no known image format"),
        (b"\x00" * 1_000_001, "the file is 1.0 MB; the limit is 1.0 MB"),
    ],
)
def test_bad_content_is_refused_with_a_reason(content, message):
    with pytest.raises(InvalidImage, match=message):
        check_image(content, **LIMITS)


def test_too_many_pixels_is_refused_before_decoding():
    with pytest.raises(InvalidImage, match=r"the image is 2000×1000 = 2,000,000 pixels; the limit is 1,000,000"):
        check_image(image_bytes(size=(2000, 1000)), **LIMITS)


def test_a_decompression_bomb_is_refused():
    # A tiny PNG that claims 20000×20000 pixels: over Pillow's own bomb threshold.
    bomb = image_bytes(size=(20000, 20000), mode="1", color=0)
    assert len(bomb) < 100_000
    with pytest.raises(InvalidImage, match="decompression bomb|the limit is"):
        check_image(bomb, max_bytes=1_000_000, max_pixels=10**12)


def test_a_truncated_file_is_refused():
    whole = image_bytes(size=(200, 200), format="JPEG", color=(10, 120, 240))
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        check_image(whole[: len(whole) // 2], **LIMITS)


def test_exif_orientation_is_applied():
    buffer = io.BytesIO()
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    PILImage.new("RGB", (60, 20), (0, 128, 0)).save(buffer, format="JPEG", exif=exif)
    checked = check_image(buffer.getvalue(), **LIMITS)
    assert (checked.width, checked.height) == (20, 60)


@pytest.mark.parametrize(
    "mode, color, save, expected",
    [
        ("CMYK", (0, 255, 255, 0), {"format": "JPEG"}, (255, 0, 0)),
        ("RGBA", (0, 0, 255, 0), {"format": "PNG"}, (255, 255, 255)),
        ("LA", (0, 255), {"format": "PNG"}, (0, 0, 0)),
        ("I;16", 65535, {"format": "PNG"}, (0, 0, 0)),
        ("L", 77, {"format": "PNG"}, (77, 77, 77)),
    ],
)
def test_every_mode_becomes_rgb(mode, color, save, expected):
    checked = check_image(image_bytes(mode=mode, color=color, size=(8, 8), **save), **LIMITS)
    assert checked.rgb.mode == "RGB"
    red, green, blue = checked.rgb.getpixel((4, 4))
    assert all(abs(got - want) <= 3 for got, want in zip((red, green, blue), expected))


def test_a_transparent_palette_image_is_flattened_on_white():
    image = PILImage.new("P", (8, 8), 0)
    image.putpalette([255, 0, 0] + [0, 0, 0] * 255)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", transparency=0)
    assert check_image(buffer.getvalue(), **LIMITS).rgb.getpixel((1, 1)) == (255, 255, 255)
