"""Binary COPY writes of embedding rows: exact values, upserts, refusals that write nothing."""
import threading

import numpy as np
import psycopg
import pytest
from django.db import DatabaseError, connection

from catalog.models import Image
from embeddings.bulk import BLOCK_ROWS, embeddings_upsert_columns, rows_checked, rows_copy, table_columns
from embeddings.exceptions import InvalidVector
from embeddings.models import DIMENSIONS, FEATURE_DIMENSIONS, ImageEmbedding
from tests.timeouts import timeout  # noqa: F401

pytestmark = pytest.mark.django_db

VECTOR_COLUMNS = ("image_vector", "text_vector", "feature_vector", "neighbour_vector")


def exact(seed: int, dimensions: int) -> np.ndarray:
    """Multiples of 1/64 below 1: exact in float32 and in half precision alike."""
    return (np.random.default_rng(seed).integers(-63, 64, dimensions) / 64).astype(np.float32)


def as_array(value) -> np.ndarray:
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


def row(image, version, seed: int, **changes) -> ImageEmbedding:
    values = dict(
        image_vector=exact(seed, DIMENSIONS),
        text_vector=exact(seed + 1, DIMENSIONS),
        feature_vector=exact(seed + 2, FEATURE_DIMENSIONS),
    )
    return ImageEmbedding(image=image, version=version, **(values | changes))


def upsert_rows(*, rows: list[ImageEmbedding]) -> int:
    """Model rows through the product's writer, as the columns it takes."""
    return embeddings_upsert_columns(
        image_ids=[row.image_id for row in rows],
        version_ids=[row.version_id for row in rows],
        vectors={name: [getattr(row, name) for row in rows] for name in VECTOR_COLUMNS},
    )


def stored(version) -> dict[int, tuple]:
    return {
        image_id: tuple(None if value is None else as_array(value) for value in vectors)
        for image_id, *vectors in ImageEmbedding.objects.filter(version=version).values_list(
            "image_id", "image_vector", "text_vector", "feature_vector", "neighbour_vector"
        )
    }


def assert_stored(version, expected: dict[int, ImageEmbedding]) -> None:
    found = stored(version)
    assert sorted(found) == sorted(expected)
    for image_id, wanted in expected.items():
        for value, field in zip(found[image_id], ("image_vector", "text_vector", "feature_vector", "neighbour_vector")):
            if getattr(wanted, field) is None:
                assert value is None, field
            else:
                np.testing.assert_array_equal(value, getattr(wanted, field), err_msg=field)


def test_copy_stores_the_exact_vectors_and_nulls(make_images, version):
    first, second = make_images([{"title": "a"}, {"title": "b"}])
    rows = [row(first, version, 1), row(second, version, 10, text_vector=None, feature_vector=None)]
    assert upsert_rows(rows=rows) == 2
    assert_stored(version, {first.id: rows[0], second.id: rows[1]})


def test_an_upsert_overwrites_every_column_of_an_existing_row(make_images, version):
    (image,) = make_images([{"title": "a"}])
    upsert_rows(rows=[row(image, version, 1, neighbour_vector=exact(4, DIMENSIONS))])
    written = ImageEmbedding.objects.get(image=image, version=version)
    replacement = row(image, version, 20, text_vector=None)
    upsert_rows(rows=[replacement])
    assert_stored(version, {image.id: replacement})
    rewritten = ImageEmbedding.objects.get(image=image, version=version)
    assert rewritten.id == written.id and rewritten.updated_at > written.updated_at
    assert upsert_rows(rows=[]) == 0


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"text_vector": np.full(DIMENSIONS, np.nan, dtype=np.float32)}, "text_vector holds NaN or infinite values"),
        ({"image_vector": np.ones(DIMENSIONS - 1, dtype=np.float32)}, r"image_vector has shape \(383,\), expected \(384,\)"),
        ({"feature_vector": np.ones((2, FEATURE_DIMENSIONS), dtype=np.float32)}, "feature_vector has shape"),
        ({"image_vector": None}, "image_vector is missing"),
    ],
)
def test_a_bad_vector_is_refused_by_name_and_nothing_is_written(make_images, version, changes, message):
    kept, good, bad = make_images([{"title": "kept"}, {"title": "good"}, {"title": "bad"}])
    before = row(kept, version, 1)
    upsert_rows(rows=[before])
    with pytest.raises(InvalidVector, match=f"image {bad.id}: {message}"):
        upsert_rows(rows=[row(kept, version, 50), row(good, version, 60), row(bad, version, 70, **changes)])
    assert_stored(version, {kept.id: before})


def test_a_batch_the_server_refuses_writes_nothing(make_images, version):
    kept, twice = make_images([{"title": "kept"}, {"title": "twice"}])
    before = row(kept, version, 1)
    upsert_rows(rows=[before])
    with pytest.raises(DatabaseError, match="cannot affect row a second time"):
        upsert_rows(rows=[row(kept, version, 5), row(twice, version, 6), row(twice, version, 7)])
    assert_stored(version, {kept.id: before})
    # The connection is usable again and the staging table is gone with the failed attempt.
    assert upsert_rows(rows=[row(twice, version, 8)]) == 1


@pytest.fixture
def scratch(db):
    """A table with one column of each vector type, on the real server."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bulk_scratch (id bigint NOT NULL, single vector(3) NOT NULL, half halfvec(3))")
    yield "bulk_scratch"


def scratch_copy(table: str, data: dict[str, list]) -> int:
    with connection.cursor() as wrapper:
        cursor = wrapper.cursor
        columns = table_columns(cursor, table=table, names=list(data))
        rows = rows_checked(columns, data, labels=[f"row {value}" for value in data["id"]])
        return rows_copy(cursor, table=table, rows=rows)


def scratch_rows(table: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, single::text, half::text FROM {table} ORDER BY id")
        return cursor.fetchall()


def test_copy_writes_each_column_in_its_own_type(scratch):
    # 0.1 is not exact in half precision: the halfvec column stores the nearest half, 0.099975586.
    data = {"id": [1, 2], "single": [np.array([0.1, -2, 65504.5]), [1, 2, 3]], "half": [np.array([0.1, -2, 65504]), None]}
    assert scratch_copy(scratch, data) == 2
    assert scratch_rows(scratch) == [(1, "[0.1,-2,65504.5]", "[0.099975586,-2,65504]"), (2, "[1,2,3]", None)]


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"single": [[1, 2, 3], [1, 2]]}, r"row 2: single has shape \(2,\), expected \(3,\)"),
        ({"half": [[1, 2, 3], [1, 2, 3, 4]]}, r"row 2: half has shape \(4,\), expected \(3,\)"),
        ({"half": [[1, 2, 3], [0, 65520, 0]]}, r"row 2: half holds values beyond half precision \(±65504\)"),
        ({"single": [[1, 2, 3], [0, np.inf, 0]]}, "row 2: single holds NaN or infinite values"),
        ({"single": [[1, 2, 3], None]}, "row 2: single is missing"),
    ],
)
def test_copy_refuses_a_vector_its_column_cannot_hold_and_writes_nothing(scratch, changes, message):
    data = {"id": [1, 2], "single": [[1, 2, 3], [4, 5, 6]], "half": [[1, 2, 3], [4, 5, 6]]} | changes
    with pytest.raises(InvalidVector, match=message):
        scratch_copy(scratch, data)
    assert scratch_rows(scratch) == []


def test_copy_refuses_a_column_type_it_does_not_write(scratch):
    from django.core.exceptions import ImproperlyConfigured

    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {scratch} ADD COLUMN note text")
        with pytest.raises(ImproperlyConfigured, match="bulk_scratch.note is text"):
            table_columns(cursor.cursor, table=scratch, names=["id", "note"])
        with pytest.raises(ImproperlyConfigured, match="bulk_scratch has no column missing"):
            table_columns(cursor.cursor, table=scratch, names=["missing"])


def test_many_rows_with_nulls_in_any_order_arrive_whole(make_images, version):
    images = make_images([{"title": str(number)} for number in range(3)])
    # Several blocks, and rows of three NULL patterns interleaved: each lands in its own row.
    count = 2 * BLOCK_ROWS + 7
    extra = Image.objects.bulk_create(
        [Image(file=f"images/x{number}.png", content_hash=f"hash{number}", width=1, height=1) for number in range(count - len(images))]
    )
    ids = [image.id for image in images] + [image.id for image in extra]
    rows = [
        ImageEmbedding(
            image_id=image_id,
            version=version,
            image_vector=exact(number, DIMENSIONS),
            text_vector=None if number % 3 == 1 else exact(number + 1, DIMENSIONS),
            feature_vector=None if number % 3 == 2 else exact(number + 2, FEATURE_DIMENSIONS),
        )
        for number, image_id in enumerate(ids)
    ]
    assert upsert_rows(rows=rows) == count
    assert_stored(version, {wanted.image_id: wanted for wanted in rows})


def test_a_row_inserted_meanwhile_by_another_transaction_is_overwritten(transactional_db, django_db_serialized_rollback, make_images, timeout):
    from embeddings.models import ModelVersion

    version = ModelVersion.objects.get(number=1)
    (image,) = make_images([{"title": "raced"}])
    # Another connection inserts the same (image, version) after this call found no row:
    # the straight COPY waits for it, fails on the unique key, and the call upserts instead.
    other = psycopg.connect(**connection.get_connection_params())
    other.execute(
        "INSERT INTO embeddings_imageembedding (image_id, version_id, image_vector, updated_at) VALUES (%s, %s, %s, now())",
        [image.id, version.id, str(exact(99, DIMENSIONS).tolist())],
    )
    committing = threading.Timer(1.0, other.commit)
    committing.start()
    try:
        mine = row(image, version, 1)
        assert upsert_rows(rows=[mine]) == 1
    finally:
        committing.join()
        other.close()
    assert_stored(version, {image.id: mine})
