"""What curators' grades for close queries say about a new one (search/judgments.py
records them)."""
from dataclasses import dataclass, field

from django.conf import settings
from pgvector import Vector

from .evaluation import RELEVANT_GRADE
from .query import Filters, filter_sql, search_depth
from .sql import checked_vector, search_cursor

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


def judged_list_sql(*, raw_vector, filters: Filters, multilingual: bool = False) -> tuple[str, list]:
    where, where_params = filter_sql(filters)
    column, similarity = (
        ("multilingual_vector", settings.GLIMPSE_JUDGED_QUERY_SIMILARITY_MULTILINGUAL) if multilingual
        else ("vector", settings.GLIMPSE_JUDGED_QUERY_SIMILARITY)
    )
    # search_judgedquery holds float32 vectors: the text towers' own, compared at full precision.
    return JUDGED_LIST_SQL.format(where=where, column=column), [Vector(checked_vector(raw_vector)), 1 - similarity, *where_params]


def judged_list(*, raw_vector, filters: Filters, multilingual: bool = False) -> JudgedImages:
    """`raw_vector` is the English tower's own vector of the query, or with `multilingual`
    the multilingual tower's, which finds judged queries in any language."""
    with search_cursor() as cursor:
        cursor.execute(*judged_list_sql(raw_vector=raw_vector, filters=filters, multilingual=multilingual))
        rows = cursor.fetchall()
    return JudgedImages(
        lent=tuple(image_id for image_id, _, grade, _ in rows if grade >= 1)[: search_depth()],
        relevant=frozenset(image_id for image_id, _, grade, _ in rows if grade >= RELEVANT_GRADE),
        rejected={
            image_id: curators for image_id, _, grade, curators in rows if grade == 0 and curators >= settings.GLIMPSE_HIDE_AFTER_CURATORS
        },
    )
