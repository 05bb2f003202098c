"""0009 gives each version with vectors the bare expression index (borrowed words, else the
bridge vector, of the images without text) in place of its image_vector and
neighbour_vector indexes, and back; the description index stays."""
import pytest

from catalog.models import Image
from embeddings.indexes import index_name
from embeddings.models import ModelVersion
from search.selectors import Filters, fused_ranking
from tests.conftest import unit
from tests.embeddings.test_halfvec_migration import index_definitions, latest, migrate

BEFORE = [("embeddings", "0008_zero_shot_kind")]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_existing_versions_get_the_bare_index_and_lose_the_unused_ones(make_images):
    make_images(
        [
            {"title": "bridge", "image_vector": unit(1, 0.4)},
            {"title": "bare", "image_vector": unit(-1, 1), "neighbour_vector": unit(1, 0.1)},
            {"title": "described", "image_vector": unit(1, 0.01), "text_vector": unit(1, 0.7)},
        ]
    )
    version = ModelVersion.objects.get(number=1)
    bare, image, text, neighbour = (
        index_name(column, version) for column in ("bare_vector", "image_vector", "text_vector", "neighbour_vector")
    )
    migrate(BEFORE)
    try:
        indexes = index_definitions()
        assert bare not in indexes
        assert "(image_vector halfvec_cosine_ops)" in indexes[image]
        assert indexes[neighbour].endswith("WHERE ((version_id = 1) AND (neighbour_vector IS NOT NULL))")
    finally:
        migrate(latest())
    indexes = index_definitions()
    assert not {image, neighbour} & set(indexes)
    assert "USING hnsw (COALESCE(neighbour_vector, image_vector) halfvec_cosine_ops)" in indexes[bare]
    assert indexes[bare].endswith("WHERE ((version_id = 1) AND (text_vector IS NULL))")
    assert indexes[text].endswith("WHERE ((version_id = 1) AND (text_vector IS NOT NULL))")
    titles = dict(Image.objects.values_list("id", "title"))
    ranking = fused_ranking(mode="semantic", vector=unit(1, 0, 0), text="", version=version, filters=Filters())
    # Bare list: bare 1 (borrowed 0.995), bridge 2 (0.93); descriptions: described 1 (0.82,
    # not its 1.00 bridge vector). Ties go to the older image.
    assert [titles[image_id] for image_id, _ in ranking] == ["bare", "described", "bridge"]
    assert [score for _, score in ranking] == pytest.approx([1 / 61, 1 / 61, 1 / 62])
