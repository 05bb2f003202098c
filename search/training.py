"""Turn curators' judgments into a new model version, released only if it ranks better.

search supplies the judgments; embeddings trains and stores the heads. Held-out
judgments are split by query (never by row), so a query's images are all on one side.
"""
import logging
import time
from dataclasses import asdict

import numpy as np
from django.conf import settings
from django.db import transaction

from embeddings import encoders
from embeddings.models import ImageEmbedding, ModelVersion
from embeddings.neighbours import BORROWED_SHARE, BORROWED_SHARES, borrowed_text_vector, neighbour_vector
from embeddings.selectors import described_neighbours, version_active, version_base, version_number_next
from embeddings.services import version_progress_record, version_start_release
from embeddings.spaces import HeadsSpace, ImageVectors, space_for
from embeddings.training.heads import HeadWeights
from embeddings.training.trainer import TrainingOptions, TrainingSet, heads_train

from .evaluation import judged_metrics, ndcg_by_query, rank_in_memory
from .gate import gate_decide, held_out_folds
from .judgments import is_held_out, judged_text_queries
from .models import RelevanceJudgment
from .relevance import Calibrations, calibrations_from_similarities, judged_similarities
from .selectors import Filters, fused_ranking, search_depth, vector_literal

logger = logging.getLogger("glimpse.training")

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
        ranking = fused_ranking(mode="semantic", vector=vector_literal(served_vector), text="", version=active, filters=Filters())
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


def training_run(*, seed: int = 0, margin: float | None = None, held_out_share: float | None = None, options: TrainingOptions | None = None) -> ModelVersion:
    """Train heads from the catalog's pairs and the judgments, evaluate them against the
    active version on held-out judged queries, and start the release only if they win."""
    margin = settings.GLIMPSE_RELEASE_MARGIN if margin is None else margin
    held_out_share = settings.GLIMPSE_HELD_OUT_SHARE if held_out_share is None else held_out_share
    options = options or TrainingOptions(seed=seed)
    active = version_active()
    base = version_base()
    # Heads train the English tower's space (the multilingual one stays frozen): a query it
    # cannot read would teach them noise.
    every_judged = judged_text_queries()
    judged = {query: grades for query, grades in every_judged.items() if encoders.query_englishness(query) >= 0.5}
    train_queries = sorted(query for query in judged if not is_held_out(query, seed=seed, share=held_out_share))
    test_queries = sorted(query for query in judged if is_held_out(query, seed=seed, share=held_out_share))
    with transaction.atomic():
        number = version_number_next()
        version = ModelVersion.objects.create(
            number=number,
            kind=ModelVersion.Kind.HEADS,
            state=ModelVersion.State.TRAINING,
            image_model=base.image_model,
            text_model=base.text_model,
            multilingual_text_model=active.multilingual_text_model,
            precision=base.precision,
            trained_from=active,
        )
    started = time.monotonic()
    version_progress_record(version=version, stage="preparing", started=started, epochs=options.epochs)
    catalog = Catalog()
    text_encoder = encoders.text_encoder()
    raw_train = text_encoder.encode(train_queries)
    raw_test = text_encoder.encode(test_queries)
    held_out = {query: judged[query] for query in test_queries}
    data = training_set(catalog, judged, train_queries, raw_train, active)

    def held_out_metrics(space, borrowed_share: float) -> dict:
        return judged_metrics(catalog.rankings(space, test_queries, raw_test, borrowed_share=borrowed_share), held_out, condensed=True)

    def epoch_done(epoch: int, heads: HeadWeights) -> dict:
        row = {"held_out_nDCG@10": held_out_metrics(HeadsSpace(heads), active.borrowed_share)["nDCG@10"]} if test_queries else {}
        version_progress_record(version=version, stage="training", started=started, epoch=epoch, epochs=options.epochs, epoch_started=training_started)
        return row

    counts = {
        "images": len(catalog.ids),
        "pairs": len(data),
        "description_pairs": int(catalog.has_text.sum()),
        "judgments": RelevanceJudgment.objects.filter(is_current=True).count(),
        "train_queries": len(train_queries),
        "held_out_queries": len(test_queries),
        "queries_not_in_english": len(every_judged) - len(judged),
    }
    start = HeadWeights.from_bytes(active.weights) if active.kind == ModelVersion.Kind.HEADS else None
    # Early stopping on the gate's split: the epoch that ranked the held-out judged queries
    # best (bare images borrowing as the serving version's do). That makes the gate's figure
    # for the candidate slightly optimistic; the margin and the next round's fresh queries
    # absorb it.
    training_started = time.monotonic()
    version_progress_record(version=version, stage="training", started=started, epochs=options.epochs, epoch_started=training_started)
    heads, curve = heads_train(
        data,
        options=options,
        device=encoders.device(),
        start=start,
        on_epoch=epoch_done,
        keep_best="held_out_nDCG@10" if test_queries else None,
    )
    version_progress_record(version=version, stage="evaluating", started=started, epoch=options.epochs, epochs=options.epochs)
    # How much a bare image borrows is the version's too: trained heads make its own vector
    # stronger. The gate's split picks the share (ties: the one nearest version 1's), with
    # the same small optimism as the epoch.
    by_share = {share: held_out_metrics(HeadsSpace(heads), share) for share in BORROWED_SHARES} if test_queries else {}
    borrowed_share = max(by_share, key=lambda share: (by_share[share]["nDCG@10"], -abs(share - BORROWED_SHARE)), default=BORROWED_SHARE)
    candidate_rankings = catalog.rankings(HeadsSpace(heads), test_queries, raw_test, borrowed_share=borrowed_share)
    active_rankings = catalog.rankings(space_for(active), test_queries, raw_test, borrowed_share=active.borrowed_share)
    candidate = judged_metrics(candidate_rankings, held_out, condensed=True)
    baseline = judged_metrics(active_rankings, held_out, condensed=True)
    gate = gate_decide(
        candidate=ndcg_by_query(candidate_rankings, held_out, condensed=True),
        active=ndcg_by_query(active_rankings, held_out, condensed=True),
        folds=held_out_folds(test_queries, folds=settings.GLIMPSE_GATE_FOLDS, seed=seed),
        margin=margin,
    )
    released = gate.released
    compared = f"held-out nDCG@10 {candidate['nDCG@10']:.4f} against v{active.number}'s {baseline['nDCG@10']:.4f}"
    if not test_queries:
        verdict = f"not released: {gate.rule}"
    elif released:
        verdict = f"released: {compared}, a gain of {gate.gain:+.4f}, at least {margin} in {gate.folds_won} of {len(gate.folds)} folds"
    else:
        verdict = f"not released: {compared}, a gain of {gate.gain:+.4f}, at least {margin} in {gate.folds_won} of {len(gate.folds)} folds; it needs {gate.rule}"
    every_query = {query: judged[query] for query in [*train_queries, *test_queries]}
    every_raw = np.concatenate([raw_train, raw_test])
    source = f"{len(judged)} judged queries"
    # Only the candidate is calibrated: the serving version's cut-offs change only when a
    # released version replaces it, never because a run that was kept back saw new grades.
    calibration = catalog.calibration(HeadsSpace(heads), every_query, every_raw, source=source, borrowed_share=borrowed_share)
    with transaction.atomic():
        version.weights = heads.to_bytes()
        version.borrowed_share = borrowed_share
        version.metrics = {
            "held_out": {"candidate": candidate, f"active_v{active.number}": baseline},
            "held_out_by_borrowed_share": {str(share): metrics["nDCG@10"] for share, metrics in by_share.items()},
            "margin": margin,
            "released": released,
            "gate": gate.as_dict(),
            "curve": curve,
            "counts": counts,
            "started_from": f"v{active.number}",
            "elapsed_s": round(time.monotonic() - started),
            "options": asdict(options),
            **({"relevance": calibration.as_dict()} if calibration else {}),
        }
        version.notes = verdict
        version.state = ModelVersion.State.TRAINING if released else ModelVersion.State.RETIRED
        version.save()
        if released:
            version_start_release(version=version)
    logger.info("v%s %s", version.number, verdict)
    return version


def new_judgments_since_last_training() -> int:
    last = ModelVersion.objects.filter(kind=ModelVersion.Kind.HEADS).order_by("-created_at").first()
    judgments = RelevanceJudgment.objects.all()
    if last:
        judgments = judgments.filter(created_at__gt=last.created_at)
    return judgments.count()
