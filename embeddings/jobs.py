"""RQ jobs: thin adapters over services, keyed by ids."""
from .indexes import version_indexes_create
from .models import ModelVersion
from .services import images_embed, version_activate, version_backfill_chunk


def embed_images(image_ids: list[int], version_id: int | None = None) -> dict:
    version = ModelVersion.objects.get(id=version_id) if version_id else None
    report = images_embed(image_ids=image_ids, version=version)
    return {"embedded": len(report.embedded), "failed": len(report.failed)}


def backfill_version(version_id: int) -> dict:
    """Index, fill and then activate a version; searches stay on the old one until the switch."""
    version = ModelVersion.objects.get(id=version_id)
    version_indexes_create(version=version)
    written = 0
    while count := version_backfill_chunk(version=version):
        written += count
    version_activate(version=version)
    return {"version": version.number, "backfilled": written}


def sweep() -> dict:
    """Scheduled: queue pending images that no job covers (Redis was down, a worker died)."""
    from .services import embedding_sweep

    return {"queued": embedding_sweep()}
