"""pgvector HNSW against FAISS HNSW and exact search, on the same vectors and queries.

    python bench/vector_search.py N [--halfvec [--halfvec-only]] [--queries 1000] [--ef 10,20,40,80,120,160,240] [--data-dir FOLDER]

N synthetic 384-d vectors shaped like sentence embeddings (seeded; see dataset()).
Queries come from the same mixture but are not in the set. Both sides
build HNSW with m = 16, ef_construction = 64 on the cores this machine has, and answer
one query at a time on one core: pgvector through a prepared statement with the vector
as a binary parameter (pgvector-python's psycopg adapters), FAISS in process.
`--halfvec` adds pgvector's half-precision `halfvec` column and index; `--halfvec-only`
measures it without the `vector` column (at 1M, one HNSW build instead of two).

The embedded PostgreSQL runs in FOLDER (a temporary one by default) with the settings
config.embedded sizes for this machine (GLIMPSE_PG_SETTINGS overrides them).
Prints build time, index size, recall@10 and p50/p95 per ef_search, and the ratio
pgvector / FAISS p50 at the smallest ef_search of each that reaches recall@10 >= 0.97.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import percentile, table

ROOT = Path(__file__).resolve().parent.parent
DIMENSIONS = 384
M, EF_CONSTRUCTION = 16, 64
RECALL_GOAL = 0.97


def dataset(count: int, queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Base vectors and queries from one mixture. Sentence embeddings vary along a few
    dozen directions, not all 384 (a low intrinsic dimension), share a common direction,
    and fall into topics of very uneven size; tuned so that nearest neighbours have
    cosine ≈ 0.85 and random pairs ≈ 0.2, as all-MiniLM-L6-v2's do."""
    rng = np.random.default_rng(seed)
    clusters = max(count // 100, 10)
    centres = rng.normal(size=(clusters, DIMENSIONS)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = rng.pareto(1.5, clusters) + 0.05  # a few large topics, many small ones
    weights /= weights.sum()
    spreads = rng.uniform(0.5, 1.0, clusters).astype(np.float32)
    common = rng.normal(size=DIMENSIONS).astype(np.float32)
    common /= np.linalg.norm(common)
    rank = 32
    directions = np.linalg.qr(rng.normal(size=(DIMENSIONS, rank)))[0].T.astype(np.float32) / np.sqrt(rank)

    def draw(size: int) -> np.ndarray:
        cluster = rng.choice(clusters, size=size, p=weights)
        varying = (rng.normal(size=(size, rank)).astype(np.float32) @ directions) * spreads[cluster, None]
        vectors = 0.5 * common + centres[cluster] + varying + rng.normal(0, 0.004, (size, DIMENSIONS)).astype(np.float32)
        return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)

    return draw(count), draw(queries)


def exact_top10(base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    top = []
    for start in range(0, len(queries), 256):
        scores = queries[start : start + 256] @ base.T
        best = np.argpartition(-scores, 10, axis=1)[:, :10]
        order = np.take_along_axis(scores, best, axis=1).argsort(axis=1)[:, ::-1]
        top.append(np.take_along_axis(best, order, axis=1))
    return np.concatenate(top)


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return sum(len(set(ids) & set(row.tolist())) for ids, row in zip(found, truth)) / (10 * len(truth))


def timed_queries(search, queries: np.ndarray) -> tuple[list[list[int]], list[float]]:
    for query in queries[:20]:
        search(query)  # warm: caches, prepared statement
    found, samples = [], []
    for query in queries:
        started = time.perf_counter()
        found.append(search(query))
        samples.append((time.perf_counter() - started) * 1000)
    return found, samples


def pgvector_rows(connection, *, kind: str, base: np.ndarray, queries: np.ndarray, truth: np.ndarray, efs: list[int]):
    from pgvector import HalfVector, Vector

    wrap = HalfVector if kind == "halfvec" else Vector
    table_name = f"items_{kind}"
    connection.execute(f"CREATE TABLE {table_name} (id integer PRIMARY KEY, embedding {kind}({DIMENSIONS}) NOT NULL)")
    with connection.cursor().copy(f"COPY {table_name} (id, embedding) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int4", kind])
        for position, vector in enumerate(base):
            copy.write_row((position, wrap(vector)))
    connection.execute(f"VACUUM ANALYZE {table_name}")
    started = time.perf_counter()
    connection.execute(
        f"CREATE INDEX {table_name}_hnsw ON {table_name} USING hnsw (embedding {kind}_cosine_ops) WITH (m = {M}, ef_construction = {EF_CONSTRUCTION})"
    )
    build = time.perf_counter() - started
    size = connection.execute(f"SELECT pg_relation_size('{table_name}_hnsw')").fetchone()[0]
    statement = f"SELECT id FROM {table_name} ORDER BY embedding <=> %b LIMIT 10"

    def search(query):
        return [row[0] for row in connection.execute(statement, [wrap(query)], prepare=True).fetchall()]

    rows, at_goal = [], None
    for ef in efs:
        connection.execute(f"SET hnsw.ef_search = {ef}")
        found, samples = timed_queries(search, queries)
        hit = recall(found, truth)
        rows.append([f"pgvector {kind}", f"{build:.1f}", f"{size / 1024**2:.0f}", ef, f"{hit:.3f}", f"{percentile(samples, 50):.2f}", f"{percentile(samples, 95):.2f}"])
        if at_goal is None and hit >= RECALL_GOAL:
            at_goal = (ef, percentile(samples, 50))
    # Its own statement: a prepared plan would keep using the index whatever the settings.
    exact = f"SELECT id FROM {table_name} ORDER BY embedding <=> %b LIMIT 10 -- exact"
    connection.execute("SET enable_indexscan = off")
    found, samples = timed_queries(lambda query: [row[0] for row in connection.execute(exact, [wrap(query)], prepare=True).fetchall()], queries[:100])
    connection.execute("RESET enable_indexscan")
    rows.append([f"pgvector {kind}, exact scan", "", "", "", f"{recall(found, truth[:100]):.3f}", f"{percentile(samples, 50):.2f}", f"{percentile(samples, 95):.2f}"])
    return rows, at_goal


def faiss_rows(*, base: np.ndarray, queries: np.ndarray, truth: np.ndarray, efs: list[int]):
    import faiss

    index = faiss.IndexHNSWFlat(DIMENSIONS, M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = EF_CONSTRUCTION
    faiss.omp_set_num_threads(os.cpu_count() or 1)
    started = time.perf_counter()
    index.add(base)
    build = time.perf_counter() - started
    size = len(faiss.serialize_index(index))
    faiss.omp_set_num_threads(1)  # one query on one core, as one PostgreSQL backend answers it
    rows, at_goal = [], None
    for ef in efs:
        index.hnsw.efSearch = ef

        def search(query):
            return index.search(query[None, :], 10)[1][0].tolist()

        found, samples = timed_queries(search, queries)
        hit = recall(found, truth)
        rows.append(["FAISS IndexHNSWFlat", f"{build:.1f}", f"{size / 1024**2:.0f}", ef, f"{hit:.3f}", f"{percentile(samples, 50):.3f}", f"{percentile(samples, 95):.3f}"])
        if at_goal is None and hit >= RECALL_GOAL:
            at_goal = (ef, percentile(samples, 50))
    flat = faiss.IndexFlatIP(DIMENSIONS)
    flat.add(base)
    found, samples = timed_queries(lambda query: flat.search(query[None, :], 10)[1][0].tolist(), queries[:100])
    rows.append(["FAISS IndexFlatIP, exact", "", f"{base.nbytes / 1024**2:.0f}", "", f"{recall(found, truth[:100]):.3f}", f"{percentile(samples, 50):.2f}", f"{percentile(samples, 95):.2f}"])
    return rows, at_goal


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("count", type=int, metavar="N", help="vectors in the set, e.g. 100000")
    parser.add_argument("--halfvec", action="store_true", help="also measure pgvector's halfvec column")
    parser.add_argument("--halfvec-only", action="store_true", help="measure the halfvec column without the vector one")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--ef", default="10,20,40,80,120,160,240", help="ef_search values, comma-separated")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, help="folder for the embedded PostgreSQL (default: a temporary one)")
    options = parser.parse_args()
    efs = [int(ef) for ef in options.ef.split(",") if ef]

    sys.path.insert(0, str(ROOT))
    import psycopg
    from pgvector.psycopg import register_vector

    from config import embedded

    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="glimpse-vector-search-"))
    print(f"{options.count:,} vectors × {DIMENSIONS}, {options.queries} queries, seed {options.seed}; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    base, queries = dataset(options.count, options.queries, options.seed)
    truth = exact_top10(base, queries)
    try:
        url = embedded.embedded_database_url(data_dir)
        with psycopg.connect(url.replace("/glimpse?", "/postgres?"), autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS vector_search")
            admin.execute("CREATE DATABASE vector_search")
        with psycopg.connect(url.replace("/glimpse?", "/vector_search?"), autocommit=True) as connection:
            connection.execute("CREATE EXTENSION vector")
            register_vector(connection)
            shown = {name: connection.execute(f"SHOW {name}").fetchone()[0] for name in ("shared_buffers", "maintenance_work_mem", "max_parallel_maintenance_workers")}
            print("PostgreSQL: " + ", ".join(f"{name} {value}" for name, value in shown.items()))
            rows, goals = [], {}
            kinds = ("halfvec",) if options.halfvec_only else ("vector", "halfvec") if options.halfvec else ("vector",)
            for kind in kinds:
                measured, goals[f"pgvector {kind}"] = pgvector_rows(connection, kind=kind, base=base, queries=queries, truth=truth, efs=efs)
                rows += measured
            measured, goals["FAISS"] = faiss_rows(base=base, queries=queries, truth=truth, efs=efs)
            rows += measured
    finally:
        if options.data_dir is None:
            embedded.stop_embedded_database(data_dir)
            shutil.rmtree(data_dir, ignore_errors=True)
    print(table(["engine", "build s", "index MB", "ef_search", "recall@10", "p50 ms", "p95 ms"], rows))
    faiss_goal = goals.pop("FAISS")
    print(f"\nAt recall@10 >= {RECALL_GOAL} (smallest ef_search that reaches it):")
    for name, goal in goals.items():
        if goal is None or faiss_goal is None:
            print(f"  {name}: not reached within ef_search {efs[-1]}")
            continue
        print(f"  {name} p50 {goal[1]:.2f} ms (ef {goal[0]}) / FAISS p50 {faiss_goal[1]:.3f} ms (ef {faiss_goal[0]}) = {goal[1] / faiss_goal[1]:.1f}×")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
