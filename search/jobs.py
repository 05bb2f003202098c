"""RQ jobs for learning from judgments (training queue), and judged queries' vectors (embeddings queue).

They import the training module when they run: the admin and the scheduler import this
one, and training brings torch, which they never need."""
import logging

from django.conf import settings

from embeddings.selectors import version_base
from embeddings.spaces import space_for

from .analytics import analytics_refresh
from .judgments import judged_queries_embed

logger = logging.getLogger("glimpse.training")


def train_version(seed: int = 0) -> dict:
    from .training import training_run

    version = training_run(seed=seed)
    return {"version": version.number, "released": version.metrics.get("released", False), "notes": version.notes}


def train_when_enough_judgments() -> dict:
    """The scheduled check: train only when enough new judgments have arrived."""
    from .training import new_judgments_since_last_training

    waiting = new_judgments_since_last_training()
    if waiting < settings.GLIMPSE_TRAIN_AFTER_JUDGMENTS:
        return {"trained": False, "new_judgments": waiting}
    return {"trained": True, **train_version()}


def refresh_analytics() -> None:
    """The scheduled recomputation of the analytics views that walk the HNSW graphs."""
    analytics_refresh()


def embed_judged_queries() -> dict:
    """Text towers' vectors for judged queries that have none (queued when a judgment commits)."""
    space = space_for(version_base())
    multilingual = space.embed_multilingual_texts if settings.GLIMPSE_MULTILINGUAL_TEXT_MODEL else None
    return {"embedded": judged_queries_embed(encode=space.embed_texts, encode_multilingual=multilingual)}


def release_multilingual_version(version_id: int) -> dict:
    """Give an existing catalog the multilingual tower (search/multilingual.py)."""
    from embeddings.models import ModelVersion

    from .multilingual import multilingual_release

    version = multilingual_release(version=ModelVersion.objects.get(id=version_id))
    return {"version": version.number, "state": version.state, "notes": version.notes}
