"""Read the text in a picture, and name its signs and single characters for search.

The reader is RapidOCR 3.10.0 (Apache-2.0) with PaddleOCR's PP-OCRv6 small detection and
recognition models (Apache-2.0) for Chinese, English and the Latin alphabets of about
fifty languages, which its wheel carries: they are loaded from there by path, so nothing
is ever downloaded. Nothing here imports RapidOCR, OpenCV or a runtime until a reader is
built. RapidOCR's angle classifier is left out: it turned single glyphs upside down ("&"
read "9", "Q" read "0": 13 of 100 glyph pictures) and text upside down is rare.

GLIMPSE_INFERENCE_BACKEND=openvino runs the two models in OpenVINO, in
GLIMPSE_INFERENCE_PRECISION; any other value in ONNX Runtime, in f32. The text is the
same in f32 on both (95 pictures); bf16 changed it in 5 of them, so the reader's name
says so. Seconds per picture, median of 30 drawn 256-pixel pictures and of 5 tiled
1024-pixel ones, the range of 3 rounds, on a 2-core AMD EPYC (avx512_bf16) shared with
two running evaluations (load 3.3 to 3.7):

    backend, threads         256 px        1024 px
    onnxruntime f32, 1       0.048-0.069   0.20-0.31
    onnxruntime f32, 2       0.14-0.16     0.39-0.49
    openvino f32, 1          0.051-0.072   0.22-0.30
    openvino f32, 2          0.059-0.077   0.29-0.30
    openvino bf16, 1         0.036-0.051   0.14-0.21
    openvino bf16, 2         0.037-0.046   0.15-0.19

Both runtimes use every core by default (the rows with 2); on a busy machine ONNX
Runtime's spinning threads cost it most. A reader adds 136 MB to a process with ONNX
Runtime and 226 MB with OpenVINO (which replaces RapidOCR's ONNX Runtime sessions once
built), and reading a 1024-pixel picture about 150 MB more at its peak. It builds in
about 1 s.
"""
import re
import threading
import time
import unicodedata
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from PIL import Image as PILImage

from .encoders import built_once, precision
from .exceptions import ReadingFailed

DETECTION_MODEL = "PP-OCRv6_det_small.onnx"
RECOGNITION_MODEL = "PP-OCRv6_rec_small.onnx"
# Lines read with less confidence are dropped. On 300 openclipart drawings the models
# return 211 lines, most of them shapes read as "0", "O", "8" or a Han character; 57 are
# at 0.8 or more, among them every real word found (the lowest, the letter-spaced
# "A P P L E", at 0.833). Every word drawn in 30 test pictures that was read scored 0.95
# or more, and single glyphs mostly 0.8 or more (tests/embeddings/test_reading.py). 24 of
# the 57 are single characters, nearly all shapes (a drawing in 12 gets one): they score
# as high as glyphs that are real, and no threshold tells them apart.
MIN_CONFIDENCE = 0.8
# Text is found in the picture reduced to this longest side, and read from the picture at
# up to GLIMPSE_READING_MAX_SIDE. Larger, the detector misses small text that is alone on
# a plain picture: one 16-pixel word on a 1024-pixel white picture is found at 640 and
# 512, never at 1024, and at 736 (RapidOCR's default, which also enlarges every picture to
# that shortest side, at 3 to 4 times the time) 4 times in 6.
DETECTION_SIDE = 640
# Pictures are padded to at most this aspect ratio and at least this side before
# detection, as RapidOCR pads its own: the detector finds nothing in a strip a few pixels
# high, and its input is a multiple of 32 pixels.
MAX_ASPECT_RATIO = 8
MIN_SIDE = 32
# Lines recognised per forward pass (RapidOCR's own batch), and so how often the time
# budget is looked at while reading.
RECOGNITION_BATCH = 6
MAX_REASON_CHARS = 200


@dataclass(frozen=True)
class TextLine:
    text: str
    confidence: float  # 0–1, the recogniser's
    # Corners clockwise from the top left, as (x, y) in the given picture's pixels.
    box: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class ReadText:
    lines: tuple[TextLine, ...]  # in reading order
    text: str  # the lines' texts, one a line
    reader: str  # rapidocr's version and the models: which reader wrote this text
    seconds: float


class Reader:
    """RapidOCR's detector and recogniser, driven a step at a time so that the time budget
    is looked at between steps. One picture at a time: OpenVINO's and RapidOCR's sessions
    keep state between calls."""

    def __init__(self, detector, recognizer, *, name: str, max_side: int):
        self.detector = detector
        self.recognizer = recognizer
        self.name = name
        self.max_side = max_side
        self.lock = threading.Lock()

    def read(self, rgb: PILImage.Image, *, budget_seconds: float, max_chars: int) -> ReadText:
        if rgb.mode != "RGB":
            raise ValueError(f"picture_read takes an RGB picture, not {rgb.mode} (catalog.imaging.to_rgb converts one)")
        with self.lock:
            started = time.perf_counter()
            lines = self.lines(rgb, started=started, budget_seconds=budget_seconds)
        lines = capped(reading_order(lines), max_chars)
        return ReadText(
            lines=tuple(lines), text="\n".join(line.text for line in lines), reader=self.name, seconds=time.perf_counter() - started
        )

    def lines(self, rgb: PILImage.Image, *, started: float, budget_seconds: float) -> list[TextLine]:
        low, high = zip(*rgb.getextrema())
        if low == high:
            return []  # one colour: no text, and no model needs to run
        scale = min(1.0, self.max_side / max(rgb.size))
        picture = padded(fitted(rgb, scale))
        pixels = np.ascontiguousarray(np.asarray(picture)[:, :, ::-1])  # RapidOCR's models read BGR
        found = self.detect(pixels, rgb.size)
        if found is None:
            return []
        boxes = found.boxes
        over_budget(started, budget_seconds, boxes_found(len(boxes)))
        texts, confidences = self.recognise(pixels, boxes, rgb.size, started=started, budget_seconds=budget_seconds)
        width, height = rgb.size
        return [
            TextLine(text=text.strip(), confidence=round(float(confidence), 4), box=picture_box(box / scale, width, height))
            for box, text, confidence in zip(boxes, texts, confidences)
            if text.strip() and confidence >= MIN_CONFIDENCE
        ]

    def detect(self, pixels: np.ndarray, size: tuple[int, int]):
        try:
            found = self.detector(pixels)
        except Exception as error:
            raise ReadingFailed(f"text detection failed on this {size[0]}×{size[1]} picture: {reason(error)}") from error
        return found if found.boxes is not None and len(found.boxes) else None

    def recognise(self, pixels, boxes, size, *, started: float, budget_seconds: float) -> tuple[list[str], list[float]]:
        from rapidocr.ch_ppocr_rec import TextRecInput
        from rapidocr.utils.process_img import get_rotate_crop_image

        texts, confidences = [""] * len(boxes), [0.0] * len(boxes)
        try:
            crops = [get_rotate_crop_image(pixels, box.copy()) for box in boxes]
            # Lines of a like width share a batch: each is padded to its batch's widest.
            order = sorted(range(len(crops)), key=lambda index: crops[index].shape[1] / crops[index].shape[0])
            for start in range(0, len(order), RECOGNITION_BATCH):
                batch = order[start : start + RECOGNITION_BATCH]
                read = self.recognizer(TextRecInput(img=[crops[index] for index in batch]))
                for index, text, confidence in zip(batch, read.txts, read.scores):
                    texts[index], confidences[index] = text, confidence
                over_budget(started, budget_seconds, f"{boxes_found(len(boxes))}, {start + len(batch):,} read")
        except ReadingFailed:
            raise
        except Exception as error:
            raise ReadingFailed(f"text recognition failed on this {size[0]}×{size[1]} picture: {reason(error)}") from error
        return texts, confidences


def over_budget(started: float, budget_seconds: float, progress: str) -> None:
    if time.perf_counter() - started > budget_seconds:
        raise ReadingFailed(f"reading took over {seconds_text(budget_seconds)} s ({progress})")


def boxes_found(count: int) -> str:
    return f"{count:,} text {'box' if count == 1 else 'boxes'} found"


def seconds_text(seconds: float) -> str:
    return f"{seconds:.1f}" if seconds >= 1 else f"{seconds:.3g}"


def reason(error: Exception) -> str:
    """The error's own message, on one line. RapidOCR wraps a runtime's error in one whose
    message is the whole traceback: the runtime's is the one to say."""
    cause = error.__cause__ or error
    message = " ".join(str(cause).split())
    text = f"{type(cause).__name__}: {message}" if message else type(cause).__name__
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def fitted(rgb: PILImage.Image, scale: float) -> PILImage.Image:
    if scale >= 1:
        return rgb
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    return rgb.resize(size, PILImage.Resampling.LANCZOS, reducing_gap=3.0)


def padded(picture: PILImage.Image) -> PILImage.Image:
    """`picture` at the top left of a canvas of its border's colour, no thinner than
    MIN_SIDE and MAX_ASPECT_RATIO allow: the boxes found keep their coordinates."""
    longest = max(picture.size)
    width = max(picture.width, MIN_SIDE, -(-longest // MAX_ASPECT_RATIO))
    height = max(picture.height, MIN_SIDE, -(-longest // MAX_ASPECT_RATIO))
    if (width, height) == picture.size:
        return picture
    pixels = np.asarray(picture)
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    canvas = PILImage.new("RGB", (width, height), tuple(int(value) for value in np.median(border, axis=0)))
    canvas.paste(picture, (0, 0))
    return canvas


def picture_box(box: np.ndarray, width: int, height: int) -> tuple[tuple[float, float], ...]:
    """A detected box in the given picture's pixels, inside it (the padding is not the picture's)."""
    return tuple((round(float(min(max(x, 0), width)), 1), round(float(min(max(y, 0), height)), 1)) for x, y in box)


def reading_order(lines: list[TextLine]) -> list[TextLine]:
    """Top to bottom, and left to right along a row: a line whose middle is within the
    height of a row's first (topmost) line is on that row."""
    rows: list[list[TextLine]] = []
    for line in sorted(lines, key=top):
        if rows and top(rows[-1][0]) <= middle(line) <= bottom(rows[-1][0]):
            rows[-1].append(line)
        else:
            rows.append([line])
    return [line for row in rows for line in sorted(row, key=left)]


def top(line: TextLine) -> float:
    return min(y for _, y in line.box)


def bottom(line: TextLine) -> float:
    return max(y for _, y in line.box)


def middle(line: TextLine) -> float:
    return (top(line) + bottom(line)) / 2


def left(line: TextLine) -> float:
    return min(x for x, _ in line.box)


def capped(lines: list[TextLine], max_chars: int) -> list[TextLine]:
    """The first lines whose text (one a line) fits in `max_chars`; when not even the first
    line fits, that line cut at its last space within the limit (or at the limit)."""
    kept, used = [], 0
    for line in lines:
        length = len(line.text) + (1 if kept else 0)
        if used + length <= max_chars:
            kept.append(line)
            used += length
            continue
        if not kept and max_chars > 0:
            cut = line.text[:max_chars]
            if " " in cut.strip() and line.text[max_chars : max_chars + 1] != " ":
                cut = cut.rsplit(" ", 1)[0]
            kept.append(replace(line, text=cut.rstrip()))
        break
    return kept


def reading_backend() -> str:
    """"openvino" where GLIMPSE_INFERENCE_BACKEND names it; ONNX Runtime for any other value
    (RapidOCR has no torch models in its wheel)."""
    return "openvino" if settings.GLIMPSE_INFERENCE_BACKEND == "openvino" else "onnxruntime"


@built_once
def reader() -> Reader:
    """The process's reader, on the configured backend (reading_backend)."""
    return reader_on(reading_backend())


def reader_on(backend: str) -> Reader:
    """A new reader on `backend` (uncached: benches and tests compare backends side by side)."""
    if backend not in ("onnxruntime", "openvino"):
        raise ValueError(f"no reader runs on {backend!r}: use onnxruntime or openvino")
    try:
        import rapidocr
        from rapidocr import RapidOCR
    except ImportError as error:
        raise ImproperlyConfigured(f"reading text needs rapidocr==3.10.0 ({error})") from None
    folder = Path(rapidocr.__file__).parent / "models"
    for name in (DETECTION_MODEL, RECOGNITION_MODEL):
        if not (folder / name).is_file():
            raise ImproperlyConfigured(f"rapidocr {version('rapidocr')} has no {name} in its wheel: install rapidocr==3.10.0")
    engine = RapidOCR(
        params={
            "Global.log_level": "error",
            "Global.use_cls": False,
            "Det.model_path": str(folder / DETECTION_MODEL),
            "Rec.model_path": str(folder / RECOGNITION_MODEL),
            "Det.limit_type": "max",
            "Det.limit_side_len": DETECTION_SIDE,
        }
    )
    # RapidOCR loads its models at first use; loaded now, they are not in a picture's budget.
    detector, recognizer = engine._load_det_model(), engine._load_rec_model()
    name = f"rapidocr-{version('rapidocr')} {Path(DETECTION_MODEL).stem} {Path(RECOGNITION_MODEL).stem}"
    if backend == "openvino":
        from .encoders.exported import OpenVino

        # In place of RapidOCR's OpenVINO sessions, which compute in whatever the CPU
        # prefers (bf16 on avx512_bf16 or AMX): the precision is named, as the towers'.
        for model, file in ((detector, DETECTION_MODEL), (recognizer, RECOGNITION_MODEL)):
            model.session = SingleInput(
                OpenVino(folder / file, settings.GLIMPSE_MODEL_CACHE, precision=precision()), model.session.get_input_names()[0]
            )
        if precision() != "f32":
            name += f" {precision()}"
    return Reader(detector, recognizer, name=name, max_side=settings.GLIMPSE_READING_MAX_SIDE)


class SingleInput:
    """An exported.py runtime called as RapidOCR calls its sessions: one array in, the first output out."""

    def __init__(self, run, input_name: str):
        self.run = run
        self.input_name = input_name

    def __call__(self, array: np.ndarray) -> np.ndarray:
        return self.run({self.input_name: array})[0]


def picture_read(rgb: PILImage.Image, *, budget_seconds: float, max_chars: int) -> ReadText:
    """The text in an untrusted RGB picture, read by the process's reader: lines read with
    confidence MIN_CONFIDENCE or more, in reading order, at most `max_chars` characters.

    A picture larger than GLIMPSE_READING_MAX_SIDE is reduced first; boxes are in `rgb`'s
    own pixels. ReadingFailed, with the reason, when reading takes over `budget_seconds`
    (looked at after detection and after each batch of RECOGNITION_BATCH lines, so a
    picture overruns by at most one of them) or when RapidOCR fails on the picture."""
    return reader().read(rgb, budget_seconds=budget_seconds, max_chars=max_chars)


# What people call these signs besides their Unicode names; looked up by the sign's
# compatibility form, so the fullwidth "＄" is a dollar too.
GLYPH_ALIASES = {
    "$": "dollar", "€": "euro", "£": "pound", "¥": "yen", "₹": "rupee", "₩": "won", "¢": "cent",
    "%": "percent", "@": "at", "#": "hash",
}
# Letters with a case, digits and other numbers, symbols, and punctuation that is a sign
# ("&", "%", "#", "?"): not dashes, brackets, quotes or the marks that only separate words.
NAMED_CATEGORIES = {"Lu", "Ll", "Lt", "Nd", "Nl", "No", "Sm", "Sc", "So", "Po"}
SIGN_CATEGORIES = {"Sm", "Sc", "So", "Po"}
SEPARATORS = set(".,:;'\"·。、，．")


def glyph_words(text: str) -> str:
    """Words for the signs and single characters of `text`, for the caller to append to it:
    "$" -> "dollar sign dollar", "Q" -> "letter q", "7" -> "digit seven number 7".

    Only characters that stand alone are named, so that words stay as they are: a letter
    or a digit that is a whole token (a run between spaces, a line at most), a sign in a
    token of one or two characters ("&", "5%"), and a currency sign anywhere ("price $5"
    -> "dollar sign dollar"). Each name is given once; letters without case (Chinese,
    Japanese, Arabic...) are words already and are not named."""
    named: dict[str, None] = {}  # the words of each character, once, in the order read
    for token in text.split():
        for character in token:
            if stands_alone(character, token) and (words := glyph_name(character)):
                named[words] = None
    return " ".join(named)


def stands_alone(character: str, token: str) -> bool:
    category = unicodedata.category(character)
    if category not in NAMED_CATEGORIES or character in SEPARATORS:
        return False
    return category == "Sc" or len(token) == 1 or (len(token) == 2 and category in SIGN_CATEGORIES)


def glyph_name(character: str) -> str:
    name = unicodedata.name(character, "").lower()
    if not name:
        return ""
    name = re.sub(r"\b(capital|small) letter\b", "letter", name).replace("latin letter", "letter")
    words = [name]
    if (digit := unicodedata.decimal(character, None)) is not None:
        words.append(f"number {digit}")
    if alias := GLYPH_ALIASES.get(unicodedata.normalize("NFKC", character)):
        words.append(alias)
    return " ".join(words)
