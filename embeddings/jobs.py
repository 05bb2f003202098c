"""RQ jobs: thin adapters over services, keyed by ids."""
from .models import ModelVersion
from .selectors import versions_written
from .services import images_embed, neighbour_sweep, version_backfill


def embed_images(image_ids: list[int], version_id: int | None = None) -> dict:
    version = ModelVersion.objects.get(id=version_id) if version_id else None
    report = images_embed(image_ids=image_ids, version=version)
    return {"embedded": len(report.embedded), "failed": len(report.failed)}


def backfill_version(version_id: int) -> dict:
    """Index, fill and then activate a version; searches stay on the old one until the switch."""
    version = ModelVersion.objects.get(id=version_id)
    return {"version": version.number, "backfilled": version_backfill(version=version)}


def sweep() -> dict:
    """Scheduled: queue pending images that no job covers (Redis was down, a worker died),
    and lend words to images without text that have none yet."""
    from .services import embedding_sweep

    borrowed = sum(neighbour_sweep(version=version) for version in versions_written())
    return {"queued": embedding_sweep(), "borrowed": borrowed}
