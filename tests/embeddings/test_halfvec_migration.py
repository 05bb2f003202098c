"""0007 converts stored float32 vectors to halfvec in place, and back; the analytics
views that read those columns (search 0004) are there before and after."""
import numpy as np
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from catalog.models import Image
from embeddings.indexes import index_name
from embeddings.models import ImageEmbedding, ModelVersion
from search.selectors import Filters, fused_ranking
from tests.conftest import unit

BEFORE = [("embeddings", "0006_neighbour_vector")]


def migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    # Statements prepared on this connection were planned for the old column types.
    connection.close()


def latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def column_types() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'embeddings_imageembedding'::regclass AND attname LIKE '%%_vector'"
        )
        return dict(cursor.fetchall())


def category_centroids() -> dict[str, tuple[int, list[float]]]:
    """analytics_category_centroids: {category: (images, the centroid's first two values)}."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT category, images, centroid::text FROM analytics_category_centroids")
        return {category: (images, [round(float(value), 3) for value in centroid[1:-1].split(",")[:2]]) for category, images, centroid in cursor.fetchall()}


def index_definitions() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'embeddings_imageembedding' AND indexdef LIKE '%%hnsw%%'")
        return dict(cursor.fetchall())


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_vectors_are_converted_to_halfvec_and_rank_as_before(make_images):
    images = make_images([{"title": title, "category": "shapes"} for title in ("near", "middle", "far", "opposite")])
    vectors = {
        "near": (unit(1, 0.1), unit(0.3, 1), np.linspace(-1, 1, 1280, dtype=np.float32) / 20),
        "middle": (unit(1, 0.5), unit(1, 0.2), None),
        "far": (unit(0, 1), None, None),
        "opposite": (unit(-1, 0.1, 0.3), None, None),
    }
    version = ModelVersion.objects.get(number=1)
    migrate(BEFORE)
    try:
        assert column_types()["image_vector"] == "vector(384)"
        literal = lambda vector: None if vector is None else "[" + ",".join(repr(float(value)) for value in vector) + "]"  # noqa: E731
        with connection.cursor() as cursor:
            for image in images:
                image_vector, text_vector, features = vectors[image.title]
                cursor.execute(
                    "INSERT INTO embeddings_imageembedding (image_id, version_id, image_vector, text_vector, feature_vector, created_at)"
                    " VALUES (%s, %s, %s::vector, %s::vector, %s::vector, now())",
                    [image.id, version.id, literal(image_vector), literal(text_vector), literal(features)],
                )
        before = category_centroids()
    finally:
        migrate(latest())

    # The view was dropped and made again around the conversion, and reads the halfvec rows.
    assert category_centroids() == before
    assert before["shapes"][0] == 4
    assert column_types() == {
        "image_vector": "halfvec(384)",
        "text_vector": "halfvec(384)",
        "feature_vector": "halfvec(1280)",
        "neighbour_vector": "halfvec(384)",
        # added after the conversion (migration 0012), in half precision from the start
        "multilingual_image_vector": "halfvec(384)",
        "multilingual_text_vector": "halfvec(384)",
        "multilingual_neighbour_vector": "halfvec(384)",
    }
    indexes = index_definitions()
    assert "halfvec_cosine_ops" in indexes[index_name("text_vector", version)]
    assert "WHERE ((version_id = 1) AND (text_vector IS NOT NULL))" in indexes[index_name("text_vector", version)]
    stored = {row.image.title: row for row in ImageEmbedding.objects.select_related("image")}
    for title, (image_vector, text_vector, features) in vectors.items():
        # float16 keeps 11 significant bits: within 2⁻¹¹ relative, ±6e-8 near zero.
        np.testing.assert_allclose(stored[title].image_vector, image_vector, rtol=2**-11, atol=6e-8)
        if text_vector is None:
            assert stored[title].text_vector is None
        else:
            np.testing.assert_allclose(stored[title].text_vector, text_vector, rtol=2**-11, atol=6e-8)
        if features is not None:
            np.testing.assert_allclose(stored[title].feature_vector, features, rtol=2**-11, atol=6e-8)
    titles = dict(Image.objects.values_list("id", "title"))
    ranking = fused_ranking(mode="semantic", vector=unit(1, 0, 0), text="", version=version, filters=Filters())
    # Descriptions: middle 1 (0.98), near 2 (0.29); without text, by the bridge: far 1 (0), opposite 2 (-0.95).
    assert [titles[image_id] for image_id, _ in ranking] == ["middle", "far", "near", "opposite"]
    assert [score for _, score in ranking] == pytest.approx([1 / 61, 1 / 61, 1 / 62, 1 / 62])


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_migration_goes_back_to_float32_with_the_values_kept(make_images):
    make_images([{"title": "one", "image_vector": unit(1, 0.25), "text_vector": unit(0.5, 1)}])
    version = ModelVersion.objects.get(number=1)
    migrate(BEFORE)
    try:
        assert column_types()["text_vector"] == "vector(384)"
        assert category_centroids() == {}  # made again over the float32 columns
        indexes = index_definitions()
        assert "vector_cosine_ops" in indexes[index_name("text_vector", version)]
        assert indexes[index_name("text_vector", version)].endswith("WHERE (version_id = 1)")
        with connection.cursor() as cursor:
            cursor.execute("SELECT image_vector::text FROM embeddings_imageembedding")
            (value,) = cursor.fetchone()
        np.testing.assert_allclose(np.array(value[1:-1].split(","), dtype=np.float32), unit(1, 0.25), rtol=2**-11, atol=6e-8)
    finally:
        migrate(latest())
    assert column_types()["text_vector"] == "halfvec(384)"
