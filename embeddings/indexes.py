"""One set of partial HNSW indexes per model version.

`WHERE version_id = N` makes each index hold one version's vectors only: a search on
version N walks a graph of N's rows (no post-filtering across versions), a new version
is indexed while the old one serves, and dropping a version drops its indexes.

Each index also says which rows it holds (`AND text_vector IS NOT NULL`, ...), which
keeps the planner's idea of an index's size true. HNSW leaves null vectors out, but ANALYZE counts every row the
predicate admits: with only
`version_id = N`, the description-vector index of a catalog where 300 of 100,000 images
are described was costed as a 100,000-row graph, and the planner scanned the table
instead. Queries must say the same predicate (`index_predicate`) for the index to serve.

A text query ranks two lists, each image in one of them: described images by their
description vectors (`text_vector`), and images without text by `bare_vector`, an
expression index on `COALESCE(neighbour_vector, image_vector)` over the rows where
`text_vector IS NULL`: the words they borrowed from look-alikes, else the bridge's class
names. A described image's bridge vector is ranked nowhere: as a list of every image's
bridge vector it let weak cosines decide half of a described image's place, and pictures
whose ImageNet classes resembled the words crowded described answers out. One list over
all three kinds ranked by raw cosine instead put bare images under described
look-alikes, because a borrowed vector's cosine runs lower than a description's (docs/retrieval.md,
"Retrieval with a mixed catalog"). The columns themselves stay as written: training, backfills and analysts read
them. Queries must repeat the expression (`indexed_expression`) for the index to serve.

A version with a multilingual text tower has the same two lists in that tower's space
(`multilingual_text_vector`, `multilingual_bare_vector`); whether an image is described is
the same in both spaces (the same words went through both towers).
"""
from django.conf import settings
from django.db import connection

from .models import ModelVersion

# Per index: what it ranks (a column, or for bare_vector an expression over two) and
# which of a version's rows it holds. bare_vector is never null (image_vector is NOT
# NULL): its rows are the images without text.
INDEXED = {
    "text_vector": ("{prefix}text_vector", "{prefix}text_vector IS NOT NULL"),
    "bare_vector": ("COALESCE({prefix}neighbour_vector, {prefix}image_vector)", "{prefix}text_vector IS NULL"),
    "feature_vector": ("{prefix}feature_vector", "{prefix}feature_vector IS NOT NULL"),
    "multilingual_text_vector": ("{prefix}multilingual_text_vector", "{prefix}multilingual_text_vector IS NOT NULL"),
    "multilingual_bare_vector": (
        "COALESCE({prefix}multilingual_neighbour_vector, {prefix}multilingual_image_vector)",
        "{prefix}text_vector IS NULL AND {prefix}multilingual_image_vector IS NOT NULL",
    ),
}
MULTILINGUAL_INDEXES = ("multilingual_text_vector", "multilingual_bare_vector")
HNSW_OPTIONS = "m = 16, ef_construction = 64"
OPERATOR_CLASS = "halfvec_cosine_ops"


def indexed_expression(column: str, *, alias: str = "") -> str:
    return INDEXED[column][0].format(prefix=f"{alias}." if alias else "")


def index_name(column: str, version: ModelVersion) -> str:
    # By row id, which is never reused, so a name always means the same predicate.
    return f"embedding_{column}_id{version.id}"


def index_predicate(column: str, version: ModelVersion, *, alias: str = "") -> str:
    """The WHERE of `column`'s index for `version`; a query that says it walks that index.

    The version id is written into the statement, not passed as a parameter: the planner
    matches a partial index only against a known value, also in a prepared statement's
    generic plan. No index says IS NOT NULL of a NOT NULL column: the planner drops that
    clause from queries as always true, and could then no longer prove the predicate."""
    prefix = f"{alias}." if alias else ""
    return f"{prefix}version_id = {int(version.id)} AND {INDEXED[column][1].format(prefix=prefix)}"


def version_indexes(version: ModelVersion) -> list[str]:
    """The indexes `version` is searched by: the multilingual ones only where it has that tower."""
    return [column for column in INDEXED if version.multilingual or column not in MULTILINGUAL_INDEXES]


def version_indexes_create(*, version: ModelVersion) -> None:
    # CONCURRENTLY keeps writes flowing on a live catalog; it cannot run inside a transaction.
    concurrently = "" if connection.in_atomic_block else "CONCURRENTLY "
    with connection.cursor() as cursor:
        for column in version_indexes(version):
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
