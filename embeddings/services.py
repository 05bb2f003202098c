import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from queue import Empty, SimpleQueue

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
from .bulk import embeddings_upsert_columns
from .exceptions import EmptyCatalog, InvalidVector, PrecisionMismatch, VersionStateError
from .indexes import version_indexes_create, version_indexes_drop
from .models import ImageEmbedding, ModelVersion
from .neighbours import borrowed_text_vector, neighbour_vector
from .queues import BACKFILL_JOB, JOB, QUEUE, TRAINING_QUEUE
from .selectors import (
    bare_images_near,
    base_rows_missing,
    described_neighbours,
    queued_image_ids,
    version_active,
    version_base,
    version_number_next,
    versions_written,
)
from .spaces import BridgeSpace, ImageVectors, space_for
from .zero_shot import PRIOR_SAMPLE, ZeroShotRecipe

logger = logging.getLogger("glimpse.embeddings")

# Images the encoder waits for before a pass while files still decode (images_encode_as_decoded).
SMALLEST_PASS = 8


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
    # The multilingual tower runs when a version written needs it; the base rows keep its outputs too.
    bridge = BridgeSpace(multilingual=any(target.multilingual for target in targets))
    report = EmbedReport()
    images = list(Image.objects.filter(id__in=image_ids).order_by("id"))
    readable: list[Image] = []
    # Decoding stays on this thread (Pillow's bomb check relies on process-wide warning
    # filters); the encoders run on another while the files decode, as ONNX Runtime,
    # OpenVINO and torch all release the GIL: first the descriptions, known before any
    # file is read, then the images, each pass taking every image decoded by then.
    decoded: SimpleQueue = SimpleQueue()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="encoder") as encoder:
        described = [image for image in images if image.text]
        describing = encoder.submit(texts_embed, bridge, [image.text for image in described])
        encoding = encoder.submit(images_encode_as_decoded, bridge, decoded)
        try:
            for image in images:
                try:
                    with image.file.open("rb") as handle:
                        rgb = decode(
                            handle.read(), max_pixels=settings.GLIMPSE_MAX_PIXELS, max_aspect_ratio=settings.GLIMPSE_MAX_ASPECT_RATIO
                        ).rgb
                    decoded.put(bridge.preprocess(rgb))
                    readable.append(image)
                except InvalidImage as error:
                    report.failed[image.id] = f"cannot decode the stored file: {error}"
                except OSError as error:
                    report.failed[image.id] = f"cannot read the stored file {image.file.name}: {error.strerror or error}"
        finally:
            decoded.put(None)  # even on an unexpected error, or the encoder would wait for ever

        try:
            position_of = {image.id: position for position, image in enumerate(readable)}
            texts = describing.result().at(position_of, [image.id for image in described])
            base_vectors = encoding.result()
        except Exception as error:
            reason = f"the encoder failed on this batch: {type(error).__name__}: {error}"
            mark_failed(active, {image.id: reason for image in images})
            raise

    ids = [image.id for image in readable]
    try:
        with transaction.atomic():
            if base_vectors is not None:
                for target in targets:
                    version_rows_write(version=target, image_ids=ids, base=base_vectors, texts=texts)
            for target in targets:
                # The batch's bare images borrow words now; bare images near its described ones
                # may have found closer words in them.
                neighbour_vectors_refresh(version=target, image_ids=ids + bare_images_near(version=target, image_ids=ids))
            if active is not None:
                Image.objects.filter(id__in=[image.id for image in readable]).update(
                    embedding_status=Image.EmbeddingStatus.READY, embedding_error=""
                )
            mark_failed(active, report.failed)
    except InvalidVector as error:
        # Checked before anything is written: the batch's images fail with the reason.
        mark_failed(active, {image.id: f"the encoder gave an invalid vector: {error}" for image in images})
        raise
    report.embedded = [image.id for image in readable]
    return report


@dataclass(frozen=True)
class TextVectors:
    """The frozen text towers' vectors of some images' words, by position in a batch (only
    where there are words); `multilingual` is empty where that tower did not run."""

    english: dict[int, np.ndarray]
    multilingual: dict[int, np.ndarray] = field(default_factory=dict)

    def at(self, position_of: dict[int, int], image_ids: list[int]) -> "TextVectors":
        """Keyed by index into `image_ids` (as texts_embed returns them), re-keyed by each
        image's position in `position_of`; images not there (unreadable files) are left out."""
        where = {index: position_of[image_id] for index, image_id in enumerate(image_ids) if image_id in position_of}
        return TextVectors(
            english={where[index]: vector for index, vector in self.english.items() if index in where},
            multilingual={where[index]: vector for index, vector in self.multilingual.items() if index in where},
        )


def texts_embed(space: BridgeSpace, texts: list[str]) -> "TextVectors":
    """Both towers' vectors of `texts`, keyed by index into `texts` (what `TextVectors.at` re-keys)."""
    english = space.embed_texts(texts)
    multilingual = space.embed_multilingual_texts(texts) if space.multilingual and texts else []
    return TextVectors(english=dict(enumerate(english)), multilingual=dict(enumerate(multilingual)))


def images_encode_as_decoded(space, decoded: SimpleQueue) -> ImageVectors | None:
    """Encode preprocessed images from `decoded` until a None arrives; None if there were none.

    Each pass waits for SMALLEST_PASS images (or the end), then takes every image decoded
    by then: the encoder starts early, later passes find most of the batch ready, and it
    never runs one image at a time (at batch 1 OpenVINO takes several times as long per image).
    """
    parts, ended = [], False
    while not ended:
        pixels = []
        while not ended and len(pixels) < SMALLEST_PASS:
            item = decoded.get()
            ended = item is None
            pixels += [] if ended else [item]
        while not ended:
            try:
                item = decoded.get_nowait()
            except Empty:
                break
            ended = item is None
            pixels += [] if ended else [item]
        if pixels:
            parts.append(space.embed_image_batch(np.stack(pixels)))
    return ImageVectors.concatenate(parts) if parts else None


def mark_failed(active: ModelVersion | None, reasons: dict[int, str]) -> None:
    if active is None:
        return
    for image_id, reason in reasons.items():
        logger.warning("image %s failed to embed: %s", image_id, reason)
        Image.objects.filter(id=image_id).update(embedding_status=Image.EmbeddingStatus.FAILED, embedding_error=reason)


def version_vectors(*, version: ModelVersion, base: ImageVectors, texts: TextVectors) -> dict[str, Sequence]:
    """One version's vector columns, as embeddings_upsert_columns takes them, from
    frozen-tower outputs (by position; text vectors only where there are words). The
    multilingual tower's columns go to the versions that have it and to the base rows,
    which keep them for every version to come."""
    space = space_for(version)
    vectors = space.from_base(base)
    count = len(vectors.text_space)
    positions = list(texts.english)
    english = dict(zip(positions, space.texts_from_base(np.stack([texts.english[p] for p in positions])))) if positions else {}
    columns = {
        "image_vector": vectors.text_space,
        "text_vector": [english.get(position) for position in range(count)],
        "feature_vector": vectors.features,
    }
    if base.multilingual is not None and (version.multilingual or version.id == version_base().id):
        columns["multilingual_image_vector"] = base.multilingual
        columns["multilingual_text_vector"] = [texts.multilingual.get(position) for position in range(count)]
    return columns


def version_rows_write(*, version: ModelVersion, image_ids: list[int], base: ImageVectors, texts: TextVectors) -> int:
    """Upsert one version's rows for `image_ids` by binary COPY."""
    return embeddings_upsert_columns(
        image_ids=image_ids, version_ids=[version.id] * len(image_ids), vectors=version_vectors(version=version, base=base, texts=texts)
    )


def version_backfill_chunk(*, version: ModelVersion, limit: int = 2000) -> int:
    """Write `version`'s rows for up to `limit` images that have base rows but none of its own.

    Pure arithmetic on the stored frozen-tower vectors: the CNN does not run again.
    """
    rows = list(
        base_rows_missing(version)
        .order_by("image_id")
        .values_list("image_id", "image_vector", "text_vector", "feature_vector", "multilingual_image_vector", "multilingual_text_vector")[:limit]
    )
    if not rows:
        return 0
    base = ImageVectors(
        text_space=np.stack([row[1] for row in rows]).astype(np.float32),
        features=np.stack([row[3] for row in rows]).astype(np.float32),
        # None for a picture whose file could not be read when the tower was added (base_multilingual_fill)
        multilingual=[None if row[4] is None else np.asarray(row[4], dtype=np.float32) for row in rows] if version.multilingual else None,
    )
    texts = TextVectors(
        english={position: np.asarray(row[2], dtype=np.float32) for position, row in enumerate(rows) if row[2] is not None},
        multilingual={position: np.asarray(row[5], dtype=np.float32) for position, row in enumerate(rows) if row[5] is not None},
    )
    # An upsert: a worker may have written some of these rows meanwhile, with the same vectors.
    version_rows_write(version=version, image_ids=[row[0] for row in rows], base=base, texts=texts)
    return len(rows)


def neighbour_vectors_refresh(*, version: ModelVersion, image_ids: list[int]) -> int:
    """Store borrowed text vectors (embeddings/neighbours.py) for those of `image_ids` that
    have no text of their own in `version`; returns how many were written.

    One statement finds every image's nearest described images through the version's
    HNSW index on CNN features, one more fetches their description vectors.
    """
    if not image_ids:
        return 0
    near_by_image = described_neighbours(version=version, image_ids=image_ids)
    if not near_by_image:
        return 0
    lenders = {neighbour_id for near in near_by_image.values() for neighbour_id, _ in near}
    stored = {
        row[0]: row[1:]
        for row in version.embeddings.filter(image_id__in=set(near_by_image) | lenders).values_list(
            "image_id", "id", "image_vector", "text_vector", "multilingual_image_vector", "multilingual_text_vector"
        )
    }
    rows = []
    for image_id, near in near_by_image.items():
        similarities = np.array([similarity for _, similarity in near])
        row = ImageEmbedding(id=stored[image_id][0])
        # The same look-alikes lend their words in each tower's space.
        for column, image_column, text_column in (("neighbour_vector", 1, 2), ("multilingual_neighbour_vector", 3, 4)):
            words = [stored[neighbour_id][text_column] for neighbour_id, _ in near]
            if stored[image_id][image_column] is None or any(vector is None for vector in words):
                continue
            borrowed = borrowed_text_vector(similarities=similarities, text_vectors=np.stack(words))
            setattr(row, column, neighbour_vector(borrowed=borrowed, image_vector=stored[image_id][image_column], borrowed_share=version.borrowed_share))
        rows.append(row)
    ImageEmbedding.objects.bulk_update(rows, ["neighbour_vector", "multilingual_neighbour_vector"])
    return len(rows)


def neighbours_waiting(*, version: ModelVersion, after: int = 0, limit: int = 1000) -> list[int]:
    """Bare images of `version` (ids above `after`, in order) with no borrowed words yet in a
    space that needs them: embedded before any described image existed, or before the column."""
    missing = Q(neighbour_vector__isnull=True) | Q(multilingual_image_vector__isnull=False, multilingual_neighbour_vector__isnull=True)
    return list(
        version.embeddings.filter(missing, text_vector__isnull=True, feature_vector__isnull=False, image_id__gt=after)
        .order_by("image_id")
        .values_list("image_id", flat=True)[:limit]
    )


def neighbour_sweep(*, version: ModelVersion, limit: int = 1000) -> int:
    """Give borrowed words to up to `limit` bare images of `version` that have none yet."""
    if not version.embeddings.filter(text_vector__isnull=False).exists():
        return 0
    return neighbour_vectors_refresh(version=version, image_ids=neighbours_waiting(version=version, limit=limit))


def neighbours_fill(*, version: ModelVersion) -> int:
    """Borrowed words for every bare image of `version` that lacks them, in pages; returns
    how many were written. A page whose words cannot be made (its look-alikes lack a
    space's vectors) is passed, never retried in a loop."""
    if not version.embeddings.filter(text_vector__isnull=False).exists():
        return 0
    after, written = 0, 0
    while waiting := neighbours_waiting(version=version, after=after):
        written += neighbour_vectors_refresh(version=version, image_ids=waiting)
        after = waiting[-1]
    return written


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
