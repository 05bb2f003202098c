from .exceptions import NoActiveVersion
from .models import ModelVersion


def version_active() -> ModelVersion:
    version = ModelVersion.objects.filter(state=ModelVersion.State.ACTIVE).first()
    if version is None:
        raise NoActiveVersion("no model version is active; run `manage.py migrate`, which creates version 1")
    return version


def version_base() -> ModelVersion:
    """The bridge version: its rows hold the frozen towers' outputs every other version builds on."""
    return ModelVersion.objects.get(kind=ModelVersion.Kind.BRIDGE, number=1)


def versions_written() -> list[ModelVersion]:
    """Versions that new images must get vectors for: the base, the active one, any being backfilled."""
    versions = {version_base()}
    versions.update(ModelVersion.objects.filter(state__in=[ModelVersion.State.ACTIVE, ModelVersion.State.BACKFILLING]))
    return sorted(versions, key=lambda version: version.number)
