import io

import numpy as np
import pytest
from PIL import Image as PILImage

from catalog.exceptions import InvalidImage
from catalog.imaging import WORKING_SIDE, check_image, decode, thumbnail_bytes, to_rgb
from tests.images import image_bytes, png_16_bit_rgb, saved
from tests.memory import MB, peak_memory

LIMITS = {"max_bytes": 1_000_000, "max_pixels": 1_000_000, "max_aspect_ratio": 20}


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
        # One byte over: the rounded sizes would read alike, so the bytes are printed too.
        (b"\x00" * 1_000_001, r"^the file is 1\.0 MiB \(1,000,001 bytes\); the limit is 1,000,000 bytes$"),
        (b"\x00" * 1_200_000, r"^the file is 1\.1 MiB; the limit is 1\.0 MiB$"),
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
        check_image(bomb, max_bytes=1_000_000, max_pixels=10**12, max_aspect_ratio=20)


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


def test_a_float_tiff_is_scaled_by_its_used_range_not_clipped_to_black():
    ramp = PILImage.fromarray(np.tile(np.linspace(0, 1, 256, dtype=np.float32), (16, 1)), "F")
    checked = check_image(saved(ramp, format="TIFF"), **LIMITS)
    assert [checked.rgb.getpixel((x, 2)) for x in (0, 128, 255)] == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]
    thumbnail = PILImage.open(io.BytesIO(thumbnail_bytes(checked.rgb, size=64)))
    assert thumbnail.convert("L").getextrema()[1] > 200


def test_nan_and_infinity_in_a_float_tiff_do_not_spoil_the_range():
    values = np.array([[np.nan, -np.inf, 2.0, 4.0, np.inf]], dtype=np.float32)
    rgb = check_image(saved(PILImage.fromarray(values, "F"), format="TIFF"), **LIMITS).rgb
    assert [rgb.getpixel((x, 0))[0] for x in range(5)] == [0, 0, 0, 255, 255]


@pytest.mark.parametrize("mode, low, high", [("I;16", 1000, 5000), ("I", -70000, 70000)])
def test_deep_grey_tiffs_are_scaled_by_their_used_range(mode, low, high):
    image = PILImage.new(mode, (2, 1))
    image.putpixel((0, 0), low)
    image.putpixel((1, 0), high)
    rgb = check_image(saved(image, format="TIFF"), **LIMITS).rgb
    assert (rgb.getpixel((0, 0)), rgb.getpixel((1, 0))) == ((0, 0, 0), (255, 255, 255))


def test_a_16_bit_rgb_png_keeps_its_colours():
    rgb = check_image(png_16_bit_rgb(4, 4, (65535, 0, 30000)), **LIMITS).rgb
    assert rgb.getpixel((2, 2)) == (255, 0, 117)


@pytest.mark.parametrize("size, ratio", [((2100, 100), "21.0"), ((100, 3000), "30.0")])
def test_an_absurd_aspect_ratio_is_refused_on_the_header(size, ratio):
    with pytest.raises(InvalidImage, match=rf"the image is {size[0]}×{size[1]}, an aspect ratio of {ratio}:1; the limit is 20:1"):
        check_image(image_bytes(size=size, mode="1", color=1), **LIMITS)


def drawing(size: tuple[int, int], mode: str) -> PILImage.Image:
    """Noise with a transparent stripe: every pixel differs, so a wrong band offset shows."""
    rng = np.random.default_rng(7)
    channels = {"RGBA": 4, "RGB": 3, "L": 1}[mode if mode != "P" else "L"]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8).squeeze()
    image = PILImage.fromarray(pixels, mode if mode != "P" else "L")
    if mode == "RGBA":
        image.putalpha(PILImage.new("L", size, 255))
        image.paste((0, 0, 0, 0), (0, 0, size[0], size[1] // 3))
    return image.convert("P") if mode == "P" else image


@pytest.mark.parametrize("mode, size", [("RGBA", (2900, 700)), ("P", (700, 3100)), ("RGB", (2047, 300))])
def test_large_images_are_reduced_band_by_band_exactly_as_a_whole(mode, size):
    image = drawing(size, mode)
    decoded = decode(saved(image, format="PNG"), max_pixels=10**8, max_aspect_ratio=20)
    factor = max(1, max(size) // WORKING_SIDE)
    expected = to_rgb(image).reduce(factor) if factor > 1 else to_rgb(image)
    assert (decoded.width, decoded.height) == size
    assert decoded.rgb.size == expected.size and WORKING_SIDE <= max(decoded.rgb.size) < 2 * WORKING_SIDE
    assert np.array_equal(np.asarray(decoded.rgb), np.asarray(expected))


def test_a_large_jpeg_is_decoded_at_a_reduced_scale():
    content = image_bytes(format="JPEG", size=(6000, 4000), color=(40, 90, 200))
    with peak_memory() as peak:
        decoded = decode(content, max_pixels=10**8, max_aspect_ratio=20)
    assert (decoded.width, decoded.height, decoded.rgb.size) == (6000, 4000, (1500, 1000))
    assert all(abs(got - want) <= 2 for got, want in zip(decoded.rgb.getpixel((700, 500)), (40, 90, 200)))
    # At full size the RGB alone would be 96 MB.
    assert peak.growth < 40 * MB, peak.growth


def test_memory_for_the_largest_allowed_image_is_bounded_by_its_decoded_size():
    width, height = 31_000, 1_550  # 48 million pixels, 20:1
    content = saved(PILImage.new("RGBA", (width, height), (10, 200, 30, 128)), format="PNG")
    with peak_memory() as peak:
        checked = check_image(content, max_bytes=10**8, max_pixels=50_000_000, max_aspect_ratio=20)
        thumbnail_bytes(checked.rgb, size=256)
    assert checked.rgb.size == (1034, 52)
    # 4 bytes a pixel while decoding; padding it to a square used to take 3.8 GB.
    assert peak.growth < 4 * width * height + 64 * MB, peak.growth
