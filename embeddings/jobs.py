"""RQ jobs: thin adapters over services, keyed by ids."""
from .borrowing import neighbour_sweep
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


def sweep() -> dict:
    """Scheduled: queue pending images that no job covers (Redis was down, a worker died),
    and lend words to images without text that have none yet."""
    from .services import embedding_sweep

    borrowed = sum(neighbour_sweep(version=version) for version in versions_written())
    return {"queued": embedding_sweep(), "borrowed": borrowed, "reading": reading_sweep()}
