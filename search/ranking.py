"""Ranking is one SQL statement: each ranked list comes from its own index (HNSW for the
vector columns, GIN for full text) and the lists are fused with reciprocal rank fusion,
score = Σ weight / (60 + rank), in the same statement (weight 1, but for partial keyword
matches: the share of the query's words they contain). It runs on `search_cursor`
(search/sql.py)."""
import numpy as np
from django.conf import settings

from embeddings.indexes import index_predicate, indexed_expression
from embeddings.models import ModelVersion

from .keywords import KeywordQuery
from .query import Filters, filter_sql, search_depth
from .sql import halfvec, search_cursor

RRF_K = 60


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
