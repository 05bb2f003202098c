"""Search reads. Ranking is one SQL statement: each ranked list comes from its own
index (HNSW for the two vector columns, GIN for full text) and the lists are fused with
reciprocal rank fusion, score = Σ 1 / (60 + rank), in the same statement."""
import re
import time
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from django.conf import settings
from django.db import connections, transaction

from catalog.models import Image
from config.routers import read_database
from embeddings.models import ModelVersion
from embeddings.selectors import version_active, version_base
from embeddings.spaces import space_for

from .exceptions import InvalidQuery
from .evaluation import RELEVANT_GRADE
from .relevance import KINDS, calibration_for

MODES = ("hybrid", "semantic", "keyword")
RRF_K = 60


def search_depth() -> int:
    """How many candidates each ranked list contributes, and how deep pages go: pages are
    cut from the fused list, so a fixed pool keeps page 2 consistent with page 1."""
    return settings.GLIMPSE_SEARCH_DEPTH


def depth_check(*, offset: int) -> int:
    """The search depth, or InvalidQuery when a page would start beyond it."""
    depth = search_depth()
    if not 0 <= offset < depth:
        raise InvalidQuery(f"results go {depth} deep; ask for an earlier page")
    return depth


@dataclass(frozen=True)
class Filters:
    category: str = ""
    tags: tuple[str, ...] = ()
    created_from: date | None = None
    created_to: date | None = None

    def __bool__(self):
        return bool(self.category or self.tags or self.created_from or self.created_to)


@dataclass
class Hit:
    image: Image
    score: float
    similarity: float | None = None  # the query's best cosine over the image's text-space vectors
    relevance: float | None = None  # 0–1, see search/relevance.py
    label: str = ""  # close / related / distant
    judged: bool = False  # a curator graded it relevant for this or a close query


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
    distant: int = 0  # candidates under the version's relevance cut-off, hidden
    nearest_only: bool = False  # nothing passed the cut-off; the hits are the nearest anyway

    @property
    def has_next(self) -> bool:
        return self.offset + self.limit < self.total


def vector_literal(vector) -> str:
    values = np.asarray(vector, dtype=np.float32)
    if values.ndim != 1 or not np.isfinite(values).all():
        raise InvalidQuery("the query vector must be one row of finite numbers")
    return "[" + ",".join(repr(float(value)) for value in values) + "]"


def filter_sql(filters: Filters) -> tuple[str, list]:
    clauses, params = [], []
    if filters.category:
        # A category is a path: "animals" holds "animals/housecats" but not "animalsfoo".
        clauses.append("(i.category = %s OR starts_with(i.category, %s || '/'))")
        params += [filters.category, filters.category]
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


# Any word may match (OR): images are ranked by how many of the query's words, phrases
# included, they contain, then by ts_rank_cd. Stop words parse to empty queries and count
# for nothing; exclusions (-word, -"a phrase") remove images outright.
KEYWORD_LIST_SQL = """
        SELECT image_id, row_number() OVER (ORDER BY matched DESC, relevance DESC, image_id) AS rank FROM (
            SELECT i.id AS image_id, ts_rank_cd(i.search_document, k.query) AS relevance,
                   (SELECT count(*) FROM unnest(k.terms) term WHERE i.search_document @@ term) AS matched
            FROM catalog_image i, (
                SELECT websearch_to_tsquery('english', %s) && websearch_to_tsquery('english', %s) AS query,
                       ARRAY(SELECT websearch_to_tsquery('english', term) FROM unnest(%s::text[]) term) AS terms
            ) k
            WHERE i.search_document @@ k.query{where}
            ORDER BY matched DESC, relevance DESC, i.id
            LIMIT %s
        ) candidates"""

WORDS = re.compile(r'(-?)"([^"]*)"?|(\S+)')


@dataclass(frozen=True)
class KeywordQuery:
    """Websearch syntax split into words and "phrases" any of which may match, and exclusions."""

    terms: tuple[str, ...]
    excluded: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> "KeywordQuery":
        terms, excluded = [], []
        for minus, phrase, word in WORDS.findall(text):
            word = word.replace('"', "")  # a stray quote inside a word would open a phrase below
            if phrase.strip():
                (excluded if minus else terms).append(f'"{phrase.strip()}"')
            elif word.startswith("-") and len(word) > 1:
                excluded.append(word[1:])
            elif word and word.lower() != "or" and word != "-":
                terms.append(word)
        return cls(terms=tuple(terms), excluded=tuple(excluded))

    def params(self) -> list:
        """any term (websearch's `or`), none of the exclusions, and each term alone for coverage"""
        return [" or ".join(self.terms), " ".join(f"-{term}" for term in self.excluded), list(self.terms)]


# Every image that curators graded for judged queries whose text is within `distance` of
# this one, with its mean grade (the best over those queries), the closest query's first:
# judgments count at once, before any training.
JUDGED_LIST_SQL = """
        SELECT image_id, max(similarity) AS similarity, max(grade) AS grade FROM (
            SELECT j.image_id, q.similarity, avg(j.grade) AS grade
            FROM (
                SELECT query_key, 1 - (vector <=> %s::vector) AS similarity
                FROM search_judgedquery WHERE vector <=> %s::vector <= %s
            ) q
            JOIN search_relevancejudgment j ON j.query_key = q.query_key AND j.is_current
            JOIN catalog_image i ON i.id = j.image_id
            WHERE true{where}
            GROUP BY q.query_key, q.similarity, j.image_id
        ) per_query
        GROUP BY image_id
        ORDER BY similarity DESC, grade DESC, image_id"""


@dataclass(frozen=True)
class JudgedImages:
    """What close judged queries say about this one. Every image graded at least partly
    relevant is lent, by grade, as one ranked list (partly relevant ones included: for most
    queries a curator finds no exact match, and they are what the judgments hold); images
    graded 0 by every close query are left out of the results."""

    lent: tuple[int, ...] = ()
    relevant: frozenset[int] = frozenset()  # graded ≥ 2: shown as judged
    rejected: frozenset[int] = frozenset()


def judged_list(*, raw_vector: str, filters: Filters) -> JudgedImages:
    where, where_params = filter_sql(filters)
    distance = 1 - settings.GLIMPSE_JUDGED_QUERY_SIMILARITY
    with connections[read_database()].cursor() as cursor:
        cursor.execute(JUDGED_LIST_SQL.format(where=where), [raw_vector, raw_vector, distance, *where_params])
        rows = cursor.fetchall()
    return JudgedImages(
        lent=tuple(image_id for image_id, _, grade in rows if grade >= 1)[: search_depth()],
        relevant=frozenset(image_id for image_id, _, grade in rows if grade >= RELEVANT_GRADE),
        rejected=frozenset(image_id for image_id, _, grade in rows if grade == 0),
    )


JUDGED_RANKS_SQL = """
        SELECT image_id, rank FROM unnest(%s::bigint[]) WITH ORDINALITY AS judged(image_id, rank)"""


def ranked_lists(
    *, mode: str, vector, features, text: str, version: ModelVersion, filters: Filters, judged_ids: tuple[int, ...] = ()
) -> tuple[list[str], list]:
    """One ranked list per index that can answer: text-space vectors (images through the
    bridge, descriptions, borrowed descriptions), CNN features for picture queries, and full
    text for words; plus the images judged relevant for close queries."""
    where, where_params = filter_sql(filters)
    lists, params = [], []
    if judged_ids:
        lists.append(JUDGED_RANKS_SQL)
        params.append(list(judged_ids))
    columns = []
    if mode in ("hybrid", "semantic"):
        if vector is not None:
            # neighbour_vector: words borrowed by images that have none (embeddings/neighbours.py).
            columns += [("image_vector", vector), ("text_vector", vector), ("neighbour_vector", vector)]
        if features is not None:
            columns.append(("feature_vector", features))
    for column, query in columns:
        lists.append(vector_list_sql(column, where))
        params += [query, version.id, *where_params, query, search_depth()]
    keywords = KeywordQuery.parse(text)
    if mode in ("hybrid", "keyword") and keywords.terms:
        lists.append(KEYWORD_LIST_SQL.format(where=where))
        params += [*keywords.params(), *where_params, search_depth()]
    return lists, params


def fused_ranking_sql(*, mode, vector, text, version, filters, features=None, exclude_id=None, judged_ids=()) -> tuple[str, list]:
    """The one ranking statement and its parameters ("" when there is nothing to rank by)."""
    lists, params = ranked_lists(
        mode=mode, vector=vector, features=features, text=text, version=version, filters=filters, judged_ids=judged_ids
    )
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
    cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(max(settings.GLIMPSE_HNSW_EF_SEARCH, search_depth()))])


def fused_ranking(**query) -> list[tuple[int, float]]:
    """[(image_id, rrf score)] best first, for the whole candidate pool."""
    sql, params = fused_ranking_sql(**query)
    if not sql:
        return []
    database = read_database()
    with transaction.atomic(using=database), connections[database].cursor() as cursor:
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


# One column per kind of vector (search/relevance.py KINDS), null where the image has none.
SIMILARITY_SQL = """
        SELECT image_id, 1 - (image_vector <=> %s::vector), 1 - (text_vector <=> %s::vector), 1 - (neighbour_vector <=> %s::vector)
        FROM embeddings_imageembedding WHERE version_id = %s AND image_id = ANY(%s)"""

# How many of the query's words and phrases each image contains, and how many count
# (stop words parse to empty queries and are left out).
COVERAGE_SQL = """
        SELECT i.id, (SELECT count(*) FROM unnest(k.terms) term WHERE i.search_document @@ term), cardinality(k.terms)
        FROM catalog_image i, (
            SELECT ARRAY(
                SELECT term FROM (SELECT websearch_to_tsquery('english', word) AS term FROM unnest(%s::text[]) word) parsed
                WHERE numnode(term) > 0
            ) AS terms
        ) k
        WHERE i.id = ANY(%s)"""


def similarities(*, ids: list[int], vector: str, version: ModelVersion) -> dict[int, dict[str, float]]:
    """{image id: {kind: the query's cosine with that vector}} for the kinds each image has."""
    with connections[read_database()].cursor() as cursor:
        cursor.execute(SIMILARITY_SQL, [vector, vector, vector, version.id, ids])
        return {
            image_id: {kind: float(value) for kind, value in zip(KINDS, values) if value is not None}
            for image_id, *values in cursor.fetchall()
        }


def keyword_coverage(*, ids: list[int], keywords: KeywordQuery) -> dict[int, float]:
    """Share of the query's (non-stop) words each image matches."""
    with connections[read_database()].cursor() as cursor:
        cursor.execute(COVERAGE_SQL, [list(keywords.terms), ids])
        return {image_id: matched / counted for image_id, matched, counted in cursor.fetchall() if counted}


def judge_hits(hits: list[Hit], *, text: str, vector: str | None, judged_ids: tuple[int, ...], version: ModelVersion) -> None:
    """Fill each hit's similarity, relevance and label. Each text-space similarity is read
    against the version's calibration for its kind of vector; without one (keyword mode) relevance is the share
    of the query's words matched. Judged hits and hits matching every word are close."""
    ids = [hit.image.id for hit in hits]
    keywords = KeywordQuery.parse(text)
    coverage = keyword_coverage(ids=ids, keywords=keywords) if keywords.terms and ids else {}
    similar = similarities(ids=ids, vector=vector, version=version) if vector is not None and ids else {}
    calibration = calibration_for(version)
    judged = set(judged_ids)
    for hit in hits:
        hit.judged = hit.image.id in judged
        kinds = similar.get(hit.image.id)
        words = coverage.get(hit.image.id, 0.0)
        if kinds:
            hit.similarity = max(kinds.values())
            hit.relevance, hit.label = calibration.judge(kinds)
        elif vector is None and coverage:
            hit.relevance, hit.label = words, "related"
        if hit.judged or words == 1.0:
            hit.label = "close"


def image_search(
    *,
    text: str = "",
    vector: np.ndarray | None = None,
    raw_vector: np.ndarray | None = None,
    features: np.ndarray | None = None,
    mode: str = "hybrid",
    filters: Filters = Filters(),
    limit: int = 20,
    offset: int = 0,
    collapse_distance: float | None = None,
    exclude_id: int | None = None,
    include_distant: bool = False,
    version: ModelVersion | None = None,
) -> Results:
    """Rank images for a text (encoded here) or ready vectors: `vector` in the version's
    text space (`raw_vector`, the text tower's own, finds close judged queries; it is
    `vector` for the bridge and zero-shot versions), `features` in the CNN's space (an uploaded picture's, or a
    stored one). Results of a text query that the version's calibration calls distant are
    hidden unless `include_distant`; when nothing passes, the nearest are shown and
    `nearest_only` says so."""
    started = time.perf_counter()
    if mode not in MODES:
        raise InvalidQuery(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if not 1 <= limit <= settings.GLIMPSE_SEARCH_MAX_LIMIT:
        raise InvalidQuery(f"limit must be between 1 and {settings.GLIMPSE_SEARCH_MAX_LIMIT}")
    depth = depth_check(offset=offset)
    text = " ".join(text.split())
    if not text and vector is None and features is None:
        raise InvalidQuery("type something to search for")
    if len(text) > settings.GLIMPSE_SEARCH_MAX_QUERY_CHARS:
        raise InvalidQuery(f"the query is {len(text)} characters; the limit is {settings.GLIMPSE_SEARCH_MAX_QUERY_CHARS}")
    version = version or version_active()
    space = space_for(version)
    if vector is None and text and mode != "keyword":
        raw_vector = space_for(version_base()).embed_texts([text])[0]
        vector = space.texts_from_base(raw_vector[None, :])[0]
    if raw_vector is None and vector is not None and version.kind != ModelVersion.Kind.HEADS:
        raw_vector = vector
    vector = None if vector is None else vector_literal(vector)
    features = None if features is None else vector_literal(features)
    judged = JudgedImages()
    if text and raw_vector is not None and mode != "keyword":
        judged = judged_list(raw_vector=vector_literal(raw_vector), filters=filters)
    ranking = fused_ranking(
        mode=mode, vector=vector, features=features, text=text, version=version, filters=filters, exclude_id=exclude_id, judged_ids=judged.lent
    )
    ranking = [(image_id, score) for image_id, score in ranking if image_id not in judged.rejected]
    collapsed = 0
    if collapse_distance:
        before = len(ranking)
        ranking = collapse_near_duplicates(ranking, version=version, distance=collapse_distance)
        collapsed = before - len(ranking)
    images = Image.objects.in_bulk([image_id for image_id, _ in ranking])
    hits = [Hit(image=images[image_id], score=score) for image_id, score in ranking if image_id in images]
    if text:
        judge_hits(hits, text=text, vector=vector, judged_ids=tuple(judged.relevant), version=version)
    # The calibration is of words against pictures; a query with a picture ranks without a cut-off.
    passed = hits if include_distant or features is not None else [hit for hit in hits if hit.label != "distant"]
    nearest_only = bool(hits) and not passed
    # The fused lists hold more than `depth` images; only the first `depth` are reachable.
    page = (hits if nearest_only else passed)[offset : min(offset + limit, depth)]
    return Results(
        hits=page,
        total=min(len(passed), depth),
        mode=mode,
        version=version,
        latency_ms=(time.perf_counter() - started) * 1000,
        offset=offset,
        limit=limit,
        collapsed=collapsed,
        image_ids=[hit.image.id for hit in page],
        distant=len(hits) - len(passed),
        nearest_only=nearest_only,
    )


def stored_vectors(*, image_id: int, version: ModelVersion | None = None) -> tuple[np.ndarray, np.ndarray | None] | None:
    """One image's stored (text-space vector, CNN features), for "more like this" with no model call."""
    version = version or version_active()
    row = version.embeddings.filter(image_id=image_id).values_list("image_vector", "feature_vector").first()
    if row is None:
        return None
    vector, features = row
    return np.asarray(vector, dtype=np.float32), None if features is None else np.asarray(features, dtype=np.float32)
