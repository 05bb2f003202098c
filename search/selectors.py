"""Search reads. Ranking is one SQL statement: each ranked list comes from its own
index (HNSW for the vector columns, GIN for full text) and the lists are fused with
reciprocal rank fusion, score = Σ weight / (60 + rank), in the same statement (weight 1,
but for partial keyword matches: the share of the query's words they contain).

The statements go through `search_cursor`: the query vector travels once per statement
as a binary halfvec parameter (not a 384-number text literal the server parses once per
list), and each statement is prepared on its connection, so a repeated search is neither
parsed nor planned again."""
import functools
import re
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import psycopg
from django.conf import settings
from django.db import connections
from pgvector import HalfVector, Vector
from pgvector.psycopg.halfvec import HalfVectorBinaryDumper, HalfVectorBinaryLoader, HalfVectorDumper, HalfVectorLoader
from pgvector.psycopg.vector import VectorBinaryDumper, VectorBinaryLoader, VectorDumper, VectorLoader

from catalog.models import Image
from config.routers import read_database
from embeddings.indexes import index_predicate, indexed_expression
from embeddings.models import ModelVersion
from embeddings.selectors import version_active

from .evaluation import RELEVANT_GRADE
from .exceptions import InvalidQuery
from .query_vectors import query_text_vectors
from .relevance import calibration_for

MODES = ("hybrid", "semantic", "keyword")
# What a search with filters and nothing to rank by answers with: the newest images first.
BROWSE_MODE = "newest"
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
    image_id: int
    score: float
    image: Image | None = None  # fetched for the hits on the page only
    similarity: float | None = None  # the query's best cosine over the image's text-space vectors
    relevance: float | None = None  # 0–1, see search/relevance.py
    label: str = ""  # close / related / distant
    judged: bool = False  # a curator graded it relevant for this or a close query
    hidden_by: int = 0  # curators who graded it 0 for this or a close query, enough to hide it from visitors


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
    picture: str = ""  # the uploaded query picture's key, for the next pages (search/query_pictures.py)

    @property
    def has_next(self) -> bool:
        return self.offset + self.limit < self.total


def checked_vector(vector) -> np.ndarray:
    """A query vector checked to be one row of finite numbers, as float32 for the search
    functions (they bind it as a binary parameter)."""
    values = np.asarray(vector, dtype=np.float32)
    if values.ndim != 1 or not np.isfinite(values).all():
        raise InvalidQuery("the query vector must be one row of finite numbers")
    return values


def halfvec(vector) -> HalfVector | None:
    return None if vector is None else HalfVector(checked_vector(vector))


# pgvector's type oids per raw connection: one catalog query per connection.
_vector_oids: "weakref.WeakKeyDictionary[psycopg.Connection, tuple[int, int]]" = weakref.WeakKeyDictionary()


@functools.cache
def vector_adapters(vector_oid: int, halfvec_oid: int) -> tuple[list, list]:
    """(dumpers, loaders) for pgvector's types in one database: what pgvector's
    register_vector_info and register_halfvec_info put on a cursor, with the dumper
    classes made once. Those functions make new classes on every call, which was most of
    the cost of a search cursor (0.23 of 0.38 ms, five cursors a search)."""

    def with_oid(dumper, oid: int):
        return type(dumper.__name__, (dumper,), {"oid": oid})

    dumpers = [
        (Vector, with_oid(VectorDumper, vector_oid)),
        (Vector, with_oid(VectorBinaryDumper, vector_oid)),  # registered last: the default for %s
        (HalfVector, with_oid(HalfVectorDumper, halfvec_oid)),
        (HalfVector, with_oid(HalfVectorBinaryDumper, halfvec_oid)),
    ]
    loaders = [(vector_oid, VectorLoader), (vector_oid, VectorBinaryLoader), (halfvec_oid, HalfVectorLoader), (halfvec_oid, HalfVectorBinaryLoader)]
    return dumpers, loaders


class PreparedCursor(psycopg.Cursor):
    """Binds parameters on the server and prepares each statement on its connection, so a
    repeated search is neither parsed nor planned again; rows come back in binary."""

    def execute(self, query, params=None, *, prepare=True, binary=True):
        return super().execute(query, params, prepare=prepare, binary=binary)


@contextmanager
def search_cursor():
    """A PreparedCursor on the connection reads go to now (a replica inside
    `replica_reads()`, config/routers.py), inside Django's cursor wrapper: database errors,
    execute wrappers and query logging behave as for any Django query.

    Django's own cursors interpolate parameters into the SQL text on the client, which
    can neither send a vector in binary nor prepare a statement. pgvector's adapters are
    registered on this cursor only: the ORM's queries on the same connection keep reading
    vectors Django's way, whether or not a search ran on it before."""
    connection = connections[read_database()]
    connection.ensure_connection()
    raw = connection.connection
    oids = _vector_oids.get(raw)
    if oids is None:
        with raw.cursor() as cursor:
            cursor.execute("SELECT 'vector'::regtype::oid, 'halfvec'::regtype::oid")
            oids = _vector_oids[raw] = cursor.fetchone()
    cursor = PreparedCursor(raw)
    dumpers, loaders = vector_adapters(*oids)
    for python_type, dumper in dumpers:
        cursor.adapters.register_dumper(python_type, dumper)
    for oid, loader in loaders:
        cursor.adapters.register_loader(oid, loader)
    # Private Django API: _prepare_cursor is how Django wraps the cursors it makes itself
    # (CursorWrapper, or the debug one that logs queries); there is no public way to wrap a
    # cursor made here. tests/search/test_query_path.py checks what it returns.
    with connection._prepare_cursor(cursor) as wrapped:
        yield wrapped


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


def vector_list_sql(column: str, where: str, *, version: ModelVersion, query: str = "vector") -> str:
    """`column` names an index (embeddings/indexes.py); `query` the column of the
    statement's `query` row to rank by (vector, multilingual or features). Its parameters:
    the list's weight in the fusion, then the filters'."""
    indexed = indexed_expression(column, alias="e")
    join = " JOIN catalog_image i ON i.id = e.image_id" if where else ""
    # The inner ORDER BY ... LIMIT is what the HNSW index serves; its WHERE repeats the
    # index's own predicate, or the planner will not take the index. The outer row_number
    # orders by similarity, not by the index's distance expression, so that the planner
    # really sorts: iterative scans relax the index's order, and the index (normalised
    # half precision) ties vectors less than a degree apart.
    return f"""
        SELECT image_id, row_number() OVER (ORDER BY similarity DESC) AS rank, %s::numeric AS weight FROM (
            SELECT e.image_id, 1 - ({indexed} <=> (SELECT {query} FROM query)) AS similarity
            FROM embeddings_imageembedding e{join}
            WHERE {index_predicate(column, version, alias="e")}{where}
            ORDER BY {indexed} <=> (SELECT {query} FROM query)
            LIMIT {int(search_depth())}
        ) candidates"""


# Any word may match (OR): images are ranked by how many of the query's words, phrases
# included, they contain, then by ts_rank_cd, and count in the fusion by the share they
# contain: an image with one word of three is weaker evidence than one with all three, and
# at full weight a partial match outranked pictures that only the vectors find. Stop words
# parse to empty queries and count for nothing; exclusions (-word, -"a phrase") remove
# images outright. Each term is parsed alone by glimpse_to_tsquery (catalog migration
# 0004), in the catalog's language (the configuration `glimpse`, catalog/text_search.py):
# a run of Chinese, Japanese or Korean in it is one phrase of its character bigrams, so
# such a term counts as one word too.
KEYWORD_LIST_SQL = """
        SELECT image_id, row_number() OVER (ORDER BY matched DESC, relevance DESC, image_id) AS rank,
               matched::numeric / greatest(counted, 1) AS weight FROM (
            SELECT i.id AS image_id, ts_rank_cd(i.search_document, k.query) AS relevance,
                   (SELECT count(*) FROM unnest(k.terms) term WHERE i.search_document @@ term) AS matched, k.counted
            FROM catalog_image i, (
                SELECT (SELECT glimpse_any(term) FROM unnest(terms) term) && !!(SELECT glimpse_any(term) FROM unnest(excluded) term) AS query,
                       terms, (SELECT count(*) FROM unnest(terms) term WHERE numnode(term) > 0) AS counted FROM (
                    SELECT ARRAY(SELECT glimpse_to_tsquery('glimpse', term) FROM unnest(%s::text[]) term) AS terms,
                           ARRAY(SELECT glimpse_to_tsquery('glimpse', term) FROM unnest(%s::text[]) term) AS excluded
                ) parsed
            ) k
            WHERE i.search_document @@ k.query{where}
            ORDER BY matched DESC, relevance DESC, i.id
            LIMIT %s
        ) candidates"""

# The words read in pictures, found by a part or with one misread character: each query
# word is looked up by its keys in picture_word_keys (GIN), then checked against the
# picture's words (catalog migration 0005). Ranked as the keyword list is, by the share of
# the query's words found, and weighed by half that share: a whole word read is in the
# keyword list already, and a part or a misread is weaker evidence. Exclusions hold here too.
PICTURE_WORDS_LIST_SQL = """
        SELECT image_id, row_number() OVER (ORDER BY matched DESC, image_id) AS rank,
               0.5 * matched::numeric / counted AS weight FROM (
            SELECT i.id AS image_id, cardinality(t.terms) AS counted,
                   (SELECT count(*) FROM unnest(t.terms) term WHERE glimpse_word_found(term, glimpse_words(i.picture_text))) AS matched
            FROM catalog_image i, (SELECT glimpse_words(%s) AS terms) t
            WHERE i.picture_word_keys && (SELECT array_agg(key) FROM unnest(glimpse_words(%s)) term, unnest(glimpse_term_keys(term)) key){excluded}{where}
            ORDER BY matched DESC, i.id
            LIMIT %s
        ) candidates
        WHERE matched > 0"""
EXCLUDED_SQL = """
              AND NOT i.search_document @@ (SELECT glimpse_any(glimpse_to_tsquery('glimpse', term)) FROM unnest(%s::text[]) term)"""
# The words read in pictures by meaning, through the multilingual tower: the nearest whose
# cosine reaches PICTURE_TEXT_SIMILARITY, so that a query no picture's words mean adds
# nothing.
PICTURE_MEANING_LIST_SQL = """
        SELECT image_id, row_number() OVER (ORDER BY similarity DESC) AS rank, 1.0 AS weight FROM (
            SELECT p.image_id, 1 - (p.vector <=> (SELECT multilingual FROM query)) AS similarity
            FROM embeddings_picturetextvector p{join}
            WHERE p.text_model = %s{where}
            ORDER BY p.vector <=> (SELECT multilingual FROM query)
            LIMIT {depth}
        ) candidates
        WHERE similarity >= %s"""

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
        """the terms, any of which may match, and the exclusions, none of which may"""
        return [list(self.terms), list(self.excluded)]


# Every image that curators graded for judged queries whose text is within `distance` of
# this one, with its mean grade (the best over those queries) and how many curators graded
# it there, the closest query's first: judgments count at once, before any training.
JUDGED_LIST_SQL = """
        WITH query AS MATERIALIZED (SELECT %s::vector AS vector)
        SELECT image_id, max(similarity) AS similarity, max(grade) AS grade, count(DISTINCT curator_id) AS curators FROM (
            SELECT j.image_id, j.curator_id, q.similarity, avg(j.grade) OVER (PARTITION BY q.query_key, j.image_id) AS grade
            FROM (
                SELECT query_key, 1 - ({column} <=> (SELECT vector FROM query)) AS similarity
                FROM search_judgedquery WHERE {column} <=> (SELECT vector FROM query) <= %s
            ) q
            JOIN search_relevancejudgment j ON j.query_key = q.query_key AND j.is_current
            JOIN catalog_image i ON i.id = j.image_id
            WHERE true{where}
        ) graded
        GROUP BY image_id
        ORDER BY similarity DESC, grade DESC, image_id"""


@dataclass(frozen=True)
class JudgedImages:
    """What close judged queries say about this one. Every image graded at least partly
    relevant is lent, by grade, as one ranked list (partly relevant ones included: for most
    queries a curator finds no exact match, and they are what the judgments hold). An image
    graded 0 there by GLIMPSE_HIDE_AFTER_CURATORS curators or more, and higher by none, is
    hidden from visitors."""

    lent: tuple[int, ...] = ()
    relevant: frozenset[int] = frozenset()  # graded ≥ 2: shown as judged
    rejected: dict[int, int] = field(default_factory=dict)  # image id: the curators who graded it 0


def judged_list(*, raw_vector, filters: Filters, multilingual: bool = False) -> JudgedImages:
    """`raw_vector` is the English tower's own vector of the query, or with `multilingual`
    the multilingual tower's, which finds judged queries in any language."""
    where, where_params = filter_sql(filters)
    column, similarity = (
        ("multilingual_vector", settings.GLIMPSE_JUDGED_QUERY_SIMILARITY_MULTILINGUAL) if multilingual
        else ("vector", settings.GLIMPSE_JUDGED_QUERY_SIMILARITY)
    )
    # search_judgedquery holds float32 vectors: the text towers' own, compared at full precision.
    params = [Vector(checked_vector(raw_vector)), 1 - similarity, *where_params]
    with search_cursor() as cursor:
        cursor.execute(JUDGED_LIST_SQL.format(where=where, column=column), params)
        rows = cursor.fetchall()
    return JudgedImages(
        lent=tuple(image_id for image_id, _, grade, _ in rows if grade >= 1)[: search_depth()],
        relevant=frozenset(image_id for image_id, _, grade, _ in rows if grade >= RELEVANT_GRADE),
        rejected={
            image_id: curators for image_id, _, grade, curators in rows if grade == 0 and curators >= settings.GLIMPSE_HIDE_AFTER_CURATORS
        },
    )


JUDGED_RANKS_SQL = """
        SELECT image_id, rank, 1.0 AS weight FROM unnest(%s::bigint[]) WITH ORDINALITY AS judged(image_id, rank)"""


def ranked_lists(
    *, mode: str, vector, features, text: str, version: ModelVersion, filters: Filters, judged_ids: tuple[int, ...] = (),
    multilingual=None, english: float = 1.0,
) -> tuple[list[str], list]:
    """One ranked list per index that can answer: in each text tower's space, described
    images by their descriptions and the others by borrowed words, else the bridge (each
    image in one of the two), the English tower's lists counting by the query's
    Englishness; CNN features for picture queries; full text for words; plus the images
    judged relevant for close queries."""
    where, where_params = filter_sql(filters)
    lists, params = [], []
    if judged_ids:
        lists.append(JUDGED_RANKS_SQL)
        params.append(list(judged_ids))
    columns = []
    if mode in ("hybrid", "semantic"):
        if vector is not None and english > 0:
            columns += [("text_vector", "vector", english), ("bare_vector", "vector", english)]
        if multilingual is not None and version.multilingual:
            columns += [("multilingual_text_vector", "multilingual", 1.0), ("multilingual_bare_vector", "multilingual", 1.0)]
        if features is not None:
            columns.append(("feature_vector", "features", 1.0))
    for column, query, weight in columns:
        lists.append(vector_list_sql(column, where, version=version, query=query))
        params += [weight, *where_params]
    keywords = KeywordQuery.parse(text)
    if mode in ("hybrid", "keyword") and keywords.terms:
        lists.append(KEYWORD_LIST_SQL.format(where=where))
        params += [*keywords.params(), *where_params, search_depth()]
        words = " ".join(keywords.terms)
        lists.append(PICTURE_WORDS_LIST_SQL.format(excluded=EXCLUDED_SQL if keywords.excluded else "", where=where))
        params += [words, words, *([list(keywords.excluded)] if keywords.excluded else []), *where_params, search_depth()]
    if mode in ("hybrid", "semantic") and multilingual is not None and version.multilingual:
        join = " JOIN catalog_image i ON i.id = p.image_id" if where else ""
        lists.append(PICTURE_MEANING_LIST_SQL.format(join=join, where=where, depth=int(search_depth())))
        params += [version.multilingual_text_model, *where_params, settings.GLIMPSE_PICTURE_TEXT_SIMILARITY]
    return lists, params


def fused_ranking_sql(
    *, mode, vector, text, version, filters, features=None, exclude_id=None, judged_ids=(), multilingual=None, english: float = 1.0
) -> tuple[str, list]:
    """The one ranking statement and its parameters ("" when there is nothing to rank by).
    The query vectors are bound once, in the `query` row that every vector list reads."""
    lists, params = ranked_lists(
        mode=mode, vector=vector, features=features, text=text, version=version, filters=filters, judged_ids=judged_ids,
        multilingual=multilingual, english=english,
    )
    if not lists:
        return "", []
    union = "\n        UNION ALL\n".join(lists)
    exclude = "WHERE image_id <> %s" if exclude_id else ""
    params = [halfvec(vector), halfvec(features), halfvec(multilingual), *params]
    sql = f"""
        WITH query AS MATERIALIZED (SELECT %s::halfvec AS vector, %s::halfvec AS features, %s::halfvec AS multilingual)
        SELECT image_id, sum(weight / ({RRF_K} + rank)) AS score
        FROM ({union}) ranked
        {exclude}
        GROUP BY image_id
        ORDER BY score DESC, image_id
    """
    if exclude_id:
        params.append(exclude_id)
    return sql, params


def ef_search_for(depth: int) -> int:
    """The HNSW candidate list for a page ending at `depth`: at least GLIMPSE_HNSW_EF_SEARCH,
    at least the page's depth; the iterative scan fetches the rest of each list's
    candidates beyond it."""
    return max(settings.GLIMPSE_HNSW_EF_SEARCH, depth)


def configure_index_scans(cursor, *, depth: int | None = None) -> None:
    """Filtered searches keep scanning the index until enough rows pass; ef_search follows
    the page depth (the whole search depth when not given). For the connection's session,
    in one round trip: a transaction around the search (BEGIN, SET LOCAL, COMMIT) would
    cost three; every search sets both anyway."""
    cursor.execute(
        "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', false), set_config('hnsw.ef_search', %s, false)",
        [str(ef_search_for(search_depth() if depth is None else depth))],
    )


def fused_ranking(*, depth: int | None = None, **query) -> list[tuple[int, float]]:
    """[(image_id, rrf score)] best first, for the whole candidate pool; `depth` is how
    far down the pool the caller will page (offset + limit)."""
    sql, params = fused_ranking_sql(**query)
    if not sql:
        return []
    with search_cursor() as cursor:
        configure_index_scans(cursor, depth=depth)
        cursor.execute(sql, params)
        return [(image_id, float(score)) for image_id, score in cursor.fetchall()]


def collapse_near_duplicates(ranking: list[tuple[int, float]], *, version: ModelVersion, distance: float) -> list[tuple[int, float]]:
    """Drop each image that looks within `distance` of a higher-ranked one (CNN features
    where stored, else the text-space vector)."""
    ids = [image_id for image_id, _ in ranking]
    with search_cursor() as cursor:
        cursor.execute(
            "SELECT image_id, coalesce(feature_vector, image_vector) FROM embeddings_imageembedding"
            f" WHERE version_id = {int(version.id)} AND image_id = ANY(%s)",
            [ids],
        )
        vectors = dict(cursor.fetchall())
    kept, kept_vectors = [], []
    for image_id, score in ranking:
        vector = vectors.get(image_id)
        if vector is not None:
            vector = vector.to_numpy().astype(np.float32)
            if kept_vectors and float((1 - np.stack(kept_vectors) @ vector).min()) < distance:
                continue
            kept_vectors.append(vector)
        kept.append((image_id, score))
    return kept


# The kind of vector (search/relevance.py KINDS) each image was ranked by, and its cosine:
# the description where there is one, else the borrowed words, else the bridge
# (embeddings/indexes.py). A described image is judged by its words, as it was ranked, not
# by a bridge vector the ranking did not use.
SIMILARITY_SQL = """
        SELECT image_id,
               CASE WHEN text_vector IS NOT NULL THEN 'text' WHEN neighbour_vector IS NOT NULL THEN 'neighbour' ELSE 'image' END,
               1 - (COALESCE(text_vector, neighbour_vector, image_vector) <=> %(query)s)
        FROM embeddings_imageembedding WHERE version_id = %(version)s AND image_id = ANY(%(ids)s)"""
# The same in the multilingual tower's space; its kinds have calibrations of their own.
MULTILINGUAL_SIMILARITY_SQL = """
        SELECT image_id,
               CASE WHEN multilingual_text_vector IS NOT NULL THEN 'multilingual_text'
                    WHEN multilingual_neighbour_vector IS NOT NULL THEN 'multilingual_neighbour' ELSE 'multilingual_image' END,
               1 - (COALESCE(multilingual_text_vector, multilingual_neighbour_vector, multilingual_image_vector) <=> %(query)s)
        FROM embeddings_imageembedding
        WHERE version_id = %(version)s AND image_id = ANY(%(ids)s) AND multilingual_image_vector IS NOT NULL"""

# How many of the query's words and phrases each image contains, and how many count
# (stop words parse to empty queries and are left out).
COVERAGE_SQL = """
        SELECT i.id, (SELECT count(*) FROM unnest(k.terms) term WHERE i.search_document @@ term), cardinality(k.terms)
        FROM catalog_image i, (
            SELECT ARRAY(
                SELECT term FROM (SELECT glimpse_to_tsquery('glimpse', word) AS term FROM unnest(%s::text[]) word) parsed
                WHERE numnode(term) > 0
            ) AS terms
        ) k
        WHERE i.id = ANY(%s)"""


def similarities(*, ids: list[int], vector, version: ModelVersion, multilingual: bool = False) -> dict[int, dict[str, float]]:
    """{image id: {kind: the query's cosine with that vector}} for the kind each image is
    ranked by, in the English tower's space or (`multilingual`) the multilingual one's."""
    with search_cursor() as cursor:
        cursor.execute(MULTILINGUAL_SIMILARITY_SQL if multilingual else SIMILARITY_SQL, {"query": halfvec(vector), "version": version.id, "ids": ids})
        return {image_id: {kind: float(value)} for image_id, kind, value in cursor.fetchall()}


# For the pictures on a page that have words read in them: the share of the query's words
# found among those words (a part, or one misread character, counts), and the cosine of
# the query with their meaning (null without a multilingual query vector).
PICTURE_TEXT_EVIDENCE_SQL = """
        SELECT i.id,
               (SELECT count(*) FROM unnest(t.terms) term WHERE glimpse_word_found(term, glimpse_words(i.picture_text)))::float
                   / greatest(cardinality(t.terms), 1),
               1 - (p.vector <=> %s::halfvec)
        FROM catalog_image i
        LEFT JOIN embeddings_picturetextvector p ON p.image_id = i.id AND p.text_model = %s,
             (SELECT glimpse_words(%s) AS terms) t
        WHERE i.id = ANY(%s) AND i.picture_text <> ''"""


def picture_text_evidence(*, ids: list[int], text: str, multilingual, version: ModelVersion) -> dict[int, tuple[float, float | None]]:
    """{image id: (share of the query's words found in its read words, cosine with their meaning)}."""
    with search_cursor() as cursor:
        cursor.execute(PICTURE_TEXT_EVIDENCE_SQL, [halfvec(multilingual), version.multilingual_text_model, text, ids])
        return {image_id: (float(share), None if similarity is None else float(similarity)) for image_id, share, similarity in cursor.fetchall()}


def keyword_coverage(*, ids: list[int], keywords: KeywordQuery) -> dict[int, float]:
    """Share of the query's (non-stop) words each image matches."""
    with search_cursor() as cursor:
        cursor.execute(COVERAGE_SQL, [list(keywords.terms), ids])
        return {image_id: matched / counted for image_id, matched, counted in cursor.fetchall() if counted}


def judge_hits(
    hits: list[Hit], *, text: str, vector: np.ndarray | None, judged_ids: tuple[int, ...], version: ModelVersion,
    multilingual: np.ndarray | None = None, read_vector: np.ndarray | None = None,
) -> None:
    """Fill each hit's similarity, relevance and label. Each text-space similarity is read
    against the version's calibration for its kind of vector, in the space of the tower
    that reads the query (the English one's when it reads most of it, else the
    multilingual one's); without one (keyword mode) relevance is the share of the query's
    words matched. Judged hits and hits matching every word are close, in their
    descriptions or in the words read in them; `read_vector`, the multilingual tower's
    vector of the query, finds the pictures whose read words mean it."""
    ids = [hit.image_id for hit in hits]
    keywords = KeywordQuery.parse(text)
    coverage = keyword_coverage(ids=ids, keywords=keywords) if keywords.terms and ids else {}
    similar = {}
    if ids and (vector is not None or multilingual is not None):
        similar = (
            similarities(ids=ids, vector=vector, version=version) if vector is not None
            else similarities(ids=ids, vector=multilingual, version=version, multilingual=True)
        )
    measured = [hit for hit in hits if similar.get(hit.image_id)]
    for hit, (relevance, label) in zip(measured, calibration_for(version).judge([similar[hit.image_id] for hit in measured])):
        hit.similarity = max(similar[hit.image_id].values())
        hit.relevance, hit.label = relevance, label
    # The words read in a picture: all of the query's found there, or its meaning close
    # enough to rank it, and the picture is shown whatever its look says.
    read = picture_text_evidence(ids=ids, text=" ".join(keywords.terms), multilingual=read_vector, version=version) if ids and text else {}
    judged = set(judged_ids)
    for hit in hits:
        hit.judged = hit.image_id in judged
        words = coverage.get(hit.image_id, 0.0)
        read_share, read_similarity = read.get(hit.image_id, (0.0, None))
        if vector is None and multilingual is None and (coverage or read):
            hit.relevance, hit.label = max(words, read_share), "related"
        if read_similarity is not None and read_similarity >= settings.GLIMPSE_PICTURE_TEXT_SIMILARITY and hit.label in ("", "distant"):
            hit.label = "related"
        if hit.judged or words == 1.0 or read_share == 1.0:
            hit.label = "close"


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
    if mode not in MODES:
        raise InvalidQuery(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    if not 1 <= limit <= settings.GLIMPSE_SEARCH_MAX_LIMIT:
        raise InvalidQuery(f"limit must be between 1 and {settings.GLIMPSE_SEARCH_MAX_LIMIT}")
    depth = depth_check(offset=offset)
    text = " ".join(text.split())
    if not text and vector is None and multilingual_vector is None and features is None:
        raise InvalidQuery("type something to search for")
    if len(text) > settings.GLIMPSE_SEARCH_MAX_QUERY_CHARS:
        raise InvalidQuery(f"the query is {len(text)} characters; the limit is {settings.GLIMPSE_SEARCH_MAX_QUERY_CHARS}")
    version = version or version_active()
    english = 1.0
    if vector is None and multilingual_vector is None and text and mode != "keyword":
        encoded = query_text_vectors(text=text, version=version)
        raw_vector, vector, multilingual_vector, english = encoded.raw, encoded.vector, encoded.multilingual, encoded.english
    if raw_vector is None and vector is not None and version.kind != ModelVersion.Kind.HEADS:
        raw_vector = vector
    vector = None if vector is None else checked_vector(vector)
    multilingual_vector = None if multilingual_vector is None or not version.multilingual else checked_vector(multilingual_vector)
    features = None if features is None else checked_vector(features)
    judged = JudgedImages()
    if text and mode != "keyword" and (raw_vector is not None or multilingual_vector is not None):
        # Close judged queries by the English tower where it reads the query; the multilingual
        # tower's vectors tell near-identical queries apart only (docs/multilingual.md).
        multilingual = raw_vector is None
        judged = judged_list(raw_vector=multilingual_vector if multilingual else raw_vector, filters=filters, multilingual=multilingual)
    ranking = fused_ranking(
        mode=mode,
        vector=vector,
        features=features,
        multilingual=multilingual_vector,
        english=english,
        text=text,
        version=version,
        filters=filters,
        exclude_id=exclude_id,
        judged_ids=judged.lent,
        depth=min(offset + limit, depth),
    )
    collapsed = 0
    if collapse_distance:
        before = len(ranking)
        ranking = collapse_near_duplicates(ranking, version=version, distance=collapse_distance)
        collapsed = before - len(ranking)
    hits = [Hit(image_id=image_id, score=score, hidden_by=judged.rejected.get(image_id, 0)) for image_id, score in ranking]
    if text:
        # Read in the space of the tower that reads most of the query.
        english_reads = vector is not None and (english >= 0.5 or multilingual_vector is None)
        judge_hits(
            hits, text=text, vector=vector if english_reads else None, judged_ids=tuple(judged.relevant), version=version,
            multilingual=None if english_reads else multilingual_vector, read_vector=multilingual_vector,
        )
    # Hidden by curators' grades: never shown to visitors, not even with the distant results.
    visible = hits if show_hidden else [hit for hit in hits if not hit.hidden_by]
    # The calibration is of words against pictures; a query with a picture ranks without a cut-off.
    passed = visible if include_distant or features is not None else [hit for hit in visible if hit.label != "distant"]
    nearest_only = bool(visible) and not passed
    shown = visible if nearest_only else passed  # what is counted is what pages show
    # The fused lists hold more than `depth` images; only the first `depth` are reachable.
    page = shown[offset : min(offset + limit, depth)]
    # Only the page's images are read: the rest of the pool is counted, never shown.
    images = Image.objects.in_bulk([hit.image_id for hit in page])
    page = [hit for hit in page if hit.image_id in images]  # an image deleted since it was ranked
    for hit in page:
        hit.image = images[hit.image_id]
    return Results(
        hits=page,
        total=min(len(shown), depth),
        mode=mode,
        version=version,
        latency_ms=(time.perf_counter() - started) * 1000,
        offset=offset,
        limit=limit,
        collapsed=collapsed,
        image_ids=[hit.image_id for hit in page],
        distant=len(visible) - len(passed),
        nearest_only=nearest_only,
    )


BROWSE_SQL = """
SELECT i.id FROM catalog_image i
WHERE true{filters}
ORDER BY i.created_at DESC, i.id DESC
LIMIT %s
"""


def images_browse(*, filters: Filters, limit: int, offset: int, version: ModelVersion) -> Results:
    """The images `filters` let through, newest first (a category, a tag, some days; no
    words). Pages go as deep as a search's, so `total` is at most the search depth."""
    started = time.perf_counter()
    depth = depth_check(offset=offset)
    where, params = filter_sql(filters)
    with connections[read_database()].cursor() as cursor:
        cursor.execute(BROWSE_SQL.format(filters=where), [*params, depth])
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
