"""RQ jobs: thin adapters over services, keyed by ids."""
from datetime import timedelta

from .borrowing import neighbour_sweep, neighbours_fill
from .models import ModelVersion
from .picture_text import pictures_read, reading_enqueue, reading_sweep
from .selectors import versions_written
from .services import images_embed, version_backfill


def embed_images(image_ids: list[int], version_id: int | None = None) -> dict:
    version = ModelVersion.objects.get(id=version_id) if version_id else None
    report = images_embed(image_ids=image_ids, version=version)
    if version is None:
        # Their text next, on its own queue: searchable by their vectors meanwhile.
        reading_enqueue(image_ids=unread(report.embedded))
    return {"embedded": len(report.embedded), "failed": len(report.failed)}


def unread(image_ids: list[int]) -> list[int]:
    from catalog.models import Image

    return list(Image.objects.filter(id__in=image_ids, picture_text_state=Image.PictureTextState.PENDING).values_list("id", flat=True))


def read_pictures(image_ids: list[int]) -> dict:
    report = pictures_read(image_ids=image_ids)
    return {"read": len(report.read), "with_text": sum(1 for text in report.read.values() if text), "failed": len(report.failed)}


def backfill_version(version_id: int) -> dict:
    """Index, fill and then activate a version; searches stay on the old one until the switch."""
    version = ModelVersion.objects.get(id=version_id)
    return {"version": version.number, "backfilled": version_backfill(version=version)}


def sweep(*, grace: timedelta = timedelta(minutes=10), borrow_all: bool = False) -> dict:
    """Scheduled (and `manage.py embed_sweep`): queue pending images that no job covers
    (Redis was down, a worker died), lend words to images without text that have none yet
    (a page per version, or with `borrow_all` every one), and queue the embedded pictures
    whose text waits to be read."""
    from .services import embedding_sweep

    borrow = neighbours_fill if borrow_all else neighbour_sweep
    borrowed = sum(borrow(version=version) for version in versions_written())
    return {"queued": embedding_sweep(grace=grace), "borrowed": borrowed, "reading": reading_sweep()}
