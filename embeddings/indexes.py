"""One set of partial HNSW indexes per model version.

`WHERE version_id = N` makes each index hold one version's vectors only: a search on
version N walks a graph of N's rows (no post-filtering across versions), a new version
is indexed while the old one serves, and dropping a version drops its indexes.
"""
from django.conf import settings
from django.db import connection

from .models import ModelVersion

COLUMNS = ("image_vector", "text_vector", "feature_vector", "neighbour_vector")
HNSW_OPTIONS = "m = 16, ef_construction = 64"


def index_name(column: str, version: ModelVersion) -> str:
    # By row id, which is never reused, so a name always means the same predicate.
    return f"embedding_{column}_id{version.id}"


def version_indexes_create(*, version: ModelVersion) -> None:
    # CONCURRENTLY keeps writes flowing on a live catalog; it cannot run inside a transaction.
    concurrently = "" if connection.in_atomic_block else "CONCURRENTLY "
    with connection.cursor() as cursor:
        for column in COLUMNS:
            cursor.execute(
                f"CREATE INDEX {concurrently}IF NOT EXISTS {index_name(column, version)} "
                f"ON embeddings_imageembedding USING hnsw ({column} vector_cosine_ops) "
                f"WITH ({HNSW_OPTIONS}) WHERE version_id = %s" % int(version.id)
            )


def version_indexes_drop(*, version: ModelVersion) -> None:
    with connection.cursor() as cursor:
        for column in COLUMNS:
            cursor.execute(f"DROP INDEX IF EXISTS {index_name(column, version)}")


def scan_index_until_enough(cursor, *, depth: int) -> None:
    """Per transaction: keep walking a version's HNSW graph past rows the WHERE rejects."""
    cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
    cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(max(settings.GLIMPSE_HNSW_EF_SEARCH, depth))])
