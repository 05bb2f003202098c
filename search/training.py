"""Turn curators' judgments into a new model version, released only if it ranks better.

search supplies the judgments; embeddings trains and stores the heads. Held-out
judgments are split by query (never by row), so a query's images are all on one side.
"""
import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
from django.conf import settings
from django.db import transaction

from embeddings import encoders
from embeddings.models import ModelVersion
from embeddings.neighbours import BORROWED_SHARE, BORROWED_SHARES
from embeddings.selectors import version_active, version_base, version_number_next
from embeddings.services import version_progress_record, version_start_release
from embeddings.spaces import HeadsSpace, space_for
from embeddings.training.heads import HeadWeights
from embeddings.training.trainer import TrainingOptions, TrainingSet, heads_train

from .evaluation import judged_metrics, ndcg_by_query
from .gate import GateDecision, gate_decide, held_out_folds
from .judgments import is_held_out, judged_text_queries
from .models import RelevanceJudgment
from .training_data import Catalog, training_set

logger = logging.getLogger("glimpse.training")


@dataclass(frozen=True)
class JudgedSplit:
    """The judged text queries heads train on, and the held-out ones the gate compares on."""

    judged: dict[str, dict[int, float]]
    train: list[str]
    test: list[str]
    not_in_english: int


def judged_split(*, seed: int, share: float) -> JudgedSplit:
    # Heads train the English tower's space (the multilingual one stays frozen): a query it
    # cannot read would teach them noise.
    every_judged = judged_text_queries()
    judged = {query: grades for query, grades in every_judged.items() if encoders.query_englishness(query) >= 0.5}
    return JudgedSplit(
        judged=judged,
        train=sorted(query for query in judged if not is_held_out(query, seed=seed, share=share)),
        test=sorted(query for query in judged if is_held_out(query, seed=seed, share=share)),
        not_in_english=len(every_judged) - len(judged),
    )


@dataclass(frozen=True)
class HeldOut:
    """The held-out judged queries, ranked in memory as a version would serve them."""

    catalog: Catalog
    queries: list[str]
    raw: np.ndarray
    grades: dict[str, dict[int, float]]

    def rankings(self, space, borrowed_share: float) -> dict[str, list[int]]:
        return self.catalog.rankings(space, self.queries, self.raw, borrowed_share=borrowed_share)

    def metrics(self, space, borrowed_share: float) -> dict:
        return judged_metrics(self.rankings(space, borrowed_share), self.grades, condensed=True)


def training_version_create(*, active: ModelVersion) -> ModelVersion:
    """The candidate version, in training, built on the base version's towers."""
    base = version_base()
    with transaction.atomic():
        return ModelVersion.objects.create(
            number=version_number_next(),
            kind=ModelVersion.Kind.HEADS,
            state=ModelVersion.State.TRAINING,
            image_model=base.image_model,
            text_model=base.text_model,
            multilingual_text_model=active.multilingual_text_model,
            precision=base.precision,
            trained_from=active,
        )


def heads_fit(
    *, version: ModelVersion, data: TrainingSet, options: TrainingOptions, held_out: HeldOut, active: ModelVersion, started: float
) -> tuple[HeadWeights, list]:
    """(heads, curve), from the active version's heads where it has them. Early stopping on
    the gate's split: the epoch that ranked the held-out judged queries best (bare images
    borrowing as the serving version's do). That makes the gate's figure for the candidate
    slightly optimistic; the margin and the next round's fresh queries absorb it."""

    def epoch_done(epoch: int, heads: HeadWeights) -> dict:
        row = {"held_out_nDCG@10": held_out.metrics(HeadsSpace(heads), active.borrowed_share)["nDCG@10"]} if held_out.queries else {}
        version_progress_record(version=version, stage="training", started=started, epoch=epoch, epochs=options.epochs, epoch_started=training_started)
        return row

    start = HeadWeights.from_bytes(active.weights) if active.kind == ModelVersion.Kind.HEADS else None
    training_started = time.monotonic()
    version_progress_record(version=version, stage="training", started=started, epochs=options.epochs, epoch_started=training_started)
    return heads_train(
        data,
        options=options,
        device=encoders.device(),
        start=start,
        on_epoch=epoch_done,
        keep_best="held_out_nDCG@10" if held_out.queries else None,
    )


def borrowed_share_pick(*, heads: HeadWeights, held_out: HeldOut) -> tuple[float, dict[float, dict]]:
    """(the share, the held-out metrics by share). How much a bare image borrows is the
    version's too: trained heads make its own vector stronger. The gate's split picks the
    share (ties: the one nearest version 1's), with the same small optimism as the epoch."""
    by_share = {share: held_out.metrics(HeadsSpace(heads), share) for share in BORROWED_SHARES} if held_out.queries else {}
    borrowed_share = max(by_share, key=lambda share: (by_share[share]["nDCG@10"], -abs(share - BORROWED_SHARE)), default=BORROWED_SHARE)
    return borrowed_share, by_share


def gate_compare(
    *, heads: HeadWeights, borrowed_share: float, held_out: HeldOut, active: ModelVersion, margin: float, seed: int
) -> tuple[GateDecision, dict, dict]:
    """(the gate's decision, the candidate's held-out metrics, the active version's)."""
    candidate_rankings = held_out.rankings(HeadsSpace(heads), borrowed_share)
    active_rankings = held_out.rankings(space_for(active), active.borrowed_share)
    gate = gate_decide(
        candidate=ndcg_by_query(candidate_rankings, held_out.grades, condensed=True),
        active=ndcg_by_query(active_rankings, held_out.grades, condensed=True),
        folds=held_out_folds(held_out.queries, folds=settings.GLIMPSE_GATE_FOLDS, seed=seed),
        margin=margin,
    )
    candidate = judged_metrics(candidate_rankings, held_out.grades, condensed=True)
    return gate, candidate, judged_metrics(active_rankings, held_out.grades, condensed=True)


def gate_verdict(*, gate: GateDecision, candidate: dict, baseline: dict, active: ModelVersion, margin: float, held_out: bool) -> str:
    if not held_out:
        return f"not released: {gate.rule}"
    compared = f"held-out nDCG@10 {candidate['nDCG@10']:.4f} against v{active.number}'s {baseline['nDCG@10']:.4f}"
    folds = f"a gain of {gate.gain:+.4f}, at least {margin} in {gate.folds_won} of {len(gate.folds)} folds"
    if gate.released:
        return f"released: {compared}, {folds}"
    return f"not released: {compared}, {folds}; it needs {gate.rule}"


def training_record(*, version: ModelVersion, heads: HeadWeights, borrowed_share: float, metrics: dict, verdict: str, released: bool) -> None:
    """Store the run's heads, figures and verdict; start the release if the gate let it through."""
    with transaction.atomic():
        version.weights = heads.to_bytes()
        version.borrowed_share = borrowed_share
        version.metrics = metrics
        version.notes = verdict
        version.state = ModelVersion.State.TRAINING if released else ModelVersion.State.RETIRED
        version.save()
        if released:
            version_start_release(version=version)


def training_run(*, seed: int = 0, margin: float | None = None, held_out_share: float | None = None, options: TrainingOptions | None = None) -> ModelVersion:
    """Train heads from the catalog's pairs and the judgments, evaluate them against the
    active version on held-out judged queries, and start the release only if they win."""
    margin = settings.GLIMPSE_RELEASE_MARGIN if margin is None else margin
    options = options or TrainingOptions(seed=seed)
    active = version_active()
    split = judged_split(seed=seed, share=settings.GLIMPSE_HELD_OUT_SHARE if held_out_share is None else held_out_share)
    version = training_version_create(active=active)
    started = time.monotonic()
    version_progress_record(version=version, stage="preparing", started=started, epochs=options.epochs)
    catalog = Catalog()
    text_encoder = encoders.text_encoder()
    raw_train, raw_test = text_encoder.encode(split.train), text_encoder.encode(split.test)
    held_out = HeldOut(catalog=catalog, queries=split.test, raw=raw_test, grades={query: split.judged[query] for query in split.test})
    data = training_set(catalog, split.judged, split.train, raw_train, active)
    counts = {
        "images": len(catalog.ids),
        "pairs": len(data),
        "description_pairs": int(catalog.has_text.sum()),
        "judgments": RelevanceJudgment.objects.filter(is_current=True).count(),
        "train_queries": len(split.train),
        "held_out_queries": len(split.test),
        "queries_not_in_english": split.not_in_english,
    }
    heads, curve = heads_fit(version=version, data=data, options=options, held_out=held_out, active=active, started=started)
    version_progress_record(version=version, stage="evaluating", started=started, epoch=options.epochs, epochs=options.epochs)
    borrowed_share, by_share = borrowed_share_pick(heads=heads, held_out=held_out)
    gate, candidate, baseline = gate_compare(heads=heads, borrowed_share=borrowed_share, held_out=held_out, active=active, margin=margin, seed=seed)
    verdict = gate_verdict(gate=gate, candidate=candidate, baseline=baseline, active=active, margin=margin, held_out=bool(split.test))
    # Only the candidate is calibrated: the serving version's cut-offs change only when a
    # released version replaces it, never because a run that was kept back saw new grades.
    calibration = catalog.calibration(
        HeadsSpace(heads), {query: split.judged[query] for query in [*split.train, *split.test]}, np.concatenate([raw_train, raw_test]),
        source=f"{len(split.judged)} judged queries", borrowed_share=borrowed_share,
    )
    metrics = {
        "held_out": {"candidate": candidate, f"active_v{active.number}": baseline},
        "held_out_by_borrowed_share": {str(share): values["nDCG@10"] for share, values in by_share.items()},
        "margin": margin,
        "released": gate.released,
        "gate": gate.as_dict(),
        "curve": curve,
        "counts": counts,
        "started_from": f"v{active.number}",
        "elapsed_s": round(time.monotonic() - started),
        "options": asdict(options),
        **({"relevance": calibration.as_dict()} if calibration else {}),
    }
    training_record(version=version, heads=heads, borrowed_share=borrowed_share, metrics=metrics, verdict=verdict, released=gate.released)
    logger.info("v%s %s", version.number, verdict)
    return version


def new_judgments_since_last_training() -> int:
    last = ModelVersion.objects.filter(kind=ModelVersion.Kind.HEADS).order_by("-created_at").first()
    judgments = RelevanceJudgment.objects.all()
    if last:
        judgments = judgments.filter(created_at__gt=last.created_at)
    return judgments.count()
