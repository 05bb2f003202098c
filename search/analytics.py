"""Selectors over the analytics views (search/migrations/0004_analytics_views.py).

Each returns a `Table`: what the dashboard plots and lists, and what its CSV downloads
hold. Catalog-health selectors read the active version unless given another.
"""
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import connection
from django.utils import timezone

from embeddings.models import ModelVersion
from embeddings.selectors import version_active

# Feature-cosine distance under which two images count as near duplicates (as the
# result list's collapse does); the default of analytics_near_duplicate_pairs().
NEAR_DUPLICATE_DISTANCE = 0.02
MATERIALIZED = ("analytics_near_duplicates", "analytics_undescribed_neighbours")


def analytics_refresh() -> None:
    """Recompute the materialised views (the ones that walk HNSW graphs) for the active version.
    CONCURRENTLY, so the dashboard keeps reading the previous rows while it runs."""
    with connection.cursor() as cursor:
        for view in MATERIALIZED:
            cursor.execute(f"REFRESH MATERIALIZED VIEW CONCURRENTLY {view}")


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: list[tuple]

    def column(self, name: str) -> list:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]


def table_read(sql: str, params: list | dict | None = None) -> Table:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return Table(columns=tuple(column.name for column in cursor.description), rows=cursor.fetchall())


def search_days(*, days: int = 30, today: date | None = None) -> Table:
    """One row per day of the last `days` (days without searches included, as zeros)."""
    today = today or timezone.now().date()
    return table_read(
        """
        SELECT calendar.day::date AS day, coalesce(searches, 0) AS searches, coalesce(requests, 0) AS requests,
               p50_ms, p95_ms, zero_result_rate, no_close_match_rate
        FROM generate_series(%s::date, %s::date, interval '1 day') AS calendar (day)
        LEFT JOIN analytics_search_daily daily ON daily.day = calendar.day::date
        ORDER BY calendar.day""",
        [today - timedelta(days=days - 1), today],
    )


def queries_top(*, limit: int = 20) -> Table:
    return table_read(
        "SELECT query, searches, last_searched, zero_result_rate, no_close_match_rate, p50_ms FROM analytics_top_queries"
        " ORDER BY searches DESC, last_searched DESC LIMIT %s",
        [limit],
    )


def queries_unjudged(*, limit: int = 20) -> Table:
    """The most asked text queries no curator has judged a result of: where to look next."""
    return table_read(
        "SELECT query, searches, last_searched, zero_result_rate, no_close_match_rate FROM analytics_unjudged_queries"
        " ORDER BY searches DESC, last_searched DESC LIMIT %s",
        [limit],
    )


def duplicates_near(*, limit: int = 50) -> Table:
    """Pairs of the active version whose CNN features are within NEAR_DUPLICATE_DISTANCE,
    as of the last `analytics_refresh`."""
    return table_read(
        "SELECT image_id, title, duplicate_id, duplicate_title, distance, refreshed_at FROM analytics_near_duplicates"
        " ORDER BY distance, image_id, duplicate_id LIMIT %s",
        [limit],
    )


def category_outliers(*, version: ModelVersion | None = None, min_images: int = 5, limit: int = 50) -> Table:
    """Images farthest from their category's centroid, in standard deviations of that
    category's distances: likely miscategorised."""
    version = version or version_active()
    return table_read(
        "SELECT image_id, title, category, category_images, distance, z_score FROM analytics_category_outliers"
        " WHERE version_id = %s AND category_images >= %s ORDER BY z_score DESC NULLS LAST, image_id LIMIT %s",
        [version.id, min_images, limit],
    )


# Every image vector of a catalog leans the same way, so the raw centroids of any two
# categories read 0.98-0.99 alike; what sets categories apart is where each centroid lies
# from the catalog's mean. 0: no more alike than any two pictures; 1: the same direction;
# below 0: unlike. A centroid at the mean has no direction, and no similarity (NULL, not NaN).
CATEGORY_OVERLAP_SQL = """
    WITH catalog AS (
        SELECT avg(image_vector::vector) AS mean FROM embeddings_imageembedding WHERE version_id = %(version)s
    ), centred AS (
        SELECT centroid.category, centroid.images, centroid.centroid - catalog.mean AS direction
        FROM analytics_category_centroids centroid CROSS JOIN catalog
        WHERE centroid.version_id = %(version)s
    )
    SELECT one.category, other.category AS other_category, one.images, other.images AS other_images,
           nullif(1 - (one.direction <=> other.direction), 'NaN') AS centred_similarity
    FROM centred one
    JOIN centred other ON other.category > one.category
    ORDER BY centred_similarity DESC NULLS LAST, one.category, other.category
    LIMIT %(limit)s"""


def category_overlaps(*, version: ModelVersion | None = None, limit: int = 30) -> Table:
    """Pairs of categories by the cosine of their centroids less the catalog's mean vector
    (every image of the version, categorised or not), most alike first."""
    version = version or version_active()
    return table_read(CATEGORY_OVERLAP_SQL, {"version": version.id, "limit": limit})


def undescribed_neighbours(*, limit: int = 100) -> Table:
    """Images with no title, description or tags, each with its 5 visually nearest described
    images (the ones its neighbour vector borrows from), for a curator to describe; active
    version, as of the last `analytics_refresh`."""
    return table_read(
        "SELECT image_id, rank, neighbour_id, neighbour_title, neighbour_description, array_to_string(neighbour_tags, ', ') AS neighbour_tags,"
        " similarity, refreshed_at FROM analytics_undescribed_neighbours ORDER BY image_id, rank LIMIT %s",
        [limit],
    )


def version_metrics() -> Table:
    return table_read(
        "SELECT number, kind, state, created_at, released, held_out_ndcg10, held_out_recall10, held_out_mrr, held_out_queries,"
        " compared_with, compared_ndcg10 FROM analytics_version_metrics ORDER BY number"
    )


def vector_drift(*, from_version: ModelVersion, to_version: ModelVersion, limit: int = 50) -> Table:
    """The images whose vectors moved most from one version to the other."""
    return table_read(
        "SELECT drift.image_id, image.title, drift.image_distance, drift.text_distance FROM analytics_vector_drift drift"
        " JOIN catalog_image image ON image.id = drift.image_id"
        " WHERE from_version_id = %s AND to_version_id = %s ORDER BY image_distance DESC, image_id LIMIT %s",
        [from_version.id, to_version.id, limit],
    )


def vector_drift_histogram(*, from_version: ModelVersion, to_version: ModelVersion, bins: int = 10) -> Table:
    """How many images' vectors moved by how much (cosine distance, `bins` equal bins over 0–1;
    the last bin holds everything from its lower edge up)."""
    return table_read(
        """
        SELECT (bin - 1)::float / %(bins)s AS distance_from, bin::float / %(bins)s AS distance_to, coalesce(images, 0) AS images
        FROM generate_series(1, %(bins)s) AS bin
        LEFT JOIN (
            SELECT greatest(1, least(width_bucket(image_distance, 0, 1, %(bins)s), %(bins)s)) AS bin, count(*) AS images
            FROM analytics_vector_drift WHERE from_version_id = %(from)s AND to_version_id = %(to)s GROUP BY 1
        ) counted USING (bin)
        ORDER BY bin""",
        {"bins": bins, "from": from_version.id, "to": to_version.id},
    )


def drift_versions() -> tuple[ModelVersion, ModelVersion] | None:
    """The active version and the one it was trained from (else the latest before it that
    still has vectors): the pair the dashboard compares."""
    active = version_active()
    earlier = active.trained_from if active.trained_from and not active.trained_from.vectors_dropped else None
    earlier = earlier or ModelVersion.objects.filter(number__lt=active.number, vectors_dropped=False).order_by("-number").first()
    return (earlier, active) if earlier else None
