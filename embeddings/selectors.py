from .exceptions import NoActiveVersion
from .models import ModelVersion


def version_active() -> ModelVersion:
    version = ModelVersion.objects.filter(state=ModelVersion.State.ACTIVE).first()
    if version is None:
        raise NoActiveVersion("no model version is active; run `manage.py migrate`, which creates version 1")
    return version
