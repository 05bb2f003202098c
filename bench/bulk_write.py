"""Rows per second into the embeddings table: Django's bulk_create upsert against binary COPY.

    python bench/bulk_write.py [--rows 20000] [--slow-rows 1600] [--indexed-rows 640]

Each row is one image's (384-d, 384-d, 1280-d) vectors, as a worker writes them. Both
paths upsert on (image, version): bulk_create(update_conflicts=True) as the project wrote
until now, and embeddings.bulk.embeddings_upsert (COPY into a staging table, one
INSERT ... ON CONFLICT). Each runs in transactions of 32 rows (a worker's batch) and of
10,000 rows (a backfill), into an empty table without and with the version's HNSW
indexes. Slow cells write fewer rows (a transaction then holds them all), so that the
run ends in minutes: --rows for COPY without indexes, --slow-rows for bulk_create
without them, --indexed-rows for both paths into the indexes.
"""
import argparse
import time

import numpy as np
from common import median, table, throwaway_database

GOAL = 20_000  # rows/s for COPY (issue #10)


def images_add(count: int) -> list[int]:
    """Bare catalog rows (no files): the embeddings table only needs their ids."""
    from django.db import connection

    with connection.cursor() as cursor:
        with cursor.cursor.copy(
            "COPY catalog_image (id, file, thumbnail, title, description, tags, category, source, license,"
            " content_hash, width, height, created_at, updated_at, embedding_status, embedding_error) FROM STDIN"
        ) as copy:
            for image_id in range(1, count + 1):
                copy.write_row(
                    (image_id, "images/synthetic.png", "thumbnails/synthetic.webp", f"synthetic {image_id}", "", [], "", "bench", "",
                     f"synthetic-{image_id}", 1, 1, "2026-01-01", "2026-01-01", "ready", "")
                )
        cursor.execute("SELECT setval(pg_get_serial_sequence('catalog_image', 'id'), %s)", [count])
    return list(range(1, count + 1))


def unit_rows(rng: np.random.Generator, count: int, dimensions: int) -> np.ndarray:
    vectors = rng.normal(size=(count, dimensions)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def write(*, path: str, image_ids: list[int], per_transaction: int, version, rng) -> float:
    """Seconds to write one row per image, `per_transaction` rows per transaction."""
    from django.db import transaction

    from embeddings.bulk import embeddings_upsert
    from embeddings.models import DIMENSIONS, FEATURE_DIMENSIONS, ImageEmbedding

    image_vectors = unit_rows(rng, len(image_ids), DIMENSIONS)
    text_vectors = unit_rows(rng, len(image_ids), DIMENSIONS)
    features = unit_rows(rng, len(image_ids), FEATURE_DIMENSIONS)
    started = time.perf_counter()
    for start in range(0, len(image_ids), per_transaction):
        rows = [
            ImageEmbedding(
                image_id=image_ids[position], version=version, image_vector=image_vectors[position],
                text_vector=text_vectors[position], feature_vector=features[position],
            )
            for position in range(start, min(start + per_transaction, len(image_ids)))
        ]
        with transaction.atomic():
            if path == "COPY":
                embeddings_upsert(rows=rows)
            else:
                ImageEmbedding.objects.bulk_create(
                    rows, update_conflicts=True, unique_fields=["image", "version"],
                    update_fields=["image_vector", "text_vector", "feature_vector", "neighbour_vector", "created_at"],
                )
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000, help="rows per COPY measurement without indexes")
    parser.add_argument("--slow-rows", type=int, default=1_600, help="rows per bulk_create measurement without indexes")
    parser.add_argument("--indexed-rows", type=int, default=640, help="rows per measurement into the HNSW indexes")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell; the median is shown")
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()

    with throwaway_database():
        from django.db import connection

        from embeddings.indexes import version_indexes_create, version_indexes_drop
        from embeddings.models import ModelVersion

        version = ModelVersion.objects.get(number=1)
        image_ids = images_add(max(options.rows, options.slow_rows, options.indexed_rows))
        rng = np.random.default_rng(options.seed)
        rows, rates = [], {}
        for indexed in (False, True):
            (version_indexes_create if indexed else version_indexes_drop)(version=version)
            for per_transaction in (32, 10_000):
                for path in ("bulk_create", "COPY"):
                    count = options.indexed_rows if indexed else options.rows if path == "COPY" else options.slow_rows
                    samples = []
                    for _ in range(options.repeats):
                        with connection.cursor() as cursor:
                            cursor.execute("TRUNCATE embeddings_imageembedding")
                        samples.append(count / write(path=path, image_ids=image_ids[:count], per_transaction=per_transaction, version=version, rng=rng))
                    rate = rates[path, per_transaction, indexed] = median(samples)
                    ratio = rate / rates["bulk_create", per_transaction, indexed]
                    rows.append([path, min(per_transaction, count), "yes" if indexed else "no", count, f"{rate:,.0f}", f"{ratio:.1f}×"])
        print(table(["path", "rows per transaction", "HNSW indexes", "rows", "rows/s (median)", "× bulk_create"], rows))
        best = max(rate for (path, _, _), rate in rates.items() if path == "COPY")
        print(f"\nCOPY best {best:,.0f} rows/s; goal {GOAL:,} rows/s: {'met' if best >= GOAL else 'not met'}")


if __name__ == "__main__":
    main()
