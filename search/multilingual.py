"""Giving an existing catalog the multilingual text tower: a new version, released like any other.

A new install's version 1 has the tower from the start (embeddings migration 0012). A
catalog embedded before it gets a copy of its active version with the tower added: the
release job gives the base rows the tower's vectors (the CNN runs again over every
picture), fills the new version's rows from them while the active one keeps serving, then
gates it as a trained version is gated, on the curators' judged queries, ranked as the
site serves them; only a version that ranks them no worse is switched to.
"""
import logging

import django_rq
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from embeddings.exceptions import VersionStateError
from embeddings.models import ModelVersion
from embeddings.selectors import version_active, version_number_next
from embeddings.services import TRAINING_QUEUE, version_activate, version_fill, version_mark_backfilling

from .evaluation import judged_metrics
from .judgments import judged_text_queries
from .selectors import image_search

logger = logging.getLogger("glimpse.training")

RELEASE_JOB = "search.jobs.release_multilingual_version"


def multilingual_version_create(*, queue: bool = True) -> ModelVersion:
    """A copy of the active version (its kind, heads, borrowed share and calibration) with
    the multilingual tower, its release queued (unless the caller runs it)."""
    model = settings.GLIMPSE_MULTILINGUAL_TEXT_MODEL
    if not model:
        raise ImproperlyConfigured("GLIMPSE_MULTILINGUAL_TEXT_MODEL is empty: name the multilingual text tower to add")
    active = ModelVersion.objects.get(id=version_active().id)  # with its weights
    if active.multilingual:
        raise VersionStateError(f"v{active.number} already has the multilingual tower {active.multilingual_text_model}")
    if ModelVersion.objects.filter(state=ModelVersion.State.BACKFILLING).exists():
        raise VersionStateError("another version is being released; add the tower once it is done")
    with transaction.atomic():
        version = ModelVersion.objects.create(
            number=version_number_next(),
            kind=active.kind,
            image_model=active.image_model,
            text_model=active.text_model,
            multilingual_text_model=model,
            precision=active.precision,
            weights=active.weights,
            borrowed_share=active.borrowed_share,
            trained_from=active,
            metrics={key: value for key, value in active.metrics.items() if key == "relevance"},
            notes=f"v{active.number} with the multilingual text tower {model}",
        )
        version_mark_backfilling(version=version)
        if queue:
            transaction.on_commit(lambda: django_rq.get_queue(TRAINING_QUEUE).enqueue(RELEASE_JOB, version.id, job_timeout=24 * 3600))
    return version


def judged_rankings(version: ModelVersion, queries: list[str]) -> dict[str, list[int]]:
    """Each judged query's ranking as the site serves it (hybrid, nothing hidden), in `version`."""
    return {
        query: [hit.image_id for hit in image_search(text=query, version=version, include_distant=True, limit=settings.GLIMPSE_SEARCH_MAX_LIMIT).hits]
        for query in queries
    }


def multilingual_release(*, version: ModelVersion) -> ModelVersion:
    """Fill `version` (base rows first), compare it with the active version on every judged
    query, and switch to it unless it ranks them worse by more than GLIMPSE_RELEASE_MARGIN."""
    version_fill(version=version)
    active = version_active()
    judged = judged_text_queries()
    queries = sorted(judged)
    if queries:
        candidate = judged_metrics(judged_rankings(version, queries), judged, condensed=True)
        baseline = judged_metrics(judged_rankings(active, queries), judged, condensed=True)
        released = candidate["nDCG@10"] >= baseline["nDCG@10"] - settings.GLIMPSE_RELEASE_MARGIN
        comparison = f"judged nDCG@10 {candidate['nDCG@10']:.4f} against v{active.number}'s {baseline['nDCG@10']:.4f} on {len(queries)} queries"
        metrics = {"judged": {"candidate": candidate, f"active_v{active.number}": baseline}}
    else:
        released, comparison, metrics = True, "no judged query to compare on", {}
    ModelVersion.objects.filter(id=version.id).update(
        metrics={**version.metrics, **metrics, "released": released},
        notes=f"{version.notes}; {'released' if released else 'not released'}: {comparison}",
    )
    if released:
        return version_activate(version=version)
    ModelVersion.objects.filter(id=version.id).update(state=ModelVersion.State.RETIRED)
    logger.info("v%s not released: %s", version.number, comparison)
    version.refresh_from_db()
    return version
