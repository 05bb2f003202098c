"""Rows per second into the embeddings table: Django's bulk_create upsert against binary COPY,
with the vector columns as `vector` (float32) and as `halfvec` (float16).

    python bench/bulk_write.py [--rows 20000] [--slow-rows 1600] [--indexed-rows 640] [--types vector,halfvec]

Each row is one image's (384-d, 384-d, 1280-d) vectors, as a worker writes them. Both
paths upsert on (image, version): bulk_create(update_conflicts=True) as the project wrote
before COPY, and embeddings.bulk.embeddings_upsert_columns (new rows by COPY straight into the
table, the stream built by numpy). Each runs in transactions of 32 rows (a worker's
batch) and of 10,000 rows (a backfill), into an empty table without and with the
version's four HNSW indexes. The throwaway database's columns are converted to each type
in turn (its analytics views, which pin the column types, are dropped first). Slow cells
write fewer rows (a transaction then holds them all), so that the run ends in minutes:
--rows for COPY without indexes, --slow-rows for bulk_create without them,
--indexed-rows for both paths into the indexes.

"client share" is the part of a "COPY, model rows" cell's time spent in this process: building the
model rows, checking every vector and building the binary stream, timed alone on the
same rows; the rest is the server (parsing, heap and TOAST pages, WAL) and the wire.
"""
import argparse
import os
import time

import numpy as np
from common import median, synthetic_images_copy, table, throwaway_database

GOAL = 20_000  # rows/s for COPY without indexes (issue #10)
WIDTHS = {"image_vector": 384, "text_vector": 384, "feature_vector": 1280, "neighbour_vector": 384}


def images_add(count: int) -> list[int]:
    """Bare catalog rows (no files): the embeddings table only needs their ids."""
    from django.db import connection

    with connection.cursor() as cursor:
        synthetic_images_copy(cursor.cursor, ((image_id, f"synthetic {image_id}", "", "2026-01-01") for image_id in range(1, count + 1)))
        cursor.execute("SELECT setval(pg_get_serial_sequence('catalog_image', 'id'), %s)", [count])
    return list(range(1, count + 1))


def columns_convert(kind: str) -> None:
    """The throwaway table's vector columns to `kind`, as the halfvec migration does."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT viewname FROM pg_views WHERE schemaname = 'public' AND definition LIKE '%%embeddings_imageembedding%%'")
        for (view,) in cursor.fetchall():
            cursor.execute(f"DROP VIEW IF EXISTS {view} CASCADE")
        cursor.execute("TRUNCATE embeddings_imageembedding")
        cursor.execute(
            "ALTER TABLE embeddings_imageembedding "
            + ", ".join(f"ALTER COLUMN {column} TYPE {kind}({width}) USING {column}::{kind}({width})" for column, width in WIDTHS.items())
        )


def indexes_create(version, kind: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for column in WIDTHS:
            cursor.execute(
                f"CREATE INDEX bench_{column} ON embeddings_imageembedding USING hnsw ({column} {kind}_cosine_ops) "
                f"WITH (m = 16, ef_construction = 64) WHERE version_id = {int(version.id)}"
            )


def indexes_drop() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for column in WIDTHS:
            cursor.execute(f"DROP INDEX IF EXISTS bench_{column}")


def unit_rows(rng: np.random.Generator, count: int, dimensions: int) -> np.ndarray:
    vectors = rng.normal(size=(count, dimensions)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def model_rows(image_ids, version, vectors, start: int, stop: int):
    from embeddings.models import ImageEmbedding

    image_vectors, text_vectors, features = vectors
    return [
        ImageEmbedding(
            image_id=image_ids[position], version=version, image_vector=image_vectors[position],
            text_vector=text_vectors[position], feature_vector=features[position],
        )
        for position in range(start, stop)
    ]


def write(*, path: str, image_ids: list[int], per_transaction: int, version, vectors) -> float:
    """Seconds to write one row per image, `per_transaction` rows per transaction."""
    from django.db import transaction

    from embeddings.bulk import embeddings_upsert_columns
    from embeddings.models import ImageEmbedding

    started = time.perf_counter()
    for start in range(0, len(image_ids), per_transaction):
        stop = min(start + per_transaction, len(image_ids))
        with transaction.atomic():
            if path == "COPY, columns":
                names = ("image_vector", "text_vector", "feature_vector")
                embeddings_upsert_columns(
                    image_ids=image_ids[start:stop], version_ids=[version.id] * (stop - start),
                    vectors={name: vector[start:stop] for name, vector in zip(names, vectors)},
                )
                continue
            rows = model_rows(image_ids, version, vectors, start, stop)
            if path == "COPY, model rows":
                names = ("image_vector", "text_vector", "feature_vector", "neighbour_vector")
                embeddings_upsert_columns(
                    image_ids=[row.image_id for row in rows], version_ids=[row.version_id for row in rows],
                    vectors={name: [getattr(row, name) for row in rows] for name in names},
                )
            else:
                ImageEmbedding.objects.bulk_create(
                    rows, update_conflicts=True, unique_fields=["image", "version"],
                    update_fields=["image_vector", "text_vector", "feature_vector", "neighbour_vector", "updated_at"],
                )
    return time.perf_counter() - started


def client_seconds(*, image_ids: list[int], per_transaction: int, version, vectors) -> float:
    """What the "COPY, model rows" path does in this process for the same model rows, without the server."""
    from django.db import connection

    from embeddings.bulk import copy_stream, rows_checked, table_columns
    from embeddings.models import ImageEmbedding

    fields = [field for field in ImageEmbedding._meta.concrete_fields if not field.primary_key]
    with connection.cursor() as cursor:
        columns = table_columns(cursor.cursor, table=ImageEmbedding._meta.db_table, names=[field.column for field in fields])
    started = time.perf_counter()
    for start in range(0, len(image_ids), per_transaction):
        rows = model_rows(image_ids, version, vectors, start, min(start + per_transaction, len(image_ids)))
        data = {field.column: [0] * len(rows) if field.name == "updated_at" else [getattr(row, field.attname) for row in rows] for field in fields}
        for _ in copy_stream(rows_checked(columns, data, labels=[str(row.image_id) for row in rows])):
            pass
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000, help="rows per COPY measurement without indexes")
    parser.add_argument("--slow-rows", type=int, default=1_600, help="rows per bulk_create measurement without indexes")
    parser.add_argument("--indexed-rows", type=int, default=640, help="rows per measurement into the HNSW indexes")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell; the median is shown")
    parser.add_argument("--types", default="vector,halfvec", help="column types to measure, in this order")
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()

    with throwaway_database():
        from django.db import connection

        from embeddings.indexes import version_indexes_drop
        from embeddings.models import ModelVersion

        version = ModelVersion.objects.get(number=1)
        version_indexes_drop(version=version)
        image_ids = images_add(max(options.rows, options.slow_rows, options.indexed_rows))
        rng = np.random.default_rng(options.seed)
        vectors = (unit_rows(rng, len(image_ids), 384), unit_rows(rng, len(image_ids), 384), unit_rows(rng, len(image_ids), 1280))
        load_before = os.getloadavg()
        rows, rates, notes = [], {}, []
        for kind in options.types.split(","):
            columns_convert(kind)
            for indexed in (False, True):
                if indexed:
                    indexes_create(version, kind)
                for per_transaction in (32, 10_000):
                    for path in ("bulk_create", "COPY, model rows", "COPY, columns"):
                        copying = path.startswith("COPY")
                        count = options.indexed_rows if indexed else options.rows if copying else options.slow_rows
                        samples = []
                        for _ in range(options.repeats):
                            with connection.cursor() as cursor:
                                cursor.execute("TRUNCATE embeddings_imageembedding")
                            seconds = write(path=path, image_ids=image_ids[:count], per_transaction=per_transaction, version=version, vectors=vectors)
                            samples.append(count / seconds)
                        rate = rates[kind, path, per_transaction, indexed] = median(samples)
                        ratio = rate / rates[kind, "bulk_create", per_transaction, indexed]
                        share = ""
                        if path == "COPY, model rows" and not indexed:
                            client = client_seconds(image_ids=image_ids[:count], per_transaction=per_transaction, version=version, vectors=vectors)
                            share = f"{client * rate / count:.0%}"
                        goal = f"{rate / GOAL:.2f}" if copying and not indexed else ""
                        rows.append([kind, path, min(per_transaction, count), "yes" if indexed else "no", count, f"{rate:,.0f}", f"{ratio:.1f}×", share, goal])
                if indexed:
                    indexes_drop()
        load_after = os.getloadavg()
        print(f"{os.cpu_count()} CPUs; load average {load_before[0]:.2f} at the start, {load_after[0]:.2f} at the end; median of {options.repeats}")
        print(table(["columns", "path", "rows per transaction", "HNSW indexes", "rows", "rows/s (median)", "× bulk_create", "client share", "÷ goal"], rows))
        for kind in options.types.split(","):
            best = max(rate for (each, path, _, indexed), rate in rates.items() if each == kind and path.startswith("COPY") and not indexed)
            notes.append(f"{kind}: COPY best {best:,.0f} rows/s = {best / GOAL:.2f} × the goal of {GOAL:,} rows/s ({'met' if best >= GOAL else 'not met'})")
        print("\n" + "\n".join(notes))


if __name__ == "__main__":
    main()
