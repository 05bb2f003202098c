"""How close a result is, in words a person can read, and the cut-off under which results are hidden.

A version is calibrated on the similarities (the query's cosine with the image's best
vector) of judged results: the cut-off is the similarity that best separates results
graded relevant (≥ 2) from the others (largest share of relevant above it minus share of
the others above it), so below it results are rarely relevant; "close" starts at the
relevant results' median. A result's relevance is the share of relevant results it
scores above. Until a version has enough relevant judgments, figures measured on the
evaluation data (`GLIMPSE_RELEVANCE_DEFAULT`) stand in.
"""
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from embeddings.models import ModelVersion

from .evaluation import RELEVANT_GRADE

PERCENTS = np.linspace(0, 100, 11)
MIN_RELEVANT_RESULTS = 20


@dataclass(frozen=True)
class Calibration:
    quantiles: tuple[float, ...]  # similarity at 0, 10, …, 100 % of the relevant results
    cutoff: float
    source: str

    @property
    def close(self) -> float:
        return max(self.quantiles[5], self.cutoff)

    def relevance(self, similarity: float) -> float:
        return float(np.interp(similarity, self.quantiles, PERCENTS / 100))

    def label(self, similarity: float) -> str:
        if similarity >= self.close:
            return "close"
        return "related" if similarity >= self.cutoff else "distant"

    def as_dict(self) -> dict:
        return {"quantiles": list(self.quantiles), "cutoff": self.cutoff, "close": self.close, "source": self.source}


def calibration_for(version: ModelVersion) -> Calibration:
    stored = version.metrics.get("relevance") if version.metrics else None
    if stored:
        return Calibration(quantiles=tuple(stored["quantiles"]), cutoff=stored["cutoff"], source=stored["source"])
    default = settings.GLIMPSE_RELEVANCE_DEFAULT
    return Calibration(quantiles=tuple(default["quantiles"]), cutoff=default["cutoff"], source="evaluation data")


def calibration_from_similarities(relevant: np.ndarray, others: np.ndarray, *, source: str) -> Calibration | None:
    """None when there are too few relevant results (or no others) to say where they end."""
    if len(relevant) < MIN_RELEVANT_RESULTS or not len(others):
        return None
    candidates = np.unique(np.round(np.concatenate([relevant, others]), 4))
    separation = [np.mean(others < value) - np.mean(relevant < value) for value in candidates]
    return Calibration(
        quantiles=tuple(round(float(value), 4) for value in np.percentile(relevant, PERCENTS)),
        cutoff=round(float(candidates[int(np.argmax(separation))]), 4),
        source=source,
    )


def judged_similarities(
    *, query_vectors: np.ndarray, judged: list[dict[int, float]], image_vectors: dict[int, np.ndarray], text_vectors: dict[int, np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """(relevant, others): each judged result's similarity under one version, its query's
    cosine with the better of the image's two text-space vectors (as the search ranks them)."""
    relevant, others = [], []
    for vector, grades in zip(query_vectors, judged):
        for image_id, grade in grades.items():
            if image_id in image_vectors:
                best = float(image_vectors[image_id] @ vector)
                if image_id in text_vectors:
                    best = max(best, float(text_vectors[image_id] @ vector))
                (relevant if grade >= RELEVANT_GRADE else others).append(best)
    return np.array(relevant, dtype=np.float32), np.array(others, dtype=np.float32)
