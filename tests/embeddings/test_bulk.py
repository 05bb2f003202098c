"""Binary COPY writes of embedding rows: exact values, upserts, refusals that write nothing."""
import numpy as np
import pytest
from django.db import DatabaseError

from embeddings.bulk import embeddings_upsert
from embeddings.exceptions import InvalidVector
from embeddings.models import DIMENSIONS, FEATURE_DIMENSIONS, ImageEmbedding

pytestmark = pytest.mark.django_db


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
    assert embeddings_upsert(rows=rows) == 2
    assert_stored(version, {first.id: rows[0], second.id: rows[1]})


def test_an_upsert_overwrites_every_column_of_an_existing_row(make_images, version):
    (image,) = make_images([{"title": "a"}])
    embeddings_upsert(rows=[row(image, version, 1, neighbour_vector=exact(4, DIMENSIONS))])
    written = ImageEmbedding.objects.get(image=image, version=version)
    replacement = row(image, version, 20, text_vector=None)
    embeddings_upsert(rows=[replacement])
    assert_stored(version, {image.id: replacement})
    rewritten = ImageEmbedding.objects.get(image=image, version=version)
    assert rewritten.id == written.id and rewritten.created_at > written.created_at
    assert embeddings_upsert(rows=[]) == 0


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
    embeddings_upsert(rows=[before])
    with pytest.raises(InvalidVector, match=f"image {bad.id}: {message}"):
        embeddings_upsert(rows=[row(kept, version, 50), row(good, version, 60), row(bad, version, 70, **changes)])
    assert_stored(version, {kept.id: before})


def test_a_batch_the_server_refuses_writes_nothing(make_images, version):
    kept, twice = make_images([{"title": "kept"}, {"title": "twice"}])
    before = row(kept, version, 1)
    embeddings_upsert(rows=[before])
    with pytest.raises(DatabaseError, match="cannot affect row a second time"):
        embeddings_upsert(rows=[row(kept, version, 5), row(twice, version, 6), row(twice, version, 7)])
    assert_stored(version, {kept.id: before})
    # The connection is usable again and the staging table is gone with the failed attempt.
    assert embeddings_upsert(rows=[row(twice, version, 8)]) == 1


def test_half_precision_columns_refuse_values_they_would_store_as_infinity():
    from pgvector.django import HalfVectorField

    from embeddings.bulk import vector_checked

    field = HalfVectorField(dimensions=3, name="image_vector")
    np.testing.assert_array_equal(vector_checked([65504, -1, 0], field=field, image_id=7), [65504, -1, 0])
    with pytest.raises(InvalidVector, match=r"image 7: image_vector holds values beyond half precision \(±65504\)"):
        vector_checked([70000, 0, 0], field=field, image_id=7)
