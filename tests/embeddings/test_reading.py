"""Reading the text in pictures drawn here with DejaVu fonts, with the real PP-OCRv6 models,
and the words that name signs and single characters for search.

What the models read alone, measured on 256-pixel pictures of one glyph in DejaVu Sans,
Sans Bold and Serif and Liberation Sans and Serif at 16, 32, 64 and 128 pixels (20 each),
at confidence 0.8 or more: "€", "7", "%", "&" and "#" every time, "Q" and "@" 19 times,
"$" 18 (at 16 pixels the serif fonts' "$" reads "S" or nothing); "£" 12 (DejaVu Sans's
reads "f" or nothing), "©" 8 ("C" or nothing from 32 pixels up); "¥" never (the Han "夫" 5
times, nothing otherwise). The glyph tests below draw 64-pixel DejaVu Sans.
"""
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from PIL import Image, ImageDraw, ImageFont

from embeddings.exceptions import ReadingFailed
from embeddings.reading import TextLine, capped, glyph_words, picture_read, reader, reader_on

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
BUDGET = 30.0  # seconds: generous, the machine running the tests may be busy
CJK_PACKAGE = "fonts-wqy-zenhei"
CJK_FONT = Path("usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")


def font(size: int, name: str = "DejaVuSans-Bold.ttf") -> ImageFont.FreeTypeFont:
    if not (DEJAVU / name).exists():
        pytest.skip(f"the DejaVu fonts are not installed ({DEJAVU / name}): apt-get install fonts-dejavu-core")
    return ImageFont.truetype(str(DEJAVU / name), size)


def drawn(size: tuple[int, int], texts: list[tuple[tuple[int, int], str, ImageFont.FreeTypeFont]], *, background="white"):
    """A picture with `texts` drawn in black at their top-left corners, and each text's drawn box."""
    picture = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(picture)
    boxes = []
    for corner, text, typeface in texts:
        draw.text(corner, text, font=typeface, fill="black")
        boxes.append(draw.textbbox(corner, text, font=typeface))
    return picture, boxes


def inside(line: TextLine, size: tuple[int, int]) -> bool:
    return all(0 <= x <= size[0] and 0 <= y <= size[1] for x, y in line.box)


def around(line: TextLine, drawn_box: tuple[int, int, int, int], *, slack: int = 12) -> bool:
    """Whether the line's box holds the drawn text, give or take `slack` pixels each side."""
    left, top, right, bottom = drawn_box
    xs, ys = [x for x, _ in line.box], [y for _, y in line.box]
    return (
        left - slack <= min(xs) <= left + slack and right - slack <= max(xs) <= right + slack
        and top - slack <= min(ys) <= top + slack and bottom - slack <= max(ys) <= bottom + slack
    )


@pytest.mark.slow
def test_a_word_is_read_with_its_box_around_it():
    picture, [box] = drawn((400, 200), [((60, 60), "SALE", font(64))])
    read = picture_read(picture, budget_seconds=BUDGET, max_chars=100)
    assert read.text == "SALE"
    [line] = read.lines
    assert line.text == "SALE" and line.confidence >= 0.95
    assert inside(line, picture.size) and around(line, box)
    assert read.reader.startswith("rapidocr-3.10.0 PP-OCRv6_det_small PP-OCRv6_rec_small")
    assert 0 < read.seconds < BUDGET
    assert reader() is reader()


@pytest.mark.slow
def test_a_number_plate_is_read_on_its_plate():
    picture = Image.new("RGB", (640, 360), (90, 110, 120))
    draw = ImageDraw.Draw(picture)
    plate = (120, 140, 520, 230)
    draw.rectangle(plate, fill=(250, 210, 0), outline="black", width=4)
    draw.text((150, 155), "RE16 TGK", font=font(60), fill="black")
    read = picture_read(picture, budget_seconds=BUDGET, max_chars=100)
    assert read.text == "RE16 TGK"
    xs, ys = [x for x, _ in read.lines[0].box], [y for _, y in read.lines[0].box]
    assert plate[0] <= min(xs) and max(xs) <= plate[2] and plate[1] <= min(ys) and max(ys) <= plate[3]


@pytest.mark.slow
@pytest.mark.parametrize(
    "glyph, words",
    [("$", ["dollar sign", "dollar"]), ("€", ["euro sign", "euro"]), ("Q", ["letter q"]), ("7", ["digit seven", "seven", "number 7"])],
)
def test_a_glyph_alone_is_read_and_named(glyph, words):
    picture, [box] = drawn((256, 256), [((100, 80), glyph, font(64, "DejaVuSans.ttf"))])
    read = picture_read(picture, budget_seconds=BUDGET, max_chars=100)
    assert read.text == glyph
    assert around(read.lines[0], box, slack=16)
    assert all(word in glyph_words(read.text) for word in words)


@pytest.fixture(scope="session")
def chinese_font() -> Path:
    """WenQuanYi Zen Hei: the installed one, or the Debian package's file kept in the data
    folder's test cache (fetched once with apt, about 7 MB); the test skips where apt cannot."""
    installed = Path("/") / CJK_FONT
    if installed.exists():
        return installed
    cached = settings.DATA_DIR / "test-data" / "fonts" / CJK_FONT.name
    if cached.exists():
        return cached
    with tempfile.TemporaryDirectory() as folder:
        try:
            subprocess.run(["apt-get", "download", CJK_PACKAGE], cwd=folder, check=True, capture_output=True, timeout=120)
            [package] = Path(folder).glob("*.deb")
            subprocess.run(["dpkg-deb", "-x", str(package), f"{folder}/files"], check=True, capture_output=True, timeout=120)
        except (OSError, subprocess.SubprocessError, ValueError) as error:
            pytest.skip(f"no CJK font is installed and `apt-get download {CJK_PACKAGE}` failed: {error}")
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(f"{cached.name}.{os.getpid()}.partial")
        shutil.copyfile(Path(folder, "files", CJK_FONT), partial)
        partial.replace(cached)
    return cached


@pytest.mark.slow
def test_a_chinese_word_is_read(chinese_font):
    picture, _ = drawn((400, 160), [((40, 40), "欢迎光临", ImageFont.truetype(str(chinese_font), 56))])
    assert picture_read(picture, budget_seconds=BUDGET, max_chars=100).text == "欢迎光临"


@pytest.mark.slow
def test_lines_are_in_reading_order_one_a_line():
    typeface = font(40)
    picture, _ = drawn((640, 320), [((360, 40), "EXIT", typeface), ((40, 52), "OPEN", typeface), ((40, 200), "CAFE", typeface)])
    assert picture_read(picture, budget_seconds=BUDGET, max_chars=100).text == "OPEN\nEXIT\nCAFE"


@pytest.mark.slow
def test_the_text_is_cut_at_a_line_within_max_chars():
    typeface = font(40)
    picture, _ = drawn((480, 360), [((40, 40), "ONE", typeface), ((40, 140), "TWO", typeface), ((40, 240), "THREE", typeface)])
    read = picture_read(picture, budget_seconds=BUDGET, max_chars=10)
    assert read.text == "ONE\nTWO"
    assert [line.text for line in read.lines] == ["ONE", "TWO"]


def test_a_first_line_longer_than_max_chars_is_cut_at_a_space():
    line = TextLine(text="FRESH BREAD DAILY", confidence=0.99, box=((0, 0), (100, 0), (100, 20), (0, 20)))
    assert [kept.text for kept in capped([line], 14)] == ["FRESH BREAD"]
    assert [kept.text for kept in capped([line], 4)] == ["FRES"]
    assert capped([line], 0) == []


@pytest.mark.slow
@pytest.mark.parametrize("background", ["white", "black"])
def test_a_picture_of_one_colour_is_empty_at_once(background):
    read = picture_read(Image.new("RGB", (1024, 768), background), budget_seconds=BUDGET, max_chars=100)
    assert (read.lines, read.text) == ((), "")
    assert read.seconds < 0.05


@pytest.mark.slow
def test_a_drawing_without_text_is_empty():
    picture = Image.new("RGB", (512, 512), "white")
    ImageDraw.Draw(picture).ellipse((100, 120, 400, 380), fill=(200, 40, 40), outline="black", width=6)
    assert picture_read(picture, budget_seconds=BUDGET, max_chars=100).text == ""


@pytest.mark.slow
def test_a_reading_over_its_budget_fails_with_the_reason():
    picture, _ = drawn((400, 200), [((60, 60), "SALE", font(64))])
    with pytest.raises(ReadingFailed, match=r"^reading took over 0\.001 s \(1 text box found\)$"):
        picture_read(picture, budget_seconds=0.001, max_chars=100)


@pytest.mark.slow
@pytest.mark.parametrize(
    "picture",
    [
        Image.new("RGB", (1, 1), "white"),
        Image.frombytes("RGB", (2, 1), bytes([0, 0, 0, 255, 255, 255])),
        Image.effect_noise((4000, 40), 64).convert("RGB"),
        Image.effect_noise((40, 4000), 64).convert("RGB"),
    ],
    ids=["1x1", "2x1", "4000x40", "40x4000"],
)
def test_strange_pictures_read_as_nothing_in_good_time(picture):
    started = time.perf_counter()
    read = picture_read(picture, budget_seconds=BUDGET, max_chars=100)
    assert read.text == ""
    assert time.perf_counter() - started < 5


@pytest.mark.slow
def test_text_on_a_strip_larger_than_the_reading_side_is_read_in_the_strips_pixels():
    picture, [box] = drawn((1600, 48), [((900, 4), "RE16 TGK", font(36))])
    read = picture_read(picture, budget_seconds=BUDGET, max_chars=100)
    assert read.text == "RE16 TGK"
    assert inside(read.lines[0], picture.size) and around(read.lines[0], box, slack=20)


@pytest.mark.slow
def test_an_error_in_the_models_becomes_reading_failed_with_its_reason():
    broken = reader_on("onnxruntime")
    broken.detector.session = broken.recognizer.session  # the recogniser takes 48-pixel lines, not pictures
    picture, _ = drawn((400, 200), [((60, 60), "SALE", font(64))])
    with pytest.raises(ReadingFailed, match=r"^text detection failed on this 400×200 picture: \w+: .*dimensions") as failed:
        broken.read(picture, budget_seconds=BUDGET, max_chars=100)
    assert "Traceback" not in str(failed.value) and "\n" not in str(failed.value)


@pytest.mark.slow
@override_settings(GLIMPSE_INFERENCE_PRECISION="f32")
def test_openvino_reads_as_onnx_runtime_does_in_f32():
    picture, _ = drawn((640, 320), [((40, 40), "RE16 TGK", font(48)), ((40, 180), "$5.99", font(48, "DejaVuSans.ttf"))])
    onnx = reader_on("onnxruntime").read(picture, budget_seconds=BUDGET, max_chars=100)
    openvino = reader_on("openvino").read(picture, budget_seconds=BUDGET, max_chars=100)
    assert openvino.text == onnx.text == "RE16 TGK\n$5.99"
    assert [line.box for line in openvino.lines] == [line.box for line in onnx.lines]
    assert openvino.reader == onnx.reader == "rapidocr-3.10.0 PP-OCRv6_det_small PP-OCRv6_rec_small"


@pytest.mark.slow
@override_settings(GLIMPSE_INFERENCE_PRECISION="bf16")
def test_text_read_in_bf16_says_so():
    """bf16 changes a character or a box here and there (5 texts of 95 measured)."""
    try:
        openvino = reader_on("openvino")
    except ImproperlyConfigured as error:
        pytest.skip(str(error))  # a CPU without bf16
    assert openvino.name == "rapidocr-3.10.0 PP-OCRv6_det_small PP-OCRv6_rec_small bf16"


@pytest.mark.slow
def test_pictures_in_other_modes_are_refused():
    with pytest.raises(ValueError, match="RGB picture, not RGBA"):
        picture_read(Image.new("RGBA", (8, 8)), budget_seconds=BUDGET, max_chars=100)


@pytest.mark.parametrize(
    "text, words",
    [
        ("$", "dollar sign dollar"),
        ("€", "euro sign euro"),
        ("£", "pound sign pound"),
        ("¥", "yen sign yen"),
        ("₹", "indian rupee sign rupee"),
        ("₩", "won sign won"),
        ("¢", "cent sign cent"),
        ("Q", "letter q"),
        ("7", "digit seven number 7"),
        ("%", "percent sign percent"),
        ("&", "ampersand"),
        ("©", "copyright sign"),
        ("@", "commercial at at"),
        ("#", "number sign hash"),
        ("Ω", "greek letter omega"),
        ("＄", "fullwidth dollar sign dollar"),
    ],
)
def test_a_glyph_alone_is_named(text, words):
    assert glyph_words(text) == words


@pytest.mark.parametrize(
    "text, words",
    [
        ("price $5", "dollar sign dollar"),  # a currency sign anywhere, the number left as it is
        ("5€ or £4", "euro sign euro pound sign pound"),
        ("OPEN\nQ\n7", "letter q digit seven number 7"),  # a line of one character
        ("Q q", "letter q"),  # each name once
        ("#1 & 5%", "number sign hash ampersand percent sign percent"),  # signs in short tokens
        ("50% OFF", ""),
        ("Hello world", ""),
        ("A1 7.", ""),  # a letter or digit with another character is no longer alone
        ("RE16 TGK", ""),
        ("欢迎光临 中", ""),  # Han characters are words already
        (". , -", ""),
        ("", ""),
    ],
)
def test_only_characters_that_stand_alone_are_named(text, words):
    assert glyph_words(text) == words
