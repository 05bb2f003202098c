"""RQ jobs for learning from judgments (training queue), and judged queries' vectors (embeddings queue)."""
import logging

from django.conf import settings

from embeddings.selectors import version_base
from embeddings.spaces import space_for

from .judgments import judged_queries_embed
from .training import new_judgments_since_last_training, training_run

logger = logging.getLogger("glimpse.training")


def train_version(seed: int = 0) -> dict:
    version = training_run(seed=seed)
    return {"version": version.number, "released": version.metrics.get("released", False), "notes": version.notes}


def train_when_enough_judgments() -> dict:
    """The scheduled check: train only when enough new judgments have arrived."""
    waiting = new_judgments_since_last_training()
    if waiting < settings.GLIMPSE_TRAIN_AFTER_JUDGMENTS:
        return {"trained": False, "new_judgments": waiting}
    return {"trained": True, **train_version()}


def embed_judged_queries() -> dict:
    """Text-tower vectors for judged queries that have none (queued when a judgment commits)."""
    return {"embedded": judged_queries_embed(encode=space_for(version_base()).embed_texts)}
