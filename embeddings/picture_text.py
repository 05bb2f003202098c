"""The words in the pictures: read by workers on a queue of their own, after the vectors,
so that a picture is searchable by its vectors before its text is read; corrected or
dismissed by curators, whose word a new reading never overrides.

What was read is the picture's own (catalog.Image.picture_text), never the curator's
description. Search finds it three ways: in the full-text document at weight B with the
names of its signs (picture_glyphs: "$" is found by "dollar sign"), by a part of a word
or a word with one misread character (picture_word_keys, catalog migration 0005), and by
meaning through the multilingual tower (PictureTextVector, its own ranked list).
"""
import logging
from dataclasses import dataclass, field

import django_rq
from django.conf import settings
from django.db import transaction

from catalog.exceptions import InvalidImage
from catalog.imaging import decode
from catalog.models import Image

from . import encoders
from .exceptions import ReadingFailed
from .models import PictureTextVector
from .reading import glyph_words, picture_read

logger = logging.getLogger("glimpse.reading")

READING_QUEUE = "reading"
READ_JOB = "embeddings.jobs.read_pictures"
State = Image.PictureTextState
# A curator's word on a picture's text stands until that curator (or another) changes it.
CURATED = (State.CORRECTED, State.DISMISSED)


@dataclass
class ReadReport:
    read: dict[int, str] = field(default_factory=dict)  # image id: the text found ("" for none)
    failed: dict[int, str] = field(default_factory=dict)  # image id: why its text could not be read


def reading_enqueue(*, image_ids: list[int]) -> int:
    """Queue reading jobs in batches; returns the number of jobs (none with GLIMPSE_READING off)."""
    if not settings.GLIMPSE_READING or not image_ids:
        return 0
    queue = django_rq.get_queue(READING_QUEUE)
    size = settings.GLIMPSE_EMBED_BATCH_SIZE
    ids = sorted(set(image_ids))
    for start in range(0, len(ids), size):
        queue.enqueue(READ_JOB, ids[start : start + size], result_ttl=3600, failure_ttl=7 * 86400)
    return (len(ids) + size - 1) // size


def queued_reading_ids() -> set[int]:
    ids: set[int] = set()
    for job in django_rq.get_queue(READING_QUEUE).get_jobs():
        if job.func_name == READ_JOB and job.args:
            ids.update(job.args[0])
    return ids


def reading_sweep() -> int:
    """Queue the embedded pictures whose text waits to be read and that no queued job covers
    (Redis was down, a worker died, reading was turned on for an existing catalog)."""
    if not settings.GLIMPSE_READING:
        return 0
    waiting = set(
        Image.objects.filter(picture_text_state=State.PENDING, embedding_status=Image.EmbeddingStatus.READY).values_list("id", flat=True)
    )
    missing = waiting - queued_reading_ids()
    reading_enqueue(image_ids=list(missing))
    return len(missing)


def pictures_read(*, image_ids: list[int]) -> ReadReport:
    """Read the text in the given pictures and store it with its lines, boxes (in the stored
    picture's pixels), confidences and the reader's name; then its vectors.

    Each picture has GLIMPSE_READING_SECONDS and keeps at most GLIMPSE_READING_MAX_CHARS
    characters. A picture that cannot be decoded or that the reader fails on (or that takes
    too long) fails alone, with its reason, and keeps its vectors. A curator's correction or
    dismissal stays: the new lines are stored beside it for the curator to compare."""
    report = ReadReport()
    found = {}
    for image in Image.objects.filter(id__in=image_ids).order_by("id"):
        try:
            with image.file.open("rb") as handle:
                decoded = decode(handle.read(), max_pixels=settings.GLIMPSE_MAX_PIXELS, max_aspect_ratio=settings.GLIMPSE_MAX_ASPECT_RATIO)
            text = picture_read(decoded.rgb, budget_seconds=settings.GLIMPSE_READING_SECONDS, max_chars=settings.GLIMPSE_READING_MAX_CHARS)
        except InvalidImage as error:
            report.failed[image.id] = f"cannot decode the stored file: {error}"
        except OSError as error:
            report.failed[image.id] = f"cannot read the stored file {image.file.name}: {error.strerror or error}"
        except ReadingFailed as error:
            report.failed[image.id] = str(error)
        else:
            found[image.id] = (text, decoded.width / decoded.rgb.width)
            report.read[image.id] = text.text
    with transaction.atomic():
        for image in Image.objects.select_for_update().filter(id__in=list(found) + list(report.failed)):
            if image.id in report.failed:
                image.picture_text_error = report.failed[image.id]
                if image.picture_text_state not in CURATED:
                    image.picture_text_state, image.picture_text, image.picture_glyphs = State.FAILED, "", ""
            else:
                text, scale = found[image.id]
                image.picture_text_lines = [
                    {"text": line.text, "confidence": line.confidence, "box": [[round(x * scale, 1), round(y * scale, 1)] for x, y in line.box]}
                    for line in text.lines
                ]
                image.picture_text_reader, image.picture_text_error = text.reader, ""
                if image.picture_text_state not in CURATED:
                    image.picture_text_state, image.picture_text, image.picture_glyphs = State.READ, text.text, glyph_words(text.text)
            image.save(update_fields=[
                "picture_text", "picture_text_state", "picture_text_lines", "picture_text_reader", "picture_text_error", "picture_glyphs",
                "updated_at",
            ])
        picture_text_vectors_write(image_ids=list(found) + list(report.failed))
    for image_id, reason in report.failed.items():
        logger.warning("image %d: its text was not read: %s", image_id, reason)
    return report


def picture_text_correct(*, image: Image, text: str) -> Image:
    """A curator's text for the picture in place of the reader's (empty: dismissed); it stays
    through every later reading. Searchable at once: its vector is written here."""
    text = "\n".join(line.strip() for line in text.strip().splitlines() if line.strip())[: settings.GLIMPSE_READING_MAX_CHARS]
    image.picture_text = text
    image.picture_glyphs = glyph_words(text)
    image.picture_text_state = State.CORRECTED if text else State.DISMISSED
    with transaction.atomic():
        image.save(update_fields=["picture_text", "picture_glyphs", "picture_text_state", "updated_at"])
        picture_text_vectors_write(image_ids=[image.id], encoder=encoders.multilingual_query_encoder)
    return image


def picture_text_dismiss(*, image: Image) -> Image:
    """The text read in the picture is wrong or beside the point: nothing of it is searched."""
    return picture_text_correct(image=image, text="")


def picture_text_reread(*, image_ids: list[int]) -> int:
    """Give the pictures back to the reader: the reader's text again, the curator's word dropped."""
    Image.objects.filter(id__in=image_ids).update(picture_text_state=State.PENDING)
    return reading_enqueue(image_ids=image_ids)


def searched_words(text: str, glyphs: str) -> str:
    """What the multilingual tower encodes of a picture's words: its text on one line and
    the names of its signs ("$ 5" -> "$ 5 dollar sign dollar digit five number 5")."""
    return " ".join(f"{text} {glyphs}".split())


def picture_text_vectors_write(*, image_ids: list[int], encoder=encoders.multilingual_encoder) -> int:
    """The vectors of the pictures' searched words, written or removed to match them. None
    without a multilingual tower (the words are then found by keyword and part only)."""
    model = settings.GLIMPSE_MULTILINGUAL_TEXT_MODEL
    rows = Image.objects.filter(id__in=image_ids, picture_text_state__in=[State.READ, State.CORRECTED]).exclude(picture_text="")
    words = {image_id: searched_words(text, glyphs) for image_id, text, glyphs in rows.values_list("id", "picture_text", "picture_glyphs")}
    PictureTextVector.objects.filter(image_id__in=image_ids).exclude(image_id__in=words if model else []).delete()
    if not model or not words:
        return 0
    vectors = encoder().encode(list(words.values()))
    PictureTextVector.objects.bulk_create(
        [PictureTextVector(image_id=image_id, text_model=model, vector=vector) for image_id, vector in zip(words, vectors)],
        update_conflicts=True,
        unique_fields=["image"],
        update_fields=["text_model", "vector"],
    )
    return len(words)
