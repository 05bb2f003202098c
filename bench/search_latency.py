"""Search latency (p50/p95/p99) and HNSW recall@10, over the demo catalog and N synthetic
vectors, against the floor of one text encode plus one in-process FAISS HNSW search.

    pip install -e '.[bench]'   # faiss-cpu
    python bench/search_latency.py [--demo catalog/fixtures/openclipart-demo] [--sizes 10000,100000] [--queries 100]

Every timed text query is a new one (pairs of demo words), so no row is served by the
query-embedding cache except "repeated query", which asks the same text again. Demo rows:
text queries encoded and ranked through `image_search`, per mode, and with a category
filter. Synthetic rows: clustered random unit vectors added to reach N embeddings (only
the demo images have descriptions, as in a catalog where few images are described);
query vectors come from the same clusters. "ready vector" rows rank a given vector
(SQL and rows, no encode); "API" is the whole JSON request (encode, SQL, query log,
JSON). "English tower only" and "both towers" ask the API the same way with the version's
multilingual tower switched off and on, query by query in turn (the synthetic rows then
have random vectors in both towers' spaces). FAISS is `IndexHNSWFlat` (m=16, ef_construction=64, ef_search=40, one thread)
over the same vectors, asked for the top 20. Recall@10 compares the pgvector index's top
10, at the ef_search a first page runs with, with an exact scan. "outside encode and search" is, per
request of the repeated query, the request's time minus the `latency_ms` its answer
reports (the search service up to the query log): what the API spends outside encode
and search, i.e. parameters, query log, JSON and Django's request handling.
"""
import argparse
import itertools
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from common import import_folder, percentile, synthetic_images_copy, table, throwaway_database

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


def row(name: str, samples: list[float], recall: str = "", ratio: str = "") -> list[str]:
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    return [name, f"{p50:.1f}", f"{percentile(samples, 95):.1f}", f"{p99:.1f}", f"{p99 / p50:.1f}", recall, ratio]


def unique_queries():
    """Endless new query texts (pairs, then triples of demo words), so nothing is cached."""
    for width in itertools.count(2):
        for words in itertools.permutations(DEMO_QUERIES, width):
            yield " ".join(words)


def column_type(column: str) -> str:
    """vector or halfvec: the benchmark runs against either storage."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.typname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid"
            " WHERE a.attrelid = 'embeddings_imageembedding'::regclass AND a.attname = %s",
            [column],
        )
        return cursor.fetchone()[0]


def faiss_index(version_id: int):
    """The version's image vectors in an in-process FAISS HNSW index of the same shape."""
    import faiss
    import psycopg
    from django.db import connection
    from pgvector.psycopg import register_vector

    raw = connection.connection
    register_vector(raw)
    with psycopg.Cursor(raw) as cursor:  # Django's cursors bind on the client, in text
        cursor.execute("SELECT image_vector::vector FROM embeddings_imageembedding WHERE version_id = %s ORDER BY id", [version_id], binary=True)
        vectors = np.stack([vector.to_numpy() for (vector,) in cursor.fetchall()]).astype(np.float32)
    faiss.omp_set_num_threads(1)
    index = faiss.IndexHNSWFlat(vectors.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 64
    index.add(vectors)
    index.hnsw.efSearch = 40
    return index


def add_synthetic(total: int, *, version_id: int, seed: int, clusters: np.ndarray) -> None:
    """Top the catalog up to `total` embeddings with clustered unit vectors (COPY, binary)."""
    from django.db import connection
    from pgvector import HalfVector
    from pgvector.psycopg import register_vector

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), coalesce(max(id), 0) FROM catalog_image")
        existing, last_id = cursor.fetchone()
    missing = total - existing
    if missing <= 0:
        return
    kind = column_type("image_vector")  # asked before COPY holds the connection
    rng = np.random.default_rng(seed + total)
    raw = connection.connection
    register_vector(raw)
    categories = [f"synthetic/{index}" for index in range(100)]
    with raw.cursor() as cursor:
        synthetic_images_copy(
            cursor, ((image_id, f"synthetic {image_id}", categories[image_id % 100], "2026-01-01") for image_id in range(last_id + 1, last_id + 1 + missing))
        )
        cursor.execute("SELECT setval(pg_get_serial_sequence('catalog_image', 'id'), %s)", [last_id + missing])
        with cursor.copy(
            "COPY embeddings_imageembedding (image_id, version_id, image_vector, multilingual_image_vector, updated_at) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "int8", kind, kind, "timestamptz"])
            for start in range(0, missing, 10_000):
                count = min(10_000, missing - start)
                spaces = []
                for _ in range(2):  # the English tower's space, the multilingual one's
                    centres = clusters[rng.integers(0, len(clusters), count)]
                    vectors = centres + rng.normal(0, 0.04, centres.shape).astype(np.float32)
                    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                    spaces.append(vectors if kind == "vector" else [HalfVector(vector) for vector in vectors])
                for offset, (vector, multilingual) in enumerate(zip(*spaces)):
                    copy.write_row((last_id + 1 + start + offset, version_id, vector, multilingual, CREATED))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE catalog_image")
        cursor.execute("ANALYZE embeddings_imageembedding")


def towers_side_by_side(client, version, texts, count: int) -> dict[str, list[float]]:
    """API latencies of new English queries with the version's multilingual tower switched
    off and on, one query each in turn, so both rows see the same machine load."""
    from embeddings.models import ModelVersion

    tower = version.multilingual_text_model
    samples = {"English tower only": [], "both towers": []}
    for index in range(count + 1):  # the first round warms both up and is dropped
        for name, model in (("English tower only", ""), ("both towers", tower)):
            ModelVersion.objects.filter(id=version.id).update(multilingual_text_model=model)
            started = time.perf_counter()
            client.get("/api/search", {"q": next(texts), "limit": 20}, HTTP_HOST="localhost")
            if index:
                samples[name].append((time.perf_counter() - started) * 1000)
    ModelVersion.objects.filter(id=version.id).update(multilingual_text_model=tower)
    return samples


def recall_at_10(query_vectors, version) -> float:
    """The index's top 10 at the ef_search of a first page of 20 against an exact scan."""
    from django.db import connection, transaction

    from search.ranking import ef_search_for

    sql = (
        f"SELECT image_id FROM embeddings_imageembedding WHERE version_id = {int(version.id)} AND image_vector IS NOT NULL"
        f" ORDER BY image_vector <=> %s::text::{column_type('image_vector')} LIMIT 10"
    )
    hits = 0
    for vector in query_vectors:
        literal = "[" + ",".join(repr(float(value)) for value in vector) + "]"
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT set_config('hnsw.ef_search', %s, true)", [str(ef_search_for(20))])
            cursor.execute(sql, [literal])
            approximate = {image_id for (image_id,) in cursor.fetchall()}
            cursor.execute("SET LOCAL enable_indexscan = off")
            cursor.execute(sql, [literal])
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
        from django.conf import settings
        from django.db import connection
        from django.test import Client

        from catalog.models import Image
        from embeddings import encoders
        from embeddings.selectors import version_active
        from embeddings.services import images_embed
        from search.selectors import Filters, image_search, search_depth

        ids = import_folder(options.demo)
        for start in range(0, len(ids), 32):
            images_embed(image_ids=ids[start : start + 32])
        version = version_active()
        text_encoder = encoders.query_encoder()
        client = Client()
        new_texts = unique_queries()
        category = Image.objects.values_list("category", flat=True).order_by("category").first()

        def each_new_query(run):
            return lambda: run(next(new_texts))

        rows = []
        for mode in ("hybrid", "semantic", "keyword"):
            samples = timed(each_new_query(lambda q, mode=mode: image_search(text=q, mode=mode, limit=20)), options.queries)
            rows.append(row(f"demo ({len(ids)}): text → image, {mode} (encode + SQL)", samples))
        samples = timed(each_new_query(lambda q: image_search(text=q, mode="hybrid", filters=Filters(category=category))), options.queries)
        rows.append(row(f"demo ({len(ids)}): hybrid + category filter", samples))
        encode_samples = timed(each_new_query(lambda q: text_encoder.encode([q])), options.queries)
        rows.append(row("English text encoder alone (one query)", encode_samples))
        encode_p50 = percentile(encode_samples, 50)
        from search.query_vectors import CACHE, query_text_vectors

        multilingual_encoder = encoders.multilingual_query_encoder()
        rows.append(row("multilingual text encoder alone (one query)", timed(each_new_query(lambda q: multilingual_encoder.encode([q])), options.queries)))
        both = timed(each_new_query(lambda q: query_text_vectors(text=q, version=version)), options.queries)
        rows.append(row("an English query's vectors, both towers at once (query_text_vectors)", both))
        CACHE.clear()

        rng = np.random.default_rng(options.seed)
        clusters = rng.normal(size=(1000, 384)).astype(np.float32)
        clusters /= np.linalg.norm(clusters, axis=1, keepdims=True)
        for size in sizes:
            started = time.perf_counter()
            add_synthetic(size, version_id=version.id, seed=options.seed, clusters=clusters)
            load_seconds = time.perf_counter() - started
            query_vectors = clusters[rng.integers(0, len(clusters), options.queries)] + rng.normal(0, 0.04, (options.queries, 384))
            query_vectors = (query_vectors / np.linalg.norm(query_vectors, axis=1, keepdims=True)).astype(np.float32)

            def each_vector(run):
                vectors = itertools.cycle(query_vectors)
                return lambda: run(next(vectors))

            index = faiss_index(version.id)
            faiss_samples = timed(each_vector(lambda vector: index.search(vector[None, :], 20)), options.queries)
            faiss_p50 = percentile(faiss_samples, 50)
            rows.append(row(f"{size:,} vectors: FAISS HNSW in process, top 20", faiss_samples))
            samples = timed(
                each_vector(lambda vector: image_search(vector=vector, mode="semantic", include_distant=True)), options.queries
            )
            recall = recall_at_10(query_vectors[:50], version)
            rows.append(row(f"{size:,} vectors: semantic, ready vector (loaded in {load_seconds:.0f} s)", samples, f"{recall:.3f}"))
            samples = timed(
                each_vector(lambda vector: image_search(vector=vector, mode="semantic", include_distant=True, filters=Filters(category="synthetic/7"))),
                options.queries,
            )
            rows.append(row(f"{size:,} vectors: semantic, ready vector, filter matching 1 %", samples))
            hybrid_samples = timed(
                each_vector(lambda vector: image_search(text=next(new_texts), vector=vector, mode="hybrid")), options.queries
            )
            rows.append(row(f"{size:,} vectors: hybrid, ready vector and words", hybrid_samples))
            api_samples = timed(
                each_new_query(lambda q: client.get("/api/search", {"q": q, "limit": 20}, HTTP_HOST="localhost")), options.queries
            )
            api_p50 = percentile(api_samples, 50)
            ratio = f"{api_p50 / (encode_p50 + faiss_p50):.2f}"
            rows.append(row(f"**{size:,} vectors: new text query through the JSON API, hybrid**", api_samples, ratio=ratio))
            towers = towers_side_by_side(client, version, new_texts, options.queries)
            for name, samples in towers.items():
                rows.append(row(f"{size:,} vectors: new English query through the JSON API, {name}", samples))
            english_p50, both_p50 = (percentile(samples, 50) for samples in towers.values())
            rows.append([f"{size:,} vectors: both towers / English tower only, API p50", f"{both_p50 / english_p50:.2f} ×", "", "", "", "", ""])
            repeated = next(new_texts)
            answers = []

            def ask_repeated():
                answers.append(client.get("/api/search", {"q": repeated, "limit": 20}, HTTP_HOST="localhost").json()["latency_ms"])

            samples = timed(ask_repeated, options.queries)
            rows.append(row(f"{size:,} vectors: repeated query through the JSON API, hybrid", samples))
            overheads = [total - searched for total, searched in zip(samples, answers[1:])]
            rows.append(row(f"{size:,} vectors: API time outside encode and search, per request", overheads))

        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('server_version'), extversion, current_setting('shared_buffers') FROM pg_extension WHERE extname = 'vector'")
            server, pgvector, shared_buffers = cursor.fetchone()
        print(
            f"PostgreSQL {server}, pgvector {pgvector}, {column_type('image_vector')} columns, shared_buffers {shared_buffers}, "
            f"HNSW m=16 ef_construction=64, ef_search floor {settings.GLIMPSE_HNSW_EF_SEARCH}, {search_depth()} candidates per list, {options.queries} queries per row"
        )
        print(table(["query", "p50 ms", "p95 ms", "p99 ms", "p99/p50", "recall@10", "API p50 / (encode p50 + FAISS p50)"], rows))


if __name__ == "__main__":
    main()
