"""How close a result is, in words a person can read, and the cut-offs under which results are hidden.

A result matches a text query through up to three text-space vectors, and their cosines
are not on one scale: the image's bridge vector (words against ImageNet class names)
rarely passes 0.4 even for the right picture, while a description vector (the text tower
against itself) gives 0.3 to unrelated words. So each kind of vector has its own
calibration per version, made from the similarities of judged results: the cut-off is
the similarity that best separates results graded relevant (≥ 2) from the others
(largest share of relevant above it minus share of the others above it), so below it
results are rarely relevant; "close" starts at the relevant results' median. A result's
relevance is the share of relevant results it scores above, on the kind of vector it was
ranked by (its description, else its borrowed words, else the bridge); it is distant when
that vector is under its kind's cut-off. Until a version has
enough relevant judgments for a kind, figures measured on the evaluation data
(`GLIMPSE_RELEVANCE_DEFAULT`, and for a zero-shot version's centred image vectors
`GLIMPSE_RELEVANCE_DEFAULT_ZERO_SHOT`) stand in.
"""
from dataclasses import dataclass

import numpy as np
from django.conf import settings

from embeddings.models import ModelVersion

from .evaluation import RELEVANT_GRADE

PERCENTS = np.linspace(0, 100, 11)
MIN_RELEVANT_RESULTS = 20
# The text-space vectors a result is matched on (embeddings_imageembedding's image_vector,
# text_vector and neighbour_vector), best to worst label order below.
KINDS = ("image", "text", "neighbour")
# The same kinds in the multilingual tower's space (embeddings_imageembedding's multilingual_* columns).
MULTILINGUAL_KINDS = ("multilingual_image", "multilingual_text", "multilingual_neighbour")
LABELS = ("close", "related", "distant")


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


@dataclass(frozen=True)
class Calibrations:
    """One version's calibration per kind of vector."""

    kinds: dict[str, Calibration]

    def judge(self, results: list[dict[str, float]]) -> list[tuple[float, str]]:
        """(relevance, label) of each result from its similarity per kind (at least one):
        its best kind's. One interpolation per kind for all the results: a search judges
        its whole candidate pool, and one call per value cost milliseconds."""
        judged = [[] for _ in results]
        for kind, calibration in self.kinds.items():
            found = [(index, similarities[kind]) for index, similarities in enumerate(results) if kind in similarities]
            if not found:
                continue
            relevances = np.interp([value for _, value in found], calibration.quantiles, PERCENTS / 100)
            for (index, value), relevance in zip(found, relevances):
                judged[index].append((float(relevance), calibration.label(value)))
        return [(max(relevance for relevance, _ in kinds), min((label for _, label in kinds), key=LABELS.index)) for kinds in judged]

    def as_dict(self) -> dict:
        return {kind: calibration.as_dict() for kind, calibration in self.kinds.items()}


def calibration_of(stored: dict, source: str = "") -> Calibration:
    return Calibration(quantiles=tuple(stored["quantiles"]), cutoff=stored["cutoff"], source=stored.get("source", source))


def calibration_for(version: ModelVersion) -> Calibrations:
    """The version's calibrations, one per kind of vector and tower; kinds it has too few
    judgments for fall back to the defaults. A version calibrated before there were kinds
    has one calibration for all of the English tower's."""
    default = settings.GLIMPSE_RELEVANCE_DEFAULT | settings.GLIMPSE_RELEVANCE_DEFAULT_MULTILINGUAL
    if version.kind == ModelVersion.Kind.ZERO_SHOT:
        default = default | settings.GLIMPSE_RELEVANCE_DEFAULT_ZERO_SHOT
    stored = (version.metrics or {}).get("relevance") or {}
    if "quantiles" in stored:
        stored = {kind: stored for kind in KINDS}
    return Calibrations(
        kinds={
            kind: calibration_of(stored[kind]) if kind in stored else calibration_of(default[kind], "evaluation data")
            for kind in KINDS + MULTILINGUAL_KINDS
        }
    )


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


def calibrations_from_similarities(similarities: dict[str, tuple[np.ndarray, np.ndarray]], *, source: str) -> Calibrations | None:
    """The kinds with enough judged results to calibrate (None when there are none)."""
    kinds = {kind: calibration_from_similarities(relevant, others, source=source) for kind, (relevant, others) in similarities.items()}
    kinds = {kind: calibration for kind, calibration in kinds.items() if calibration}
    return Calibrations(kinds=kinds) if kinds else None


def judged_similarities(
    *, query_vectors: np.ndarray, judged: list[dict[int, float]], vectors: dict[str, dict[int, np.ndarray]]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{kind: (relevant, others)}: each judged result's cosine with its query under one
    version, for every kind of vector the image has (`vectors`: kind -> image id -> vector)."""
    split = {kind: ([], []) for kind in vectors}
    for vector, grades in zip(query_vectors, judged):
        for image_id, grade in grades.items():
            for kind, by_image in vectors.items():
                if image_id in by_image:
                    split[kind][0 if grade >= RELEVANT_GRADE else 1].append(float(by_image[image_id] @ vector))
    return {kind: (np.array(relevant, dtype=np.float32), np.array(others, dtype=np.float32)) for kind, (relevant, others) in split.items()}
