"""Search latency (p50/p95) and HNSW recall@10, over the demo catalog and N synthetic vectors.

    python bench/search_latency.py [--demo catalog/fixtures/openclipart-demo] [--sizes 10000,100000] [--queries 100]

Demo rows: real text queries, encoded and ranked in SQL through `image_search`, per
mode, and with a category filter. Synthetic rows: clustered random unit vectors added
to reach N embeddings; query vectors come from the same clusters. "SQL" times the
ranking statement alone; "API" times a text query through the JSON API (encode, SQL,
query log, JSON). Recall@10 compares the index's top 10 with an exact scan.
"""
import argparse
import random
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from common import import_folder, percentile, table, throwaway_database

DEMO_QUERIES = [
    "red apple", "cat", "guitar", "car", "dog", "bird", "flower", "tree", "house", "boat",
    "airplane", "bicycle", "computer", "telephone", "book", "clock", "sun", "star", "heart", "pizza",
    "banana", "orange", "strawberry", "fish", "music", "flag", "map", "person", "train", "pear",
]

CREATED = datetime(2026, 1, 1, tzinfo=timezone.utc)


def timed(run, repeats: int) -> list[float]:
    run()
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def row(name: str, samples: list[float], recall: str = "") -> list[str]:
    return [name, f"{percentile(samples, 50):.1f}", f"{percentile(samples, 95):.1f}", recall]


def add_synthetic(total: int, *, version_id: int, seed: int, clusters: np.ndarray) -> None:
    """Top the catalog up to `total` embeddings with clustered unit vectors (COPY, binary)."""
    from django.db import connection
    from pgvector.psycopg import register_vector

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), coalesce(max(id), 0) FROM catalog_image")
        existing, last_id = cursor.fetchone()
    missing = total - existing
    if missing <= 0:
        return
    rng = np.random.default_rng(seed + total)
    raw = connection.connection
    register_vector(raw)
    categories = [f"synthetic/{index}" for index in range(100)]
    with raw.cursor() as cursor:
        with cursor.copy(
            "COPY catalog_image (id, file, thumbnail, title, description, tags, category, source, license,"
            " content_hash, width, height, created_at, updated_at, embedding_status, embedding_error) FROM STDIN"
        ) as copy:
            for image_id in range(last_id + 1, last_id + 1 + missing):
                copy.write_row(
                    (image_id, "images/synthetic.png", "thumbnails/synthetic.webp", f"synthetic {image_id}", "", [], categories[image_id % 100], "bench", "",
                     f"synthetic-{image_id}", 1, 1, "2026-01-01", "2026-01-01", "ready", "")
                )
        cursor.execute("SELECT setval(pg_get_serial_sequence('catalog_image', 'id'), %s)", [last_id + missing])
        with cursor.copy(
            "COPY embeddings_imageembedding (image_id, version_id, image_vector, created_at) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "int8", "vector", "timestamptz"])
            for start in range(0, missing, 10_000):
                count = min(10_000, missing - start)
                centres = clusters[rng.integers(0, len(clusters), count)]
                vectors = centres + rng.normal(0, 0.04, centres.shape).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                for offset, vector in enumerate(vectors):
                    copy.write_row((last_id + 1 + start + offset, version_id, vector, CREATED))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE catalog_image")
        cursor.execute("ANALYZE embeddings_imageembedding")


def recall_at_10(query_vectors, version) -> float:
    from django.db import connection, transaction

    from search.selectors import configure_index_scans, vector_literal

    sql = (
        "SELECT image_id FROM embeddings_imageembedding WHERE version_id = %s"
        " ORDER BY image_vector <=> %s::vector LIMIT 10"
    )
    hits = 0
    for vector in query_vectors:
        literal = vector_literal(vector)
        with transaction.atomic(), connection.cursor() as cursor:
            configure_index_scans(cursor)
            cursor.execute("SELECT set_config('hnsw.ef_search', '100', true)")
            cursor.execute(sql, [version.id, literal])
            approximate = {image_id for (image_id,) in cursor.fetchall()}
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute(sql, [version.id, literal])
            exact = {image_id for (image_id,) in cursor.fetchall()}
        hits += len(approximate & exact)
    return hits / (10 * len(query_vectors))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", type=Path, default=Path("catalog/fixtures/openclipart-demo"))
    parser.add_argument("--sizes", default="10000,100000", help="comma-separated synthetic catalog sizes")
    parser.add_argument("--queries", type=int, default=100, help="timed queries per row")
    parser.add_argument("--seed", type=int, default=7)
    options = parser.parse_args()
    sizes = [int(size) for size in options.sizes.split(",") if size]

    with throwaway_database():
        from django.db import connection
        from django.test import Client

        from catalog.models import Image
        from embeddings import encoders
        from embeddings.selectors import version_active
        from embeddings.services import images_embed
        from django.conf import settings

        from search.selectors import Filters, fused_ranking, image_search, search_depth, vector_literal

        ids = import_folder(options.demo)
        for start in range(0, len(ids), 32):
            images_embed(image_ids=ids[start : start + 32])
        version = version_active()
        text_encoder = encoders.text_encoder()
        client = Client()
        random.seed(options.seed)
        queries = [DEMO_QUERIES[index % len(DEMO_QUERIES)] for index in range(options.queries)]
        category = Image.objects.values_list("category", flat=True).order_by("category").first()

        def each_query(run):
            iterator = iter(queries * 2)
            return lambda: run(next(iterator))

        rows = []
        for mode in ("hybrid", "semantic", "keyword"):
            samples = timed(each_query(lambda q, mode=mode: image_search(text=q, mode=mode, limit=20)), options.queries)
            rows.append(row(f"demo ({len(ids)}): text → image, {mode} (encode + SQL)", samples))
        samples = timed(each_query(lambda q: image_search(text=q, mode="hybrid", filters=Filters(category=category))), options.queries)
        rows.append(row(f"demo ({len(ids)}): hybrid + category filter", samples))
        samples = timed(each_query(lambda q: text_encoder.encode([q])), options.queries)
        rows.append(row("text encoder alone (one query)", samples))

        rng = np.random.default_rng(options.seed)
        clusters = rng.normal(size=(1000, 384)).astype(np.float32)
        clusters /= np.linalg.norm(clusters, axis=1, keepdims=True)
        for size in sizes:
            started = time.perf_counter()
            add_synthetic(size, version_id=version.id, seed=options.seed, clusters=clusters)
            load_seconds = time.perf_counter() - started
            query_vectors = clusters[rng.integers(0, len(clusters), options.queries)] + rng.normal(0, 0.04, (options.queries, 384))
            query_vectors = (query_vectors / np.linalg.norm(query_vectors, axis=1, keepdims=True)).astype(np.float32)
            literal_iter = iter([vector_literal(vector) for vector in query_vectors] * 2)
            samples = timed(
                lambda queries=literal_iter: fused_ranking(mode="semantic", vector=next(queries), text="", version=version, filters=Filters()),
                options.queries - 1,
            )
            recall = recall_at_10(query_vectors[:50], version)
            rows.append(row(f"{size:,} vectors: semantic SQL (loaded in {load_seconds:.0f} s)", samples, f"{recall:.3f}"))
            filter_iter = iter([vector_literal(vector) for vector in query_vectors] * 2)
            samples = timed(
                lambda queries=filter_iter: fused_ranking(mode="semantic", vector=next(queries), text="", version=version, filters=Filters(category="synthetic/7")),
                options.queries - 1,
            )
            rows.append(row(f"{size:,} vectors: semantic SQL, filter matching 1%", samples))
            samples = timed(each_query(lambda q: client.get("/api/search", {"q": q, "limit": 20}, HTTP_HOST="localhost")), options.queries)
            rows.append(row(f"{size:,} vectors: text query through the JSON API, hybrid", samples))

        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('server_version'), extversion FROM pg_extension WHERE extname = 'vector'")
            server, pgvector = cursor.fetchone()
        print(f"PostgreSQL {server}, pgvector {pgvector}, HNSW m=16 ef_construction=64, ef_search={max(settings.GLIMPSE_HNSW_EF_SEARCH, search_depth())}, {search_depth()} candidates per list, {options.queries} queries per row")
        print(table(["query", "p50 ms", "p95 ms", "recall@10"], rows))


if __name__ == "__main__":
    main()
