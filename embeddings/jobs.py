"""RQ jobs: thin adapters over services, keyed by ids."""
from .models import ModelVersion
from .services import images_embed


def embed_images(image_ids: list[int], version_id: int | None = None) -> dict:
    version = ModelVersion.objects.get(id=version_id) if version_id else None
    report = images_embed(image_ids=image_ids, version=version)
    return {"embedded": len(report.embedded), "failed": len(report.failed)}
