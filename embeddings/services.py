import logging
from dataclasses import dataclass, field
from datetime import timedelta

import django_rq
import torch
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from catalog.exceptions import InvalidImage
from catalog.imaging import decode
from catalog.models import Image

from .models import ImageEmbedding, ModelVersion
from .selectors import version_active
from .spaces import space_for

logger = logging.getLogger("glimpse.embeddings")

QUEUE = "embeddings"
JOB = "embeddings.jobs.embed_images"


@dataclass
class EmbedReport:
    embedded: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)


def embeddings_enqueue(*, image_ids: list[int], version_id: int | None = None) -> int:
    """Queue embedding jobs in batches; returns the number of jobs."""
    queue = django_rq.get_queue(QUEUE)
    size = settings.GLIMPSE_EMBED_BATCH_SIZE
    ids = sorted(set(image_ids))
    for start in range(0, len(ids), size):
        queue.enqueue(JOB, ids[start : start + size], version_id, result_ttl=3600, failure_ttl=7 * 86400)
    return (len(ids) + size - 1) // size


def queued_image_ids() -> set[int]:
    queue = django_rq.get_queue(QUEUE)
    ids: set[int] = set()
    for job in queue.get_jobs():
        if job.func_name == JOB and job.args:
            ids.update(job.args[0])
    return ids


def embedding_sweep(*, grace: timedelta = timedelta(minutes=10)) -> int:
    """Queue pending images that no queued job covers and that have waited past `grace`.

    Catches what enqueue-on-commit missed: Redis was down, a worker died mid-batch.
    Re-embedding is an upsert, so an image queued twice is wasted work, never a duplicate.
    """
    waiting = Image.objects.filter(
        embedding_status=Image.EmbeddingStatus.PENDING, updated_at__lte=timezone.now() - grace
    ).values_list("id", flat=True)
    missing = set(waiting) - queued_image_ids()
    if missing:
        embeddings_enqueue(image_ids=list(missing))
    return len(missing)


def images_embed(*, image_ids: list[int], version: ModelVersion | None = None) -> EmbedReport:
    """Compute and store one version's vectors for the given images, in bulk.

    A file that cannot be read or decoded fails alone with its reason. An error in the
    encoders fails the whole batch with the reason and is raised for the queue to record.
    """
    version = version or version_active()
    space = space_for(version)
    report = EmbedReport()
    images = list(Image.objects.filter(id__in=image_ids).order_by("id"))
    pixels: list[torch.Tensor] = []
    readable: list[Image] = []
    for image in images:
        try:
            with image.file.open("rb") as handle:
                rgb, _ = decode(handle.read(), max_pixels=settings.GLIMPSE_MAX_PIXELS)
            pixels.append(space.preprocess(rgb))
            readable.append(image)
        except InvalidImage as error:
            report.failed[image.id] = f"cannot decode the stored file: {error}"
        except OSError as error:
            report.failed[image.id] = f"cannot read the stored file {image.file.name}: {error.strerror or error}"

    try:
        image_vectors = space.embed_image_batch(torch.stack(pixels)) if pixels else None
        texted = [image for image in readable if image.text]
        text_vectors = dict(zip((image.id for image in texted), space.embed_texts([image.text for image in texted])))
    except Exception as error:
        reason = f"the encoder failed on this batch: {type(error).__name__}: {error}"
        mark_failed(version, {image.id: reason for image in images})
        raise

    rows = [
        ImageEmbedding(
            image=image,
            version=version,
            image_vector=image_vectors.text_space[position],
            text_vector=text_vectors.get(image.id),
            feature_vector=image_vectors.features[position],
        )
        for position, image in enumerate(readable)
    ]
    with transaction.atomic():
        ImageEmbedding.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["image", "version"],
            update_fields=["image_vector", "text_vector", "feature_vector", "created_at"],
        )
        if version.state == ModelVersion.State.ACTIVE:
            Image.objects.filter(id__in=[image.id for image in readable]).update(
                embedding_status=Image.EmbeddingStatus.READY, embedding_error=""
            )
        mark_failed(version, report.failed)
    report.embedded = [image.id for image in readable]
    return report


def mark_failed(version: ModelVersion, reasons: dict[int, str]) -> None:
    if version.state != ModelVersion.State.ACTIVE:
        return
    for image_id, reason in reasons.items():
        logger.warning("image %s failed to embed: %s", image_id, reason)
        Image.objects.filter(id=image_id).update(embedding_status=Image.EmbeddingStatus.FAILED, embedding_error=reason)
