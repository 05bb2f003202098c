from dataclasses import dataclass, field
from typing import Iterable

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction

from .decode_slots import decode_slots
from .exceptions import DuplicateImage, InvalidImage
from .imaging import check_image, thumbnail_bytes
from .models import TAG_MAX_CHARS, Image
from .signals import images_need_embedding


@dataclass(frozen=True)
class ImageInput:
    content: bytes
    title: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    category: str = ""
    source: str = ""
    license: str = ""
    name: str = ""  # where it came from, for messages only


@dataclass
class ImportReport:
    created: list[Image] = field(default_factory=list)
    duplicates: list[tuple[ImageInput, int]] = field(default_factory=list)
    invalid: list[tuple[ImageInput, str]] = field(default_factory=list)
    ids_by_name: dict[str, int] = field(default_factory=dict)  # created or already there, by ImageInput.name


def text_problem(item: ImageInput) -> str | None:
    """Why the text cannot be stored: PostgreSQL holds no NUL and psycopg encodes no lone surrogate."""
    fields = [("title", item.title), ("description", item.description), ("category", item.category)]
    fields += [("source", item.source), ("license", item.license)] + [("a tag", str(tag)) for tag in item.tags]
    for name, value in fields:
        if "\x00" in value:
            return f"{name} contains a NUL character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return f"{name} is not valid Unicode (it holds a lone surrogate)"
    return None


def clean_tags(tags: Iterable[str]) -> list[str]:
    seen = []
    for tag in tags:
        tag = " ".join(str(tag).replace("_", " ").split()).lower()[:TAG_MAX_CHARS]
        if tag and tag not in seen:
            seen.append(tag)
    return seen


def request_embedding_on_commit(image_ids: list[int]) -> None:
    if image_ids:
        transaction.on_commit(lambda: images_need_embedding.send(sender=Image, image_ids=image_ids))


def images_create(*, items: Iterable[ImageInput]) -> ImportReport:
    """Validate and store images; a bad or duplicate file is reported and skipped, never fatal.

    All rows of one call commit together, and embedding is requested once for all of
    them after the commit, so a bulk import queues one job per call, not per image.
    """
    report = ImportReport()
    with transaction.atomic():
        for item in items:
            if reason := text_problem(item):
                report.invalid.append((item, reason))
                continue
            try:
                with decode_slots.slot():
                    checked = check_image(
                        item.content,
                        max_bytes=settings.GLIMPSE_MAX_UPLOAD_BYTES,
                        max_pixels=settings.GLIMPSE_MAX_PIXELS,
                        max_aspect_ratio=settings.GLIMPSE_MAX_ASPECT_RATIO,
                    )
            except InvalidImage as error:
                report.invalid.append((item, str(error)))
                continue
            existing = Image.objects.filter(content_hash=checked.content_hash).values_list("id", flat=True).first()
            if existing is not None:
                report.duplicates.append((item, existing))
                report.ids_by_name[item.name] = existing
                continue
            name = f"{checked.content_hash[:2]}/{checked.content_hash}"
            image = Image(
                title=item.title.strip()[:300],
                description=item.description.strip(),
                tags=clean_tags(item.tags),
                category=item.category.strip()[:200],
                source=item.source.strip()[:500],
                license=item.license.strip()[:100],
                content_hash=checked.content_hash,
                width=checked.width,
                height=checked.height,
            )
            image.file.save(f"{name}.{checked.extension}", ContentFile(checked.content), save=False)
            image.thumbnail.save(
                f"{name}.webp",
                ContentFile(thumbnail_bytes(checked.rgb, size=settings.GLIMPSE_THUMBNAIL_SIZE)),
                save=False,
            )
            try:
                with transaction.atomic():
                    image.save()
            except IntegrityError:
                # Another process stored the same file between our check and our insert.
                existing = Image.objects.filter(content_hash=checked.content_hash).values_list("id", flat=True).first()
                report.duplicates.append((item, existing))
                report.ids_by_name[item.name] = existing
                continue
            report.created.append(image)
            report.ids_by_name[item.name] = image.id
        request_embedding_on_commit([image.id for image in report.created])
    return report


def image_create(**fields) -> Image:
    """One image; raises InvalidImage or DuplicateImage instead of reporting."""
    report = images_create(items=[ImageInput(**fields)])
    if report.invalid:
        raise InvalidImage(report.invalid[0][1])
    if report.duplicates:
        raise DuplicateImage(report.duplicates[0][1])
    return report.created[0]


def images_request_embedding(*, image_ids: Iterable[int]) -> int:
    """Mark images pending again and queue them; returns how many were marked."""
    image_ids = list(image_ids)
    with transaction.atomic():
        count = Image.objects.filter(id__in=image_ids).update(
            embedding_status=Image.EmbeddingStatus.PENDING, embedding_error=""
        )
        request_embedding_on_commit(image_ids)
    return count


def image_tags_add(*, image_id: int, tags: Iterable[str]) -> list[str]:
    """Add tags a curator accepted and re-embed the image, whose text changed; returns the
    tags that were new."""
    with transaction.atomic():
        image = Image.objects.select_for_update().get(id=image_id)
        added = [tag for tag in clean_tags(tags) if tag not in image.tags]
        if added:
            Image.objects.filter(id=image_id).update(
                tags=image.tags + added, embedding_status=Image.EmbeddingStatus.PENDING, embedding_error=""
            )
            request_embedding_on_commit([image_id])
    return added
