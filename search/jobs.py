"""RQ jobs for learning from judgments (training queue)."""
import logging

from django.conf import settings

from .analytics import analytics_refresh
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


def refresh_analytics() -> None:
    """The scheduled recomputation of the analytics views that walk the HNSW graphs."""
    analytics_refresh()
