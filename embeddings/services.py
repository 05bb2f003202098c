import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

import django_rq
import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from catalog.exceptions import InvalidImage
from catalog.imaging import decode
from catalog.models import Image

from . import encoders
from .batches import EncodedBatch, batch_encode, mark_failed
from .borrowing import neighbour_vectors_refresh, neighbours_fill
from .exceptions import EmptyCatalog, InvalidVector, PrecisionMismatch, VersionStateError
from .indexes import version_indexes_create, version_indexes_drop
from .models import ImageEmbedding, ModelVersion
from .queues import BACKFILL_JOB, JOB, QUEUE, TRAINING_QUEUE
from .rows import version_backfill_chunk, version_rows_write
from .selectors import (
    bare_images_near,
    base_rows_missing,
    queued_image_ids,
    version_active,
    version_base,
    version_number_next,
    versions_written,
)
from .spaces import BridgeSpace
from .zero_shot import PRIOR_SAMPLE, ZeroShotRecipe

logger = logging.getLogger("glimpse.embeddings")


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


def version_precision_check(*, version: ModelVersion) -> None:
    """PrecisionMismatch unless the encoders compute in the precision of `version`'s vectors.

    Versions that hold no vectors yet (a new catalog) take the encoders' precision: a
    catalog keeps the precision of its first vectors, and one version never mixes two.
    """
    wanted = encoders.precision()
    if version.precision == wanted:
        return
    ModelVersion.objects.exclude(Exists(ImageEmbedding.objects.filter(version_id=OuterRef("id")))).update(precision=wanted)
    version.refresh_from_db(fields=["precision"])
    if version.precision != wanted:
        raise PrecisionMismatch(
            f"this process computes in {wanted} (GLIMPSE_INFERENCE_PRECISION) but v{version.number}'s vectors were "
            f"computed in {version.precision}; set GLIMPSE_INFERENCE_PRECISION={version.precision} on every worker"
        )


def images_embed(*, image_ids: list[int], version: ModelVersion | None = None) -> EmbedReport:
    """Compute and store vectors for the given images, in bulk, for every version that
    needs them (the base, the active one, any being backfilled; or the base and `version`).

    The CNN and text tower run once; trained versions apply their heads to those outputs.
    A file that cannot be read or decoded fails alone with its reason. An error in the
    encoders fails the whole batch with the reason and is raised for the queue to record;
    encoders set to another precision than the vectors' raise before anything is read.
    """
    base = version_base()
    version_precision_check(version=base)
    targets = versions_written() if version is None else sorted({base, version}, key=lambda item: item.number)
    active = next((target for target in targets if target.state == ModelVersion.State.ACTIVE), None)
    images = list(Image.objects.filter(id__in=image_ids).order_by("id"))
    # The multilingual tower runs when a version written needs it; the base rows keep its outputs too.
    batch = batch_encode(images=images, space=BridgeSpace(multilingual=any(target.multilingual for target in targets)), active=active)
    batch_store(batch=batch, images=images, targets=targets, active=active)
    return EmbedReport(embedded=[image.id for image in batch.readable], failed=batch.failed)


def batch_store(*, batch: EncodedBatch, images: list[Image], targets: list[ModelVersion], active: ModelVersion | None) -> None:
    """Every target version's rows for the batch, its bare images' borrowed words and, in
    `active`, each image's state, in one transaction. An invalid vector is found before
    anything is written: the batch's images fail with the reason, and it is raised."""
    ids = [image.id for image in batch.readable]
    try:
        with transaction.atomic():
            if batch.base is not None:
                for target in targets:
                    version_rows_write(version=target, image_ids=ids, base=batch.base, texts=batch.texts)
            for target in targets:
                # The batch's bare images borrow words now; bare images near its described ones
                # may have found closer words in them.
                neighbour_vectors_refresh(version=target, image_ids=ids + bare_images_near(version=target, image_ids=ids))
            if active is not None:
                Image.objects.filter(id__in=ids).update(embedding_status=Image.EmbeddingStatus.READY, embedding_error="")
            mark_failed(active, batch.failed)
    except InvalidVector as error:
        mark_failed(active, {image.id: f"the encoder gave an invalid vector: {error}" for image in images})
        raise


def version_zero_shot_create(
    *, classifier_weight: np.ndarray, classifier_bias: np.ndarray, class_embeddings: np.ndarray, sample: int = PRIOR_SAMPLE
) -> ModelVersion:
    """A new zero-shot version adapted to the catalog as it is now (zero_shot.py): the class
    prior is estimated on up to `sample` images drawn at random from the base rows. It is
    not serving yet; version_start_release backfills it and switches to it."""
    base = version_base()
    features = list(
        ImageEmbedding.objects.filter(version=base, feature_vector__isnull=False).order_by("?").values_list("feature_vector", flat=True)[:sample]
    )
    if not features:
        raise EmptyCatalog("no image has been embedded yet: the class prior is estimated on the catalog's images")
    recipe = ZeroShotRecipe.from_catalog(
        features=np.stack(features), classifier_weight=classifier_weight, classifier_bias=classifier_bias, class_embeddings=class_embeddings
    )
    with transaction.atomic():
        number = version_number_next()
        return ModelVersion.objects.create(
            number=number,
            kind=ModelVersion.Kind.ZERO_SHOT,
            state=ModelVersion.State.TRAINING,
            image_model=base.image_model,
            text_model=base.text_model,
            multilingual_text_model=version_active().multilingual_text_model,
            precision=base.precision,
            weights=recipe.to_bytes(),
            trained_from=base,
            metrics={"prior_images": len(features)},
            notes=f"label bridge with the class prior of {len(features)} catalog images removed and the class names centred",
        )


def version_progress_record(*, version: ModelVersion, stage: str, started: float, epoch: int = 0, epochs: int = 0, epoch_started: float | None = None) -> None:
    """How far a training run has got, on the version's row (the admin reads it while the
    run goes on): the stage, the epochs done, the seconds since `started` (a
    time.monotonic() reading) and, from the epochs' pace since `epoch_started`, the
    seconds left."""
    now = time.monotonic()
    eta = round((now - epoch_started) / epoch * (epochs - epoch)) if epoch and epoch_started is not None else None
    progress = {"stage": stage, "epoch": epoch, "epochs": epochs, "elapsed_s": round(now - started), "eta_s": eta, "at": timezone.now().isoformat()}
    ModelVersion.objects.filter(id=version.id).update(metrics={"progress": progress})


def version_start_release(*, version: ModelVersion) -> None:
    """Queue the job that indexes and backfills the version while the active one keeps serving.

    Used for a newly trained version and for a rollback alike; a version whose vectors
    were dropped is rebuilt from the base rows and its stored weights.
    """
    version_mark_backfilling(version=version)
    transaction.on_commit(lambda: django_rq.get_queue(TRAINING_QUEUE).enqueue(BACKFILL_JOB, version.id, job_timeout=6 * 3600))


def version_mark_backfilling(*, version: ModelVersion) -> None:
    if version.state == ModelVersion.State.ACTIVE:
        raise VersionStateError(f"{version} is already active")
    ModelVersion.objects.filter(id=version.id).update(state=ModelVersion.State.BACKFILLING, vectors_dropped=False)
    version.refresh_from_db()


def version_backfill(*, version: ModelVersion) -> int:
    """Index and fill a backfilling version, then switch every search to it (the release
    job's work); returns the rows written. Searches stay on the old version until the switch."""
    written = version_fill(version=version)
    version_activate(version=version)
    return written


def version_fill(*, version: ModelVersion) -> int:
    """Index a new version and write its rows from the base rows (after giving those the
    multilingual tower's vectors where the version has that tower and they lack them)."""
    if version.multilingual:
        base_multilingual_fill()
    version_indexes_create(version=version)
    written = 0
    while count := version_backfill_chunk(version=version):
        written += count
    # Borrowed words are means of this version's description vectors, so they come last.
    neighbours_fill(version=version)
    return written


def base_multilingual_fill(*, chunk: int = 64) -> int:
    """Give the base rows that lack them the multilingual tower's vectors (the bridge through
    its class names, its vectors of the words): what a catalog embedded before the tower
    existed needs before a version with it can be filled. Runs the CNN again over those
    pictures, in chunks; a file that can no longer be read is passed with a warning (its
    picture stays out of the multilingual lists). Returns the rows given vectors."""
    base = version_base()
    space = BridgeSpace(multilingual=True)
    after, written = 0, 0
    while rows := list(
        base.embeddings.filter(multilingual_image_vector__isnull=True, image_id__gt=after).order_by("image_id").select_related("image")[:chunk]
    ):
        after = rows[-1].image_id
        pixels, readable = [], []
        for row in rows:
            try:
                with row.image.file.open("rb") as handle:
                    rgb = decode(handle.read(), max_pixels=settings.GLIMPSE_MAX_PIXELS, max_aspect_ratio=settings.GLIMPSE_MAX_ASPECT_RATIO).rgb
            except (InvalidImage, OSError) as error:
                logger.warning("image %s gets no multilingual bridge vector: its file cannot be read (%s)", row.image_id, error)
                continue
            pixels.append(space.preprocess(rgb))
            readable.append(row)
        described = [row for row in rows if row.text_vector is not None]
        words = space.embed_multilingual_texts([row.image.text for row in described]) if described else []
        for row, vector in zip(described, words):
            row.multilingual_text_vector = vector
        if readable:
            for row, vector in zip(readable, space.embed_image_batch(np.stack(pixels)).multilingual):
                row.multilingual_image_vector = vector
        ImageEmbedding.objects.bulk_update(rows, ["multilingual_image_vector", "multilingual_text_vector"])
        written += len(readable)
        logger.info("multilingual vectors for %s base rows so far", written)
    neighbours_fill(version=base)
    return written


def version_activate(*, version: ModelVersion) -> ModelVersion:
    """Switch every search to `version` in one transaction; the previous one retires."""
    with transaction.atomic():
        # Lock the serving version and this one, so two switches cannot interleave.
        locked = ModelVersion.objects.select_for_update().filter(Q(state=ModelVersion.State.ACTIVE) | Q(id=version.id))
        version = next(item for item in locked if item.id == version.id)
        if version.state != ModelVersion.State.BACKFILLING:
            raise VersionStateError(f"{version} is {version.state}; only a backfilled version can be activated")
        missing = base_rows_missing(version).count()
        if missing:
            raise VersionStateError(f"{version} still lacks vectors for {missing} images")
        now = timezone.now()
        ModelVersion.objects.filter(state=ModelVersion.State.ACTIVE).update(state=ModelVersion.State.RETIRED, retired_at=now)
        ModelVersion.objects.filter(id=version.id).update(state=ModelVersion.State.ACTIVE, activated_at=now)
    version.refresh_from_db()
    logger.info("model %s is now active", version)
    return version


def version_drop_vectors(*, version: ModelVersion) -> int:
    """Free a retired trained or zero-shot version's rows and indexes; its weights stay, so it can come back."""
    if version.state != ModelVersion.State.RETIRED or version.kind == ModelVersion.Kind.BRIDGE:
        raise VersionStateError(f"only retired trained versions can drop their vectors, not {version}")
    with transaction.atomic():
        deleted, _ = ImageEmbedding.objects.filter(version=version).delete()
        ModelVersion.objects.filter(id=version.id).update(vectors_dropped=True)
    version_indexes_drop(version=version)
    return deleted
