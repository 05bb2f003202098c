"""A generated corpus of broken, disguised, special and extreme files and manifest lines,
imported in one run: every row is either imported, a duplicate, or reported with its reason."""
import json
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image as PILImage

from catalog.models import Image
from tests.images import banner_png, image_bytes, png_16_bit_rgb, png_chunk, saved
from tests.memory import MB, peak_memory

IMPORTED = "imported"
DUPLICATE = "duplicate"


def png_claiming(width: int, height: int) -> bytes:
    """A header for a huge image followed by almost no data."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + png_chunk(b"IEND", b"")


def animated_gif() -> bytes:
    frames = [PILImage.new("P", (20, 20), index) for index in range(3)]
    return saved(frames[0], format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def exif_rotated_jpeg() -> bytes:
    exif = PILImage.Exif()
    exif[0x0112] = 6
    return saved(PILImage.new("RGB", (60, 20), (0, 128, 0)), format="JPEG", exif=exif)


def float_tiff() -> bytes:
    return saved(PILImage.fromarray(np.linspace(0, 1, 64 * 16, dtype=np.float32).reshape(16, 64), "F"), format="TIFF")


def nan_tiff() -> bytes:
    values = np.linspace(-1, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    values[0, :4] = [np.nan, np.inf, -np.inf, np.nan]
    return saved(PILImage.fromarray(values, "F"), format="TIFF")


def transparent_palette() -> bytes:
    image = PILImage.new("P", (8, 8), 0)
    image.putpalette([255, 0, 0] + [0, 0, 0] * 255)
    return saved(image, format="PNG", transparency=0)


@dataclass
class Case:
    key: str
    expect: str  # IMPORTED, DUPLICATE, or a substring of the reason
    content: bytes | None = None  # written as <key>.png unless `file` says otherwise
    record: dict | None = None  # the manifest line; default {"file": <file>, "title": <key>}
    raw: bytes | None = None  # a manifest line that is not a JSON object
    file: str | None = None
    setup: Callable[[Path], None] | None = None

    def line(self) -> bytes:
        if self.raw is not None:
            return self.raw
        record = self.record if self.record is not None else {"file": self.file or f"{self.key}.png", "title": self.key}
        return json.dumps(record).encode()


def cases() -> list[Case]:
    same = image_bytes(color=(1, 2, 3), size=(30, 30))
    bigger_than_limit = b"\x89PNG" + b"\x00" * (2 * MB + 10)
    good_png = image_bytes(color=(9, 9, 9), size=(30, 20))
    whole_jpeg = image_bytes(format="JPEG", size=(200, 200), color=(10, 120, 240))
    whole_gif = image_bytes(format="GIF", mode="P", color=3, size=(64, 64))
    return [
        # Ordinary and unusual but valid pictures; the first line starts with a byte order mark.
        Case("bom_line", IMPORTED, image_bytes(color=(8, 8, 8))),
        Case("plain_png", IMPORTED, good_png),
        Case("plain_jpeg", IMPORTED, image_bytes(format="JPEG", color=(200, 10, 10))),
        Case("png_named_jpg", IMPORTED, image_bytes(color=(7, 70, 170)), file="png_named_jpg.jpg"),
        Case("webp", IMPORTED, image_bytes(format="WEBP", color=(3, 33, 133))),
        Case("bmp", IMPORTED, image_bytes(format="BMP", color=(4, 44, 144))),
        Case("one_pixel", IMPORTED, image_bytes(size=(1, 1), color=(5, 5, 5))),
        Case("aspect_exactly_32", IMPORTED, image_bytes(size=(320, 10), color=(6, 6, 6))),
        Case("one_bit", IMPORTED, image_bytes(mode="1", size=(64, 64), color=1)),
        Case("palette_transparent", IMPORTED, transparent_palette()),
        Case("grey_alpha", IMPORTED, image_bytes(mode="LA", color=(0, 255), size=(8, 8))),
        Case("cmyk_jpeg", IMPORTED, image_bytes(mode="CMYK", format="JPEG", color=(0, 255, 255, 0))),
        Case("grey_16_bit_png", IMPORTED, image_bytes(mode="I;16", color=4000, size=(9, 9))),
        Case("rgb_16_bit_png", IMPORTED, png_16_bit_rgb(10, 10, (65535, 0, 30000))),
        Case("float_tiff", IMPORTED, float_tiff()),
        Case("float_tiff_nan_inf", IMPORTED, nan_tiff()),
        Case("i16_tiff", IMPORTED, image_bytes(mode="I;16", format="TIFF", color=300, size=(7, 7))),
        Case("animated_gif", IMPORTED, animated_gif()),
        Case("exif_rotated_jpeg", IMPORTED, exif_rotated_jpeg()),
        Case("large_jpeg", IMPORTED, image_bytes(format="JPEG", size=(3000, 2000), color=(90, 90, 200))),
        Case("gif_with_html_after", IMPORTED, whole_gif + b"<html><script>alert(1)</script></html>"),
        Case("symlink_inside", IMPORTED, setup=lambda folder: (
            (folder / "target_inside.bin").write_bytes(image_bytes(color=(11, 11, 11))),
            os.symlink("target_inside.bin", folder / "symlink_inside.png"),
        )),
        Case("huge_title", IMPORTED, image_bytes(color=(12, 12, 12)), record={"file": "huge_title.png", "title": "huge_title" + "x" * 200_000}),
        # Broken and disguised files.
        Case("zero_bytes", "the file is empty", b""),
        Case("truncated_png", "truncated or corrupt", good_png[: len(good_png) - 30]),
        Case("truncated_jpeg", "truncated or corrupt", whole_jpeg[: len(whole_jpeg) // 2]),
        Case("truncated_gif", "truncated or corrupt", whole_gif[: len(whole_gif) // 2]),
        Case("html_as_png", "no known image format", b"<!doctype html><html><body>hi</body></html>"),
        Case("svg_as_png", "no known image format", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'),
        Case("pdf_as_png", "no known image format", b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF"),
        Case("text_as_png", "no known image format", b"just some text\n"),
        Case("png_magic_then_html", "no known image format", b"\x89PNG\r\n\x1a\n<html></html>"),
        Case("ico_accepted_by_pillow_not_us", "ICO images are not accepted", saved(PILImage.new("RGB", (16, 16)), format="ICO")),
        Case("zero_width_png", "no known image format", png_claiming(0, 10)),
        # Extreme sizes.
        Case("decompression_bomb", "decompression bomb", image_bytes(size=(20000, 20000), mode="1", color=0)),
        Case("huge_header_tiny_file", "10000×6000 = 60,000,000 pixels; the limit is 50,000,000", png_claiming(10000, 6000)),
        Case("wide_65000x700", "an aspect ratio of 92.9:1; the limit is 32:1", image_bytes(size=(65000, 700), mode="1", color=1)),
        Case("one_bit_20000x100", "an aspect ratio of 200.0:1", image_bytes(size=(20000, 100), mode="1", color=0)),
        Case("tall_50x2000", "an aspect ratio of 40.0:1", image_bytes(size=(50, 2000), color=(1, 1, 1))),
        Case("over_byte_limit", "the file is 2.0 MiB; the limit is 1.0 MiB", bigger_than_limit),
        # Special files and paths.
        Case("fifo", "not a regular file: it is a FIFO", setup=lambda folder: os.mkfifo(folder / "fifo.png")),
        Case("folder", "not a regular file: it is a folder", setup=lambda folder: (folder / "folder.png").mkdir()),
        Case("the_folder_itself", "not a regular file: it is a folder", file="."),
        Case("symlink_outside", "points outside", setup=lambda folder: os.symlink(folder.parent / "outside.png", folder / "symlink_outside.png")),
        Case("symlink_dev_zero", "points outside", setup=lambda folder: os.symlink("/dev/zero", folder / "symlink_dev_zero.png")),
        Case("symlink_loop", "cannot be resolved", setup=lambda folder: os.symlink("symlink_loop.png", folder / "symlink_loop.png")),
        Case("missing", "cannot read: No such file or directory"),
        Case("nul_in_path", "'file' contains a NUL character", file="a\x00b.png"),
        Case("surrogate_in_path", "'file' is not valid Unicode", file="a\ud800.png"),
        Case("traversal", "points outside", file="../outside.png"),
        Case("absolute", "points outside", file="/etc/passwd"),
        # Bad manifest lines.
        Case("not_utf8", "not UTF-8 text (byte 0xff at column 25)", raw=b'{"file": "x.png", "t": "\xff\xfe"}'),
        Case("not_json", "not JSON (Expecting property name", raw=b"{file: nope"),
        Case("list_line", "expected an object, found list", raw=b'["a.png", "title"]'),
        Case("null_line", "expected an object, found NoneType", raw=b"null"),
        Case("no_file_key", "no 'file'", record={"title": "nothing"}),
        Case("empty_file_value", "no 'file'", record={"file": "", "title": "nothing"}),
        Case("file_not_text", "'file' must be text", record={"file": 123}),
        Case("tags_not_a_list", "tags must be a list", image_bytes(color=(13, 13, 13)), record={"file": "tags_not_a_list.png", "tags": {"a": 1}}),
        Case("tags_of_objects", "tags must be a list", image_bytes(color=(14, 14, 14)), record={"file": "tags_of_objects.png", "tags": [{"a": 1}]}),
        Case("title_not_text", "title must be text", image_bytes(color=(15, 15, 15)), record={"file": "title_not_text.png", "title": ["a"]}),
        Case("nul_in_title", "title contains a NUL character", image_bytes(color=(16, 16, 16)), record={"file": "nul_in_title.png", "title": "a\x00b"}),
        Case("nul_in_tag", "a tag contains a NUL character", image_bytes(color=(17, 17, 17)), record={"file": "nul_in_tag.png", "tags": ["ok", "b\x00"]}),
        Case("surrogate_in_title", "title is not valid Unicode", image_bytes(color=(18, 18, 18)), record={"file": "surrogate_in_title.png", "title": "\ud800"}),
        Case("surrogate_in_description", "description is not valid Unicode", image_bytes(color=(19, 19, 19)), record={"file": "surrogate_in_description.png", "description": "x\udfff"}),
        Case("line_over_1_mb", "the line is longer than 1 MiB", raw=json.dumps({"file": "plain_png.png", "title": "y" * (1024 * 1024)}).encode()),
        Case("nested_too_deep", "not JSON (RecursionError", raw=b"[" * 200_000 + b"]" * 200_000),
        Case("integer_of_5000_digits", "not JSON (ValueError", raw=b'{"file": "a.png", "n": ' + b"9" * 5000 + b"}"),
        # Duplicates.
        Case("same_content_a", IMPORTED, same),
        Case("same_content_b", DUPLICATE, same),
        Case("duplicate_line", DUPLICATE, raw=json.dumps({"file": "plain_png.png", "title": "duplicate_line"}).encode()),
    ]


def write_corpus(folder: Path, corpus: list[Case]) -> None:
    folder.mkdir()
    (folder.parent / "outside.png").write_bytes(image_bytes(color=(250, 0, 250)))
    lines = []
    for case in corpus:
        if case.content is not None:
            (folder / (case.file or f"{case.key}.png")).write_bytes(case.content)
        if case.setup is not None:
            case.setup(folder)
        lines.append(case.line())
    lines[0] = b"\xef\xbb\xbf" + lines[0]  # as some editors write UTF-8
    (folder / "data.jsonl").write_bytes(b"\n".join(lines[:3] + [b"", b"   "] + lines[3:]) + b"\n")


def line_numbers(corpus: list[Case]) -> dict[int, Case]:
    """Line numbers as written: two blank lines follow the third."""
    return {index + 1 + (2 if index >= 3 else 0): case for index, case in enumerate(corpus)}


@pytest.mark.django_db
def test_the_whole_hostile_corpus_imports_what_it_can_and_reports_the_rest(tmp_path, capsys, settings):
    settings.GLIMPSE_MAX_UPLOAD_BYTES = 1 * MB
    corpus = cases()
    assert len(corpus) >= 40
    folder = tmp_path / "corpus"
    write_corpus(folder, corpus)
    by_line = line_numbers(corpus)

    with peak_memory() as peak, pytest.raises(CommandError) as failure:
        call_command("import_images", str(folder), "--manifest", "data.jsonl", verbosity=0)
    out, err = capsys.readouterr()

    assert failure.value.returncode == 1
    reported = {}
    for line in err.splitlines():
        match = re.match(r"skipped (?:line (\d+)|.* \(line (\d+)\)): (.*)", line)
        assert match, line
        reported[int(match.group(1) or match.group(2))] = match.group(3)
    expected_reasons = {line: case for line, case in by_line.items() if case.expect not in (IMPORTED, DUPLICATE)}
    assert sorted(reported) == sorted(expected_reasons)
    for line, case in expected_reasons.items():
        assert case.expect in reported[line], (case.key, reported[line])

    imported = [case.key for case in corpus if case.expect == IMPORTED]
    duplicates = [case.key for case in corpus if case.expect == DUPLICATE]
    assert out.strip() == (
        f"{len(imported)} imported, {len(duplicates)} already in the catalog, "
        f"{len(expected_reasons)} skipped, of {len(corpus)} rows"
    )
    titles = {title.removesuffix("x" * 290): title for title in Image.objects.values_list("title", flat=True)}
    assert sorted(titles) == sorted(imported)
    assert titles["huge_title"] == "huge_title" + "x" * 290
    assert Image.objects.filter(embedding_status=Image.EmbeddingStatus.PENDING).count() == len(imported)
    rotated = Image.objects.get(title="exif_rotated_jpeg")
    assert (rotated.width, rotated.height) == (20, 60)
    assert Image.objects.get(title="large_jpeg").width == 3000
    # Decoding is bounded: the 20000×20000 and 65000×700 images are refused on their headers.
    assert peak.growth < 150 * MB, peak.growth


@pytest.mark.django_db
def test_a_rerun_of_the_corpus_adds_nothing_and_fails_the_same_way(tmp_path, capsys, settings):
    settings.GLIMPSE_MAX_UPLOAD_BYTES = 1 * MB
    corpus = [case for case in cases() if case.key in ("plain_png", "fifo", "nul_in_title", "not_utf8", "bom_line", "one_pixel")]
    folder = tmp_path / "corpus"
    write_corpus(folder, corpus)
    for _ in range(2):
        with pytest.raises(CommandError):
            call_command("import_images", str(folder), "--manifest", "data.jsonl", verbosity=0)
    assert capsys.readouterr().out.splitlines()[-1] == "0 imported, 3 already in the catalog, 3 skipped, of 6 rows"


@pytest.mark.django_db
def test_a_long_image_allowed_by_the_settings_imports_in_bounded_memory(tmp_path, capsys, settings):
    settings.GLIMPSE_MAX_ASPECT_RATIO = 100
    (tmp_path / "banner.png").write_bytes(banner_png())
    (tmp_path / "data.jsonl").write_text('{"file": "banner.png", "title": "Banner"}\n')
    with peak_memory() as peak:
        call_command("import_images", str(tmp_path), verbosity=0)
    assert capsys.readouterr().out.strip() == "1 imported, 0 already in the catalog, 0 skipped, of 1 rows"
    image = Image.objects.get()
    assert (image.width, image.height) == (65_000, 700)
    assert PILImage.open(image.thumbnail).size == (256, 3)
    # 4 bytes a pixel while decoding (182 MB); the thumbnail comes from a 1,031 × 11 copy.
    assert peak.growth < 4 * 65_000 * 700 + 64 * MB, peak.growth
