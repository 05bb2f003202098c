"""Search reads: a text or vectors ranked (`image_search`), filters browsed
(`images_browse`), an image's stored vectors (`stored_vectors`).

A search is one ranking statement (search/ranking.py) on a prepared cursor that sends the
query vector in binary (search/sql.py), what curators' grades for close queries say
(search/judged.py), and each hit's label (search/labels.py). The names other modules read
from here are re-exported below, so that this stays the app's one read API."""
import time

import numpy as np
from django.conf import settings
from django.db import connections

from catalog.models import Image
from config.routers import read_database
from embeddings.models import ModelVersion
from embeddings.selectors import version_active

from .exceptions import InvalidQuery
from .judged import JudgedImages, judged_list
from .labels import judge_hits
from .query import BROWSE_MODE, MODES, Filters, Hit, Results, depth_check, filter_sql, search_depth
from .query_vectors import QueryVectors, query_text_vectors
from .ranking import collapse_near_duplicates, fused_ranking
from .sql import checked_vector

__all__ = [
    "BROWSE_MODE", "MODES", "Filters", "Hit", "JudgedImages", "Results", "depth_check", "fused_ranking", "image_search",
    "images_browse", "judged_list", "search_depth", "stored_vectors", "checked_vector",
]


def query_check(*, mode: str, limit: int, offset: int, text: str, has_vectors: bool) -> tuple[int, str]:
    """(the search depth, the text with its whitespace collapsed), or InvalidQuery."""
    if mode not in MODES:
        raise InvalidQuery(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if not 1 <= limit <= settings.GLIMPSE_SEARCH_MAX_LIMIT:
        raise InvalidQuery(f"limit must be between 1 and {settings.GLIMPSE_SEARCH_MAX_LIMIT}")
    depth = depth_check(offset=offset)
    text = " ".join(text.split())
    if not text and not has_vectors:
        raise InvalidQuery("type something to search for")
    if len(text) > settings.GLIMPSE_SEARCH_MAX_QUERY_CHARS:
        raise InvalidQuery(f"the query is {len(text)} characters; the limit is {settings.GLIMPSE_SEARCH_MAX_QUERY_CHARS}")
    return depth, text


def query_vectors_for(*, text: str, mode: str, version: ModelVersion, vectors: QueryVectors) -> QueryVectors:
    """The query's vectors, checked: the given ones, or the text's encoded here when none
    are given (never for a keyword search). Without its own, the English tower's raw
    vector is `vector`, but for a version with heads, whose `vector` is in another space."""
    raw, vector, multilingual, english = vectors.raw, vectors.vector, vectors.multilingual, vectors.english
    if vector is None and multilingual is None and text and mode != "keyword":
        encoded = query_text_vectors(text=text, version=version)
        raw, vector, multilingual, english = encoded.raw, encoded.vector, encoded.multilingual, encoded.english
    if raw is None and vector is not None and version.kind != ModelVersion.Kind.HEADS:
        raw = vector
    return QueryVectors(
        raw=raw,
        vector=None if vector is None else checked_vector(vector),
        multilingual=None if multilingual is None or not version.multilingual else checked_vector(multilingual),
        english=english,
    )


def judged_for(*, text: str, mode: str, vectors: QueryVectors, filters: Filters) -> JudgedImages:
    """Close judged queries by the English tower where it reads the query; the multilingual
    tower's vectors tell near-identical queries apart only (docs/multilingual.md)."""
    if not text or mode == "keyword" or (vectors.raw is None and vectors.multilingual is None):
        return JudgedImages()
    multilingual = vectors.raw is None
    return judged_list(raw_vector=vectors.multilingual if multilingual else vectors.raw, filters=filters, multilingual=multilingual)


def hits_shown(hits: list[Hit], *, show_hidden: bool, include_distant: bool, features) -> tuple[list[Hit], int, bool]:
    """(the hits pages show and count, how many were distant and left out, whether nothing
    passed the cut-off so the nearest are shown anyway)."""
    # Hidden by curators' grades: never shown to visitors, not even with the distant results.
    visible = hits if show_hidden else [hit for hit in hits if not hit.hidden_by]
    # The calibration is of words against pictures; a query with a picture ranks without a cut-off.
    passed = visible if include_distant or features is not None else [hit for hit in visible if hit.label != "distant"]
    nearest_only = bool(visible) and not passed
    return (visible if nearest_only else passed), len(visible) - len(passed), nearest_only


def page_images(page: list[Hit]) -> list[Hit]:
    """Only the page's images are read: the rest of the pool is counted, never shown."""
    images = Image.objects.in_bulk([hit.image_id for hit in page])
    page = [hit for hit in page if hit.image_id in images]  # an image deleted since it was ranked
    for hit in page:
        hit.image = images[hit.image_id]
    return page


def image_search(
    *,
    text: str = "",
    vector: np.ndarray | None = None,
    raw_vector: np.ndarray | None = None,
    multilingual_vector: np.ndarray | None = None,
    features: np.ndarray | None = None,
    mode: str = "hybrid",
    filters: Filters = Filters(),
    limit: int = 20,
    offset: int = 0,
    collapse_distance: float | None = None,
    exclude_id: int | None = None,
    include_distant: bool = False,
    show_hidden: bool = False,
    version: ModelVersion | None = None,
) -> Results:
    """Rank images for a text (encoded here) or ready vectors: `vector` in the version's
    English text space (`raw_vector`, the English tower's own, finds close judged queries;
    it is `vector` for the bridge and zero-shot versions), `multilingual_vector` in its
    multilingual tower's space, `features` in the CNN's space (an uploaded picture's, or a
    stored one). Results of a text query that the version's calibration calls distant are
    hidden unless `include_distant`; when nothing passes, the nearest are shown and
    `nearest_only` says so. Images enough curators graded 0 for the query (JudgedImages)
    are left out, distant results shown or not; `show_hidden` (a curator's search) keeps
    them as ranked, each with `hidden_by`."""
    started = time.perf_counter()
    has_vectors = vector is not None or multilingual_vector is not None or features is not None
    depth, text = query_check(mode=mode, limit=limit, offset=offset, text=text, has_vectors=has_vectors)
    version = version or version_active()
    vectors = query_vectors_for(
        text=text, mode=mode, version=version, vectors=QueryVectors(raw=raw_vector, vector=vector, multilingual=multilingual_vector)
    )
    features = None if features is None else checked_vector(features)
    judged = judged_for(text=text, mode=mode, vectors=vectors, filters=filters)
    ranking = fused_ranking(
        mode=mode, vector=vectors.vector, features=features, multilingual=vectors.multilingual, english=vectors.english,
        text=text, version=version, filters=filters, exclude_id=exclude_id, judged_ids=judged.lent, depth=min(offset + limit, depth),
    )
    collapsed = 0
    if collapse_distance:
        before = len(ranking)
        ranking = collapse_near_duplicates(ranking, version=version, distance=collapse_distance)
        collapsed = before - len(ranking)
    hits = [Hit(image_id=image_id, score=score, hidden_by=judged.rejected.get(image_id, 0)) for image_id, score in ranking]
    if text:
        # Read in the space of the tower that reads most of the query.
        english_reads = vectors.vector is not None and (vectors.english >= 0.5 or vectors.multilingual is None)
        judge_hits(
            hits, text=text, vector=vectors.vector if english_reads else None, judged_ids=tuple(judged.relevant), version=version,
            multilingual=None if english_reads else vectors.multilingual, read_vector=vectors.multilingual,
        )
    shown, distant, nearest_only = hits_shown(hits, show_hidden=show_hidden, include_distant=include_distant, features=features)
    # The fused lists hold more than `depth` images; only the first `depth` are reachable.
    page = page_images(shown[offset : min(offset + limit, depth)])
    return Results(
        hits=page, total=min(len(shown), depth), mode=mode, version=version, latency_ms=(time.perf_counter() - started) * 1000,
        offset=offset, limit=limit, collapsed=collapsed, image_ids=[hit.image_id for hit in page], distant=distant,
        nearest_only=nearest_only,
    )


BROWSE_SQL = """
SELECT i.id FROM catalog_image i
WHERE true{filters}
ORDER BY i.created_at DESC, i.id DESC
LIMIT %s
"""


def browse_sql(*, filters: Filters, depth: int) -> tuple[str, list]:
    where, params = filter_sql(filters)
    return BROWSE_SQL.format(filters=where), [*params, depth]


def images_browse(*, filters: Filters, limit: int, offset: int, version: ModelVersion) -> Results:
    """The images `filters` let through, newest first (a category, a tag, some days; no
    words). Pages go as deep as a search's, so `total` is at most the search depth."""
    started = time.perf_counter()
    depth = depth_check(offset=offset)
    with connections[read_database()].cursor() as cursor:
        cursor.execute(*browse_sql(filters=filters, depth=depth))
        ids = [image_id for (image_id,) in cursor.fetchall()]
    page_ids = ids[offset : offset + limit]
    images = Image.objects.in_bulk(page_ids)
    hits = [Hit(image_id=image_id, score=0.0, image=images[image_id]) for image_id in page_ids if image_id in images]
    return Results(
        hits=hits,
        total=len(ids),
        mode=BROWSE_MODE,
        version=version,
        latency_ms=(time.perf_counter() - started) * 1000,
        offset=offset,
        limit=limit,
        image_ids=[hit.image_id for hit in hits],
    )


def stored_vectors(*, image_id: int, version: ModelVersion | None = None) -> tuple[np.ndarray, np.ndarray | None] | None:
    """One image's stored (text-space vector, CNN features), for "more like this" with no model call."""
    version = version or version_active()
    row = version.embeddings.filter(image_id=image_id).values_list("image_vector", "feature_vector").first()
    if row is None:
        return None
    vector, features = row
    return np.asarray(vector, dtype=np.float32), None if features is None else np.asarray(features, dtype=np.float32)
