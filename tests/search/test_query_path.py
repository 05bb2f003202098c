"""The query path: binary vector parameters, index use whatever the share of rows that
have a column, ef_search from the page depth, the query-vector cache, the query log."""
import re
from datetime import datetime

import django_rq
import numpy as np
import pytest
from django.db import ProgrammingError, connection, transaction
from django.db.backends.utils import CursorWrapper
from django.test.utils import CaptureQueriesContext
from pgvector import HalfVector

from catalog.models import Image
from embeddings.bulk import embeddings_upsert_columns
from embeddings.indexes import index_name
from embeddings.models import ModelVersion
from search.judgments import JUDGED_QUERIES_JOB, JUDGED_QUERIES_QUEUE, judgment_record
from search.models import QueryLog
from search.query_vectors import QueryVectorCache
from search.ranking import configure_index_scans, ef_search_for, fused_ranking_sql
from search.selectors import Filters, fused_ranking, image_search
from search.services import query_log_insert_sql, query_log_write
from search.sql import PreparedCursor, search_cursor
from tests.conftest import random_unit_rows, unit

QUERY = unit(1, 0, 0)


def test_binary_parameters_rank_exactly_as_text_literals(make_images, version):
    make_images(
        [
            {"title": "a", "image_vector": unit(1, 0.1)},
            {"title": "b", "image_vector": unit(1, 0.5), "text_vector": unit(1, 0.2)},
            {"title": "c", "image_vector": unit(0, 1), "text_vector": unit(1, 0.9)},
            {"title": "d", "image_vector": unit(-1, 0.1)},
            {"title": "e", "image_vector": unit(1, 0.3, 0.3)},
        ]
    )
    literal = "[" + ",".join(repr(float(value)) for value in QUERY) + "]"
    for column in ("image_vector", "text_vector"):
        with connection.cursor() as cursor:  # Django's cursor: the literal in the SQL text
            cursor.execute(
                f"SELECT image_id, {column} <=> %s::halfvec FROM embeddings_imageembedding"
                f" WHERE version_id = %s AND {column} IS NOT NULL ORDER BY 2, 1",
                [literal, version.id],
            )
            by_literal = cursor.fetchall()
        with search_cursor() as cursor:
            cursor.execute(
                f"SELECT image_id, {column} <=> %s FROM embeddings_imageembedding"
                f" WHERE version_id = %s AND {column} IS NOT NULL ORDER BY 2, 1",
                [HalfVector(QUERY), version.id],
            )
            assert cursor.fetchall() == by_literal
    titles = dict(Image.objects.values_list("id", "title"))
    ranking = fused_ranking(mode="semantic", vector=QUERY, text="", version=version, filters=Filters())
    # Descriptions: b 1 (0.98), c 2 (0.74); the others by bridge: a 1 (0.995), e 2 (0.96), d 3.
    # Ties go to the older image: a, b, c, e, d.
    assert [titles[image_id] for image_id, _ in ranking] == ["a", "b", "c", "e", "d"]


def test_the_query_vector_is_sent_once_per_statement(version):
    sql, params = fused_ranking_sql(
        mode="hybrid", vector=QUERY, features=unit(0, 1), multilingual=unit(0, 0, 1), text="cat", version=version, filters=Filters()
    )
    vectors = [param for param in params if type(param).__name__ == "HalfVector"]
    assert len(vectors) == 3  # the English tower's vector, the CNN features and the multilingual tower's vector, each once
    assert sql.count("%s::halfvec") == 3
    assert sql.count("(SELECT vector FROM query)") == 4  # two lists
    assert sql.count("(SELECT multilingual FROM query)") == 6  # two lists and the words read in pictures by meaning


@pytest.mark.parametrize(("offset", "limit", "expected"), [(0, 20, 40), (20, 20, 40), (40, 20, 60), (80, 20, 100)])
def test_ef_search_follows_the_page_depth(make_images, version, settings, offset, limit, expected):
    settings.GLIMPSE_HNSW_EF_SEARCH = 40
    make_images([{"title": f"n{n}", "image_vector": unit(1, n / 10)} for n in range(3)])
    assert ef_search_for(offset + limit) == expected
    image_search(vector=QUERY, mode="semantic", offset=offset, limit=limit)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan')")
        assert cursor.fetchone() == (str(expected), "relaxed_order")


def sparse_catalog(version: ModelVersion, *, size: int, described: int) -> None:
    """`size` images with image vectors and CNN features; `described` of them (spread
    through the table) with a description vector, the others with borrowed words."""
    rng = np.random.default_rng(0)
    Image.objects.bulk_create(
        Image(file=f"images/{n}.png", thumbnail=f"thumbnails/{n}.webp", title=f"image {n}", content_hash=f"{n:064x}", width=1, height=1)
        for n in range(size)
    )
    ids = list(Image.objects.order_by("id").values_list("id", flat=True))
    every = size // described

    images, texts, features = random_unit_rows(rng, size, 384), random_unit_rows(rng, size, 384), random_unit_rows(rng, size, 1280)
    embeddings_upsert_columns(
        image_ids=ids,
        version_ids=[version.id] * size,
        vectors={
            "image_vector": images,
            "text_vector": [texts[position] if position % every == 0 else None for position in range(size)],
            "neighbour_vector": [None if position % every == 0 else texts[position] for position in range(size)],
            "feature_vector": features,
        },
    )
    with search_cursor() as cursor:
        cursor.execute("ANALYZE embeddings_imageembedding")
        cursor.execute("ANALYZE catalog_image")


def test_both_text_lists_walk_their_indexes_when_one_percent_of_images_are_described(version, db):
    sparse_catalog(version, size=3000, described=30)
    sql, params = fused_ranking_sql(mode="hybrid", vector=QUERY, text="zebra", version=version, filters=Filters())
    with search_cursor() as cursor:
        configure_index_scans(cursor, depth=20)
        # No planner settings forced: the plan the planner picks for a catalog of this shape.
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    used = set(re.findall(r"Index Scan using (\w+)", plan))
    # A text query's two vector lists: the descriptions, the 1 % (a table scan before the
    # index said IS NOT NULL), and the bare images' borrowed words through the expression index.
    assert used >= {index_name("text_vector", version), index_name("bare_vector", version)}, plan
    assert "Seq Scan on embeddings_imageembedding" not in plan
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'embeddings_imageembedding'")
        indexes = {name for (name,) in cursor.fetchall()}
    # Nothing ranks by the bare columns any more: their indexes would only cost writes.
    assert not indexes & {index_name(column, version) for column in ("image_vector", "neighbour_vector")}


def test_each_image_is_in_one_list_by_its_own_words_else_borrowed_else_the_bridge(make_images, version):
    make_images(
        [
            {"title": "bridge", "image_vector": unit(1, 0.4)},
            # Its own bridge vector points away; its borrowed words are the closest of all.
            {"title": "bare", "image_vector": unit(-1, 1), "neighbour_vector": unit(1, 0.1)},
            # Its bridge vector is the query itself, but it is ranked by its description.
            {"title": "described", "image_vector": unit(1, 0.01), "text_vector": unit(1, 0.8)},
            {"title": "far", "image_vector": unit(0, 1)},
        ]
    )
    titles = dict(Image.objects.values_list("id", "title"))
    ranking = fused_ranking(mode="semantic", vector=QUERY, text="", version=version, filters=Filters())
    # Bare list: bare 1 (borrowed words 0.995), bridge 2 (0.93), far 3; descriptions: described 1
    # (0.78, its description; not in the bare list by its bridge vector). Ties go to the older image.
    assert [titles[image_id] for image_id, _ in ranking] == ["bare", "described", "bridge", "far"]
    assert [score for _, score in ranking] == pytest.approx([1 / 61, 1 / 61, 1 / 62, 1 / 63])
    hits = {hit.image.title: hit for hit in image_search(text="query", vector=QUERY, mode="semantic", include_distant=True).hits}
    # Its similarity is still its best kind's: the borrowed words' cosine, read on their own cut-off.
    assert hits["bare"].similarity == pytest.approx(float(unit(1, 0.1) @ QUERY), abs=1e-3)


def test_the_query_cache_is_bounded_and_emptied_by_a_version_switch():
    cache = QueryVectorCache(size=2)
    vectors = (unit(1), unit(0, 1))
    cache.put(version_id=1, text="cat", vectors=vectors)  # before any lookup: no version yet, not kept
    assert cache.get(version_id=1, text="cat") is None
    cache.put(version_id=1, text="cat", vectors=vectors)
    assert cache.get(version_id=1, text="cat") is vectors
    cache.put(version_id=1, text="dog", vectors=vectors)
    cache.get(version_id=1, text="cat")  # cat is now the most recently used
    cache.put(version_id=1, text="bird", vectors=vectors)
    assert list(cache.entries) == ["cat", "bird"]  # dog, the least recently used, went
    assert cache.get(version_id=2, text="cat") is None  # another version: everything goes
    assert cache.entries == {} and cache.version_id == 2
    cache.put(version_id=1, text="cat", vectors=vectors)  # a late write for the old version
    assert cache.get(version_id=2, text="cat") is None
    assert (cache.hits, cache.misses) == (2, 3)


@pytest.mark.slow
def test_repeated_and_paginated_queries_do_not_encode_again_until_the_version_changes(make_images, version):
    from search.query_vectors import CACHE

    make_images([{"title": f"n{n}", "image_vector": unit(1, n / 30)} for n in range(30)])
    CACHE.clear()
    first = image_search(text="a red   apple", mode="semantic", limit=10, include_distant=True)
    second = image_search(text="a red apple", mode="semantic", limit=10, offset=10, include_distant=True)
    assert (CACHE.hits, CACHE.misses) == (1, 1)
    assert not set(first.image_ids) & set(second.image_ids)
    ModelVersion.objects.filter(id=version.id).update(state=ModelVersion.State.RETIRED)
    switched = ModelVersion.objects.create(number=2, kind=ModelVersion.Kind.BRIDGE, state=ModelVersion.State.ACTIVE, image_model="m", text_model="t")
    image_search(text="a red apple", mode="semantic", limit=10)
    assert (CACHE.misses, CACHE.version_id) == (2, switched.id)


def test_a_new_judged_query_is_embedded_by_a_queued_job_not_by_searches(make_images, curator, queue, django_capture_on_commit_callbacks):
    image = make_images([{"title": "kitten", "image_vector": unit(1)}])[0]
    with django_capture_on_commit_callbacks(execute=True):
        judgment_record(curator=curator, image_id=image.id, grade=3, query_text="kitten")
    queued = django_rq.get_queue(JUDGED_QUERIES_QUEUE).jobs
    assert [job.func_name for job in queued] == [JUDGED_QUERIES_JOB]
    with django_capture_on_commit_callbacks(execute=True):
        judgment_record(curator=curator, image_id=image.id, grade=2, query_text="kitten")  # a regrade: the query is known
        judgment_record(curator=curator, image_id=image.id, grade=3, query_text="cat", query_text_vector=unit(1))
    assert len(django_rq.get_queue(JUDGED_QUERIES_QUEUE).jobs) == 1


def test_the_query_log_is_one_statement_that_does_not_wait_for_the_disk(version):
    with CaptureQueriesContext(connection) as captured:
        query_log_write(kind="text", text="red  apple", mode="hybrid", result_ids=[3, 1], total=2, latency_ms=1.5, version=version)
    assert len(captured) == 1 and captured[0]["sql"].startswith("INSERT INTO")
    log = QueryLog.objects.get()
    assert (log.kind, log.text, log.result_ids, log.total, log.latency_ms, log.version) == ("text", "red  apple", [3, 1], 2, 1.5, version)
    assert log.created_at is not None
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")  # for the rest of the insert's transaction: here, the test's
        assert cursor.fetchone() == ("off",)


def test_the_query_log_insert_is_the_orms_own_statement(version):
    # InsertQuery is private Django API (search/services.py): if an upgrade changes what it
    # compiles to, this says so before the query log breaks.
    sql, params = query_log_insert_sql(kind="text", text="red apple", mode="hybrid", result_ids=[3, 1], total=2, latency_ms=1.5, version=version)
    fields = [field for field in QueryLog._meta.concrete_fields if not field.primary_key]
    columns = ", ".join(f'"{field.column}"' for field in fields)
    placeholders = ", ".join("%s::bigint[]" if field.name == "result_ids" else "%s" for field in fields)
    assert sql == f'INSERT INTO "search_querylog" ({columns}) VALUES ({placeholders})'
    values = dict(zip([field.name for field in fields], params))
    assert isinstance(values.pop("created_at"), datetime)  # auto_now_add, filled as the ORM does
    assert {name: getattr(value, "obj", value) for name, value in values.items()} == {
        "kind": "text", "text": "red apple", "image_hash": "", "similar_to": None, "mode": "hybrid", "filters": {},
        "result_ids": [3, 1], "total": 2, "nearest_only": False, "offset": 0, "latency_ms": 1.5, "version": version.id,
    }


def test_search_cursor_is_django_s_cursor_wrapper_around_a_prepared_cursor(db):
    # connection._prepare_cursor is private Django API (search/sql.py).
    with CaptureQueriesContext(connection) as captured, search_cursor() as cursor:
        assert isinstance(cursor, CursorWrapper) and isinstance(cursor.cursor, PreparedCursor)
        cursor.execute("SELECT %s::int + 1", [6])
        assert cursor.fetchone() == (7,)
        with pytest.raises(ProgrammingError, match="no_such_column"), transaction.atomic():
            cursor.execute("SELECT no_such_column")
    # Logged by Django's debug wrapper as the server received it: bound, not interpolated.
    assert captured[0]["sql"] == "SELECT $1::int + 1"
