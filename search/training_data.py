"""What training reads: the base version's frozen-tower vectors in memory (`Catalog`),
ranked as a version would serve them, and the pairs heads learn from (`training_set`)."""
import numpy as np

from embeddings.models import ImageEmbedding, ModelVersion
from embeddings.neighbours import BORROWED_SHARE, borrowed_text_vector, neighbour_vector
from embeddings.selectors import described_neighbours, version_base
from embeddings.spaces import ImageVectors, space_for
from embeddings.training.trainer import TrainingSet

from .evaluation import rank_in_memory
from .relevance import Calibrations, calibrations_from_similarities, judged_similarities
from .selectors import Filters, checked_vector, fused_ranking, search_depth

HARD_NEGATIVES_PER_QUERY = 20
# Images graded this or better are training targets, in proportion to their grade.
PARTIAL_GRADE = 1


class Catalog:
    """The base version's frozen-tower vectors, in memory, by row, and whose words each
    bare image borrows (the same in every version of one catalog)."""

    def __init__(self):
        rows = list(
            ImageEmbedding.objects.filter(version=version_base())
            .order_by("image_id")
            .values_list("image_id", "image_vector", "text_vector", "feature_vector")
        )
        self.ids = np.array([row[0] for row in rows], dtype=np.int64)
        self.row_of = {image_id: position for position, image_id in enumerate(self.ids)}
        self.bridge = np.stack([row[1] for row in rows]).astype(np.float32)
        self.features = np.stack([row[3] for row in rows]).astype(np.float32)
        self.has_text = np.array([row[2] is not None for row in rows])
        self.texts = np.stack([row[2] if row[2] is not None else np.zeros(self.bridge.shape[1]) for row in rows]).astype(np.float32)
        near = described_neighbours(version=version_base(), image_ids=self.ids[~self.has_text].tolist())
        self.neighbours = {
            self.row_of[image_id]: ([self.row_of[neighbour_id] for neighbour_id, _ in pairs], np.array([similarity for _, similarity in pairs]))
            for image_id, pairs in near.items()
        }

    def vectors(self, space) -> tuple[np.ndarray, np.ndarray]:
        images = space.from_base(ImageVectors(text_space=self.bridge, features=self.features)).text_space
        return images, space.texts_from_base(self.texts)

    def searched(self, space, *, borrowed_share: float = BORROWED_SHARE) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
        """Per row, as `space` would store them: the image vector, the description vector
        and, for a bare image, its neighbour vector (embeddings/neighbours.py)."""
        images, texts = self.vectors(space)
        neighbour = {
            row: neighbour_vector(
                borrowed=borrowed_text_vector(similarities=similarities, text_vectors=texts[neighbour_rows]),
                image_vector=images[row],
                borrowed_share=borrowed_share,
            )
            for row, (neighbour_rows, similarities) in self.neighbours.items()
        }
        return images, texts, neighbour

    def calibration(
        self, space, judged: dict[str, dict[int, float]], raw: np.ndarray, *, source: str, borrowed_share: float = BORROWED_SHARE
    ) -> Calibrations | None:
        """The version's relevance calibration per kind of vector from every judged query
        (search/relevance.py)."""
        images, texts, neighbour = self.searched(space, borrowed_share=borrowed_share)
        rows = {image_id: self.row_of[image_id] for grades in judged.values() for image_id in grades if image_id in self.row_of}
        return calibrations_from_similarities(
            judged_similarities(
                query_vectors=space.texts_from_base(raw) if len(raw) else raw,
                judged=list(judged.values()),
                vectors={
                    "image": {image_id: images[row] for image_id, row in rows.items()},
                    "text": {image_id: texts[row] for image_id, row in rows.items() if self.has_text[row]},
                    "neighbour": {image_id: neighbour[row] for image_id, row in rows.items() if row in neighbour},
                },
            ),
            source=source,
        )

    def rankings(self, space, queries: list[str], raw_queries: np.ndarray, *, borrowed_share: float = BORROWED_SHARE) -> dict[str, list[int]]:
        """Semantic-mode rankings as the version would serve them: described images by their
        descriptions, bare ones by their neighbour vectors, else their image vectors."""
        images, texts, neighbour = self.searched(space, borrowed_share=borrowed_share)
        words = images.copy()
        words[self.has_text] = texts[self.has_text]
        for row, vector in neighbour.items():
            words[row] = vector
        ranked = rank_in_memory(space.texts_from_base(raw_queries), words, self.has_text, depth=search_depth())
        return {query: self.ids[order].tolist() for query, order in zip(queries, ranked)}


def training_set(catalog: Catalog, judged: dict[str, dict[int, float]], queries: list[str], raw: np.ndarray, active: ModelVersion) -> TrainingSet:
    """The catalog's description pairs, and each judged query with every image graded ≥ 1,
    weighted by grade: partly relevant images teach what a query is about, and there are
    ten of them for every exact match a curator finds in the top 10."""
    texts, image_rows, negatives, weights = [], [], [], []
    for row in np.flatnonzero(catalog.has_text):
        texts.append(catalog.texts[row])
        image_rows.append(row)
        negatives.append(np.zeros(0, dtype=np.int64))
        weights.append(1.0)
    served = space_for(active).texts_from_base(raw) if len(raw) else raw
    for query, vector, served_vector in zip(queries, raw, served):
        grades = judged[query]
        positives = {catalog.row_of[i]: grade for i, grade in grades.items() if grade >= PARTIAL_GRADE and i in catalog.row_of}
        if not positives:
            continue
        judged_rows = {catalog.row_of[i] for i in grades if i in catalog.row_of}
        ranking = fused_ranking(mode="semantic", vector=checked_vector(served_vector), text="", version=active, filters=Filters())
        mined = [catalog.row_of[i] for i, _ in ranking if i in catalog.row_of and catalog.row_of[i] not in judged_rows][:HARD_NEGATIVES_PER_QUERY]
        graded_zero = [catalog.row_of[i] for i, grade in grades.items() if grade == 0 and i in catalog.row_of]
        query_negatives = np.array(sorted(set(mined) | set(graded_zero)), dtype=np.int64)
        total = sum(positives.values())
        for row, grade in positives.items():
            texts.append(vector)
            image_rows.append(row)
            negatives.append(query_negatives)
            weights.append(grade / total)
    return TrainingSet(
        bridge=catalog.bridge,
        features=catalog.features,
        texts=np.array(texts, dtype=np.float32).reshape(-1, catalog.bridge.shape[1]),
        image_rows=np.array(image_rows, dtype=np.int64),
        negatives=negatives,
        weights=np.array(weights, dtype=np.float32),
    )
