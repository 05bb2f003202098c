"""0009 gives each version with vectors the words expression index (its description, else
borrowed words, else the bridge vector) in place of its image_vector, text_vector and
neighbour_vector indexes, and back."""
import pytest

from catalog.models import Image
from embeddings.indexes import index_name
from embeddings.models import ModelVersion
from search.selectors import Filters, fused_ranking
from tests.conftest import unit
from tests.embeddings.test_halfvec_migration import index_definitions, latest, migrate

BEFORE = [("embeddings", "0008_zero_shot_kind")]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_existing_versions_get_the_words_index_and_lose_the_unused_ones(make_images):
    make_images(
        [
            {"title": "bridge", "image_vector": unit(1, 0.4)},
            {"title": "bare", "image_vector": unit(-1, 1), "neighbour_vector": unit(1, 0.1)},
            {"title": "described", "image_vector": unit(1, 0.01), "text_vector": unit(1, 0.7)},
        ]
    )
    version = ModelVersion.objects.get(number=1)
    words, image, text, neighbour = (
        index_name(column, version) for column in ("words_vector", "image_vector", "text_vector", "neighbour_vector")
    )
    migrate(BEFORE)
    try:
        indexes = index_definitions()
        assert words not in indexes
        assert "(image_vector halfvec_cosine_ops)" in indexes[image]
        assert indexes[text].endswith("WHERE ((version_id = 1) AND (text_vector IS NOT NULL))")
        assert indexes[neighbour].endswith("WHERE ((version_id = 1) AND (neighbour_vector IS NOT NULL))")
    finally:
        migrate(latest())
    indexes = index_definitions()
    assert not {image, text, neighbour} & set(indexes)
    assert "USING hnsw (COALESCE(text_vector, neighbour_vector, image_vector) halfvec_cosine_ops)" in indexes[words]
    assert indexes[words].endswith("WHERE (version_id = 1)")
    titles = dict(Image.objects.values_list("id", "title"))
    ranking = fused_ranking(mode="semantic", vector=unit(1, 0, 0), text="", version=version, filters=Filters())
    # The described image ranks by its description (0.82), not its bridge vector (1.00).
    assert [titles[image_id] for image_id, _ in ranking] == ["bare", "bridge", "described"]
