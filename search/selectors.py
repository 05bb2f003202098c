"""Search reads. Ranking is one SQL statement: each ranked list comes from its own
index (HNSW for the two vector columns, GIN for full text) and the lists are fused with
reciprocal rank fusion, score = Σ 1 / (60 + rank), in the same statement."""
import time
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from django.conf import settings
from django.db import connection, transaction

from catalog.models import Image
from embeddings.models import ModelVersion
from embeddings.selectors import version_active
from embeddings.spaces import space_for

from .exceptions import InvalidQuery

MODES = ("hybrid", "semantic", "keyword")
RRF_K = 60
# Each ranked list contributes this many candidates; pages are cut from the fused list,
# so a fixed pool keeps page 2 consistent with page 1.
CANDIDATES = 100


@dataclass(frozen=True)
class Filters:
    category: str = ""
    tags: tuple[str, ...] = ()
    created_from: date | None = None
    created_to: date | None = None

    def __bool__(self):
        return bool(self.category or self.tags or self.created_from or self.created_to)


@dataclass(frozen=True)
class Hit:
    image: Image
    score: float


@dataclass
class Results:
    hits: list[Hit]
    total: int
    mode: str
    version: ModelVersion
    latency_ms: float
    offset: int = 0
    limit: int = 20
    collapsed: int = 0
    image_ids: list[int] = field(default_factory=list)


def vector_literal(vector) -> str:
    values = np.asarray(vector, dtype=np.float32)
    if values.ndim != 1 or not np.isfinite(values).all():
        raise InvalidQuery("the query vector must be one row of finite numbers")
    return "[" + ",".join(repr(float(value)) for value in values) + "]"


def filter_sql(filters: Filters) -> tuple[str, list]:
    clauses, params = [], []
    if filters.category:
        clauses.append("i.category = %s")
        params.append(filters.category)
    if filters.tags:
        clauses.append("i.tags @> %s")
        params.append(list(filters.tags))
    if filters.created_from:
        clauses.append("i.created_at >= %s")
        params.append(filters.created_from)
    if filters.created_to:
        clauses.append("i.created_at < %s::date + 1")
        params.append(filters.created_to)
    return "".join(f" AND {clause}" for clause in clauses), params


def vector_list_sql(column: str, where: str) -> str:
    join = " JOIN catalog_image i ON i.id = e.image_id" if where else ""
    # The inner ORDER BY ... LIMIT is what the HNSW index serves; the outer
    # row_number re-sorts because iterative scans may return slightly out of order.
    return f"""
        SELECT image_id, row_number() OVER (ORDER BY distance) AS rank FROM (
            SELECT e.image_id, e.{column} <=> %s::vector AS distance
            FROM embeddings_imageembedding e{join}
            WHERE e.version_id = %s AND e.{column} IS NOT NULL{where}
            ORDER BY e.{column} <=> %s::vector
            LIMIT %s
        ) candidates"""


KEYWORD_LIST_SQL = """
        SELECT image_id, row_number() OVER (ORDER BY relevance DESC, image_id) AS rank FROM (
            SELECT i.id AS image_id, ts_rank_cd(i.search_document, query) AS relevance
            FROM catalog_image i, websearch_to_tsquery('english', %s) query
            WHERE i.search_document @@ query{where}
            ORDER BY relevance DESC, i.id
            LIMIT %s
        ) candidates"""


def ranked_lists(*, mode: str, vector, features, text: str, version: ModelVersion, filters: Filters) -> tuple[list[str], list]:
    """One ranked list per index that can answer: text-space vectors (images through the
    bridge, descriptions, borrowed descriptions), CNN features for picture queries, and full text for words."""
    where, where_params = filter_sql(filters)
    lists, params = [], []
    columns = []
    if mode in ("hybrid", "semantic"):
        if vector is not None:
            # neighbour_vector: words borrowed by images that have none (embeddings/neighbours.py).
            columns += [("image_vector", vector), ("text_vector", vector), ("neighbour_vector", vector)]
        if features is not None:
            columns.append(("feature_vector", features))
    for column, query in columns:
        lists.append(vector_list_sql(column, where))
        params += [query, version.id, *where_params, query, CANDIDATES]
    if mode in ("hybrid", "keyword") and text:
        lists.append(KEYWORD_LIST_SQL.format(where=where))
        params += [text, *where_params, CANDIDATES]
    return lists, params


def fused_ranking_sql(*, mode, vector, text, version, filters, features=None, exclude_id=None) -> tuple[str, list]:
    """The one ranking statement and its parameters ("" when there is nothing to rank by)."""
    lists, params = ranked_lists(mode=mode, vector=vector, features=features, text=text, version=version, filters=filters)
    if not lists:
        return "", []
    union = "\n        UNION ALL\n".join(lists)
    exclude = "WHERE image_id <> %s" if exclude_id else ""
    sql = f"""
        SELECT image_id, sum(1.0 / ({RRF_K} + rank)) AS score
        FROM ({union}) ranked
        {exclude}
        GROUP BY image_id
        ORDER BY score DESC, image_id
    """
    if exclude_id:
        params.append(exclude_id)
    return sql, params


def configure_index_scans(cursor) -> None:
    """Per transaction: filtered searches keep scanning the index until enough rows pass."""
    cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
    cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(max(settings.GLIMPSE_HNSW_EF_SEARCH, CANDIDATES))])


def fused_ranking(**query) -> list[tuple[int, float]]:
    """[(image_id, rrf score)] best first, for the whole candidate pool."""
    sql, params = fused_ranking_sql(**query)
    if not sql:
        return []
    with transaction.atomic(), connection.cursor() as cursor:
        configure_index_scans(cursor)
        cursor.execute(sql, params)
        return [(image_id, float(score)) for image_id, score in cursor.fetchall()]


def collapse_near_duplicates(ranking: list[tuple[int, float]], *, version: ModelVersion, distance: float) -> list[tuple[int, float]]:
    """Drop each image that looks within `distance` of a higher-ranked one (CNN features
    where stored, else the text-space vector)."""
    ids = [image_id for image_id, _ in ranking]
    vectors = {
        image_id: features if features is not None else vector
        for image_id, features, vector in version.embeddings.filter(image_id__in=ids).values_list(
            "image_id", "feature_vector", "image_vector"
        )
    }
    kept, kept_vectors = [], []
    for image_id, score in ranking:
        vector = vectors.get(image_id)
        if vector is not None:
            vector = np.asarray(vector, dtype=np.float32)
            if kept_vectors and float((1 - np.stack(kept_vectors) @ vector).min()) < distance:
                continue
            kept_vectors.append(vector)
        kept.append((image_id, score))
    return kept


def image_search(
    *,
    text: str = "",
    vector: np.ndarray | None = None,
    features: np.ndarray | None = None,
    mode: str = "hybrid",
    filters: Filters = Filters(),
    limit: int = 20,
    offset: int = 0,
    collapse_distance: float | None = None,
    exclude_id: int | None = None,
    version: ModelVersion | None = None,
) -> Results:
    """Rank images for a text (encoded here) or ready vectors: `vector` in text space,
    `features` in the CNN's space (an uploaded picture's, or a stored one)."""
    started = time.perf_counter()
    if mode not in MODES:
        raise InvalidQuery(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if not 1 <= limit <= settings.GLIMPSE_SEARCH_MAX_LIMIT:
        raise InvalidQuery(f"limit must be between 1 and {settings.GLIMPSE_SEARCH_MAX_LIMIT}")
    if offset < 0 or offset + limit > CANDIDATES:
        raise InvalidQuery(f"results go {CANDIDATES} deep; ask for an earlier page")
    text = " ".join(text.split())
    if not text and vector is None and features is None:
        raise InvalidQuery("type something to search for")
    if len(text) > settings.GLIMPSE_SEARCH_MAX_QUERY_CHARS:
        raise InvalidQuery(f"the query is {len(text)} characters; the limit is {settings.GLIMPSE_SEARCH_MAX_QUERY_CHARS}")
    version = version or version_active()
    if vector is None and features is None and mode != "keyword":
        vector = space_for(version).embed_texts([text])[0]
    vector = None if vector is None else vector_literal(vector)
    features = None if features is None else vector_literal(features)
    ranking = fused_ranking(
        mode=mode, vector=vector, features=features, text=text, version=version, filters=filters, exclude_id=exclude_id
    )
    collapsed = 0
    if collapse_distance:
        before = len(ranking)
        ranking = collapse_near_duplicates(ranking, version=version, distance=collapse_distance)
        collapsed = before - len(ranking)
    page = ranking[offset : offset + limit]
    images = Image.objects.in_bulk([image_id for image_id, _ in page])
    hits = [Hit(image=images[image_id], score=score) for image_id, score in page if image_id in images]
    return Results(
        hits=hits,
        total=len(ranking),
        mode=mode,
        version=version,
        latency_ms=(time.perf_counter() - started) * 1000,
        offset=offset,
        limit=limit,
        collapsed=collapsed,
        image_ids=[hit.image.id for hit in hits],
    )


def stored_vectors(*, image_id: int, version: ModelVersion | None = None) -> tuple[np.ndarray, np.ndarray | None] | None:
    """One image's stored (text-space vector, CNN features), for "more like this" with no model call."""
    version = version or version_active()
    row = version.embeddings.filter(image_id=image_id).values_list("image_vector", "feature_vector").first()
    if row is None:
        return None
    vector, features = row
    return np.asarray(vector, dtype=np.float32), None if features is None else np.asarray(features, dtype=np.float32)
