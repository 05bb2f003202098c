"""One set of partial HNSW indexes per model version.

`WHERE version_id = N` makes each index hold one version's vectors only: a search on
version N walks a graph of N's rows (no post-filtering across versions), a new version
is indexed while the old one serves, and dropping a version drops its indexes.

`AND <column> IS NOT NULL` (on the nullable columns) keeps the planner's idea of an
index's size true. HNSW leaves null vectors out, but ANALYZE counts every row the
predicate admits: with only
`version_id = N`, the description-vector index of a catalog where 300 of 100,000 images
are described was costed as a 100,000-row graph, and the planner scanned the table
instead. Queries must say the same predicate (`index_predicate`) for the index to serve.

Text queries rank images by `words_vector`, an expression index on
`COALESCE(text_vector, neighbour_vector, image_vector)`: every image once, by its words,
its own description where it has one, else the words it borrowed from look-alikes, else
the bridge's class names. Ranked as lists of their own, each kind put its own best at rank
1 and reciprocal rank fusion counted an image once per list it was in, so whichever side had
more lists won; in one list the closest words win (README, "Retrieval with a mixed
catalog"). The columns themselves stay as written: training, backfills and analysts read
them. Queries must repeat the expression (`indexed_expression`) for the index to serve.
"""
from django.conf import settings
from django.db import connection

from .models import ImageEmbedding, ModelVersion

# What each index ranks: a column, or for words_vector an expression over three.
INDEXED = {
    "words_vector": "COALESCE({prefix}text_vector, {prefix}neighbour_vector, {prefix}image_vector)",
    "feature_vector": "{prefix}feature_vector",
}
HNSW_OPTIONS = "m = 16, ef_construction = 64"
OPERATOR_CLASS = "halfvec_cosine_ops"


def indexed_expression(column: str, *, alias: str = "") -> str:
    return INDEXED[column].format(prefix=f"{alias}." if alias else "")


def index_name(column: str, version: ModelVersion) -> str:
    # By row id, which is never reused, so a name always means the same predicate.
    return f"embedding_{column}_id{version.id}"


def index_predicate(column: str, version: ModelVersion, *, alias: str = "") -> str:
    """The WHERE of `column`'s index for `version`; a query that says it walks that index.

    The version id is written into the statement, not passed as a parameter: the planner
    matches a partial index only against a known value, also in a prepared statement's
    generic plan. A NOT NULL column gets no IS NOT NULL: the planner drops that clause from
    queries as always true, and could then no longer prove the index's predicate."""
    prefix = f"{alias}." if alias else ""
    predicate = f"{prefix}version_id = {int(version.id)}"
    # words_vector is never null: image_vector is NOT NULL.
    if column != "words_vector" and ImageEmbedding._meta.get_field(column).null:
        predicate += f" AND {prefix}{column} IS NOT NULL"
    return predicate


def version_indexes_create(*, version: ModelVersion) -> None:
    # CONCURRENTLY keeps writes flowing on a live catalog; it cannot run inside a transaction.
    concurrently = "" if connection.in_atomic_block else "CONCURRENTLY "
    with connection.cursor() as cursor:
        for column in INDEXED:
            cursor.execute(
                f"CREATE INDEX {concurrently}IF NOT EXISTS {index_name(column, version)} "
                f"ON embeddings_imageembedding USING hnsw (({indexed_expression(column)}) {OPERATOR_CLASS}) "
                f"WITH ({HNSW_OPTIONS}) WHERE {index_predicate(column, version)}"
            )


def version_indexes_drop(*, version: ModelVersion) -> None:
    with connection.cursor() as cursor:
        for column in INDEXED:
            cursor.execute(f"DROP INDEX IF EXISTS {index_name(column, version)}")


def scan_index_until_enough(cursor, *, depth: int) -> None:
    """Per transaction: keep walking a version's HNSW graph past rows the WHERE rejects."""
    cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
    cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(max(settings.GLIMPSE_HNSW_EF_SEARCH, depth))])
