"""How long the analytics views take on a synthetic catalog of N images.

    python bench/analytics_views.py [--sizes 10000] [--repeats 5]

Synthetic rows (COPY): 100 categories, each a cluster in every vector column; a tenth of
the images are near copies of another image, a fifth have no text (no description
vector). Each view is read whole for the active version, `repeats` times. The two
searches that walk the HNSW graphs are timed as functions, as the refresh of their
materialised views and as reads of those; the near duplicates also the naive way, one
plain LATERAL statement whose version is a column reference, which cannot use the
partial HNSW indexes (the reason those two are functions), once, cut off at 300 s.
"""
import argparse
import time
from datetime import datetime, timezone

import numpy as np
from common import median, synthetic_images_copy, table, throwaway_database

CREATED = datetime(2026, 1, 1, tzinfo=timezone.utc)
CATEGORIES = 100

NAIVE_NEAR_DUPLICATES = """
    SELECT one.image_id, near.image_id, near.distance FROM embeddings_imageembedding one
    CROSS JOIN LATERAL (
        SELECT other.image_id, other.feature_vector <=> one.feature_vector AS distance
        FROM embeddings_imageembedding other
        WHERE other.version_id = one.version_id AND other.image_id <> one.image_id
        ORDER BY other.feature_vector <=> one.feature_vector LIMIT 5
    ) near
    JOIN embeddings_modelversion version ON version.id = one.version_id AND version.state = 'active'
    WHERE near.distance <= 0.02 AND one.image_id < near.image_id"""

# Each reads a column computed from the vectors, so none can be skipped by the planner.
VIEWS = {
    "near duplicates (the function)": "SELECT count(*), max(distance) FROM analytics_near_duplicate_pairs(%(version)s)",
    "near duplicates, hnsw.ef_search 10": "SELECT count(*), max(distance) FROM analytics_near_duplicate_pairs(%(version)s)",
    "bare images' neighbours (the function)": "SELECT count(*), max(similarity) FROM analytics_undescribed_neighbour_list(%(version)s)",
    "refresh both materialised views": (
        "REFRESH MATERIALIZED VIEW CONCURRENTLY analytics_near_duplicates",
        "REFRESH MATERIALIZED VIEW CONCURRENTLY analytics_undescribed_neighbours",
        "SELECT count(*) FROM analytics_near_duplicates",
    ),
    "read near duplicates (materialised)": "SELECT count(*), max(distance) FROM analytics_near_duplicates",
    "read bare images' neighbours (materialised)": "SELECT count(*), max(similarity) FROM analytics_undescribed_neighbours",
    "category outliers": "SELECT count(*), max(z_score) FROM analytics_category_outliers WHERE version_id = %(version)s",
    "category overlap": "SELECT count(*), max(similarity) FROM analytics_category_overlap WHERE version_id = %(version)s",
    "vector drift v1 → v2": "SELECT count(*), max(image_distance) FROM analytics_vector_drift WHERE from_version_id = %(version)s AND to_version_id = %(other)s",
    "naive near duplicates (no index)": f"SELECT count(*), max(distance) FROM ({NAIVE_NEAR_DUPLICATES}) pairs",
}
SETTINGS = {"near duplicates, hnsw.ef_search 10": "SET LOCAL hnsw.ef_search = 10"}
# The naive statement scans the version once per image; one run, cut off after this.
NAIVE_TIMEOUT_S = 300


def unit_rows(rng, centres: np.ndarray, spread: float) -> np.ndarray:
    vectors = centres + rng.normal(0, spread, centres.shape).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def add_synthetic(total: int, *, version_ids: list[int], seed: int) -> None:
    from django.db import connection
    from pgvector.psycopg import register_vector

    rng = np.random.default_rng(seed)
    category = np.arange(total) % CATEGORIES
    original = np.arange(total)
    copies = rng.choice(total, total // 10, replace=False)
    original[copies] = (copies + CATEGORIES) % total  # the same category, so copies stay in it
    bare = rng.random(total) < 0.2
    raw = connection.connection
    register_vector(raw)
    with raw.cursor() as cursor:
        synthetic_images_copy(
            cursor, ((index + 1, "" if bare[index] else f"synthetic {index}", f"synthetic/{category[index]}", CREATED) for index in range(total))
        )
        cursor.execute("SELECT setval(pg_get_serial_sequence('catalog_image', 'id'), %s)", [total])
        # Per-dimension noise against unit-variance centres: images of a category lie about
        # 0.3 apart (cosine distance), a copy about 0.001 from its original.
        features = rng.normal(size=(CATEGORIES, 1280)).astype(np.float32)[category] + rng.normal(0, 0.65, (total, 1280)).astype(np.float32)
        features = unit_rows(rng, features[original], 0.05)
        for version_id in version_ids:
            space = unit_rows(rng, rng.normal(size=(CATEGORIES, 384)).astype(np.float32)[category], 0.65)
            with cursor.copy(
                "COPY embeddings_imageembedding (image_id, version_id, image_vector, text_vector, feature_vector, updated_at)"
                " FROM STDIN WITH (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["int8", "int8", "vector", "vector", "vector", "timestamptz"])
                for index in range(total):
                    copy.write_row((index + 1, version_id, space[index], None if bare[index] else space[index], features[index], CREATED))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000", help="comma-separated catalog sizes")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    rows = []
    for size in [int(size) for size in options.sizes.split(",") if size]:
        with throwaway_database():
            from django.db import OperationalError, connection, transaction

            from embeddings.indexes import version_indexes_create
            from embeddings.models import ModelVersion

            active = ModelVersion.objects.get(number=1)
            other = ModelVersion.objects.create(number=2, kind=ModelVersion.Kind.HEADS, state=ModelVersion.State.RETIRED,
                                                image_model=active.image_model, text_model=active.text_model)
            print(f"{size} images: writing rows and building the HNSW indexes…", flush=True)
            add_synthetic(size, version_ids=[active.id, other.id], seed=options.seed)
            version_indexes_create(version=active)
            for name, sql in VIEWS.items():
                naive = name.startswith("naive")
                samples, count = [], None
                for _ in range(1 if naive else options.repeats):
                    started = time.perf_counter()
                    with transaction.atomic(), connection.cursor() as cursor:
                        cursor.execute("SET LOCAL statement_timeout = %s", [f"{NAIVE_TIMEOUT_S}s"])
                        if name in SETTINGS:
                            cursor.execute(SETTINGS[name])
                        try:
                            for statement in (sql,) if isinstance(sql, str) else sql:
                                cursor.execute(statement, {"version": active.id, "other": other.id})
                            count = cursor.fetchone()[0]
                        except OperationalError:
                            count = f"stopped after {NAIVE_TIMEOUT_S} s"
                    samples.append((time.perf_counter() - started) * 1000)
                print(f"  {name}: {median(samples):.0f} ms", flush=True)
                rows.append([size, name, count, f"{median(samples):.0f}", f"{min(samples):.0f}", f"{max(samples):.0f}"])
    print(table(["images", "view", "rows", "median ms", "min ms", "max ms"], rows))


if __name__ == "__main__":
    main()
