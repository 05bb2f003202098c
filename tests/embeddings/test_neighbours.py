"""Borrowed words for images without text, on hand-made vectors in the real database."""
import math

import numpy as np
import pytest

from embeddings.borrowing import neighbour_sweep, neighbour_vectors_refresh
from embeddings.models import FEATURE_DIMENSIONS, ImageEmbedding
from embeddings.neighbours import borrowed_text_vector, neighbour_weights
from embeddings.selectors import bare_images_near, described_neighbours, image_suggested_tags
from search.selectors import Filters, checked_vector, fused_ranking
from tests.conftest import unit

# Stored vectors are halfvec: 11 significant bits, and computed from stored vectors.
HALF_PRECISION = 1e-3


def feature(*weights: float) -> np.ndarray:
    vector = np.zeros(FEATURE_DIMENSIONS, dtype=np.float32)
    vector[: len(weights)] = weights
    return vector / np.linalg.norm(vector)


def normalized(vector) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float64)
    return vector / np.linalg.norm(vector)


def test_weights_are_a_softmax_of_feature_cosines_at_temperature_0_05():
    # A cosine 0.05·ln 3 lower weighs a third as much.
    assert neighbour_weights(np.array([0.6, 0.6 - 0.05 * math.log(3)])) == pytest.approx([0.75, 0.25])
    assert neighbour_weights(np.array([0.3, 0.3, 0.3, 0.3])) == pytest.approx([0.25] * 4)
    borrowed = borrowed_text_vector(similarities=np.array([0.6, 0.6 - 0.05 * math.log(3)]), text_vectors=np.stack([unit(1), unit(0, 1)]))
    np.testing.assert_allclose(borrowed, normalized(unit(3, 1)), atol=1e-6)


@pytest.fixture
def pond(make_images):
    """Two described drawings (a frog, a lily) and two bare ones: one between both, one a frog twin."""
    return make_images(
        [
            {"title": "frog", "tags": ("frog", "green"), "image_vector": unit(0.3, 0, 0, 1), "text_vector": unit(1), "feature_vector": feature(1, 0)},
            {"title": "lily", "tags": ("lily", "green"), "image_vector": unit(0, 0, 0, 0, 1), "text_vector": unit(0, 1), "feature_vector": feature(0, 1)},
            {"tags": ("pond",), "image_vector": unit(0.1, 0, 1), "feature_vector": feature(1, 1)},
            {"image_vector": unit(0.2, 0, 0, 0, 0, 1), "feature_vector": feature(1, 0)},
        ]
    )


def stored(image) -> np.ndarray | None:
    return ImageEmbedding.objects.get(image=image).neighbour_vector


def test_only_images_without_text_borrow_and_the_vectors_are_exact(pond, version):
    frog, lily, between, twin = pond
    assert neighbour_vectors_refresh(version=version, image_ids=[image.id for image in pond]) == 2
    assert stored(frog) is None and stored(lily) is None
    # Equally near both: half of each description, then half borrowed, half its own bridge vector.
    expected = normalized(0.5 * normalized(unit(1) + unit(0, 1)) + 0.5 * unit(0.1, 0, 1))
    np.testing.assert_allclose(stored(between), expected, atol=HALF_PRECISION)
    # Cosine 1 to the frog and 0 to the lily: weights 1 : e^-20.
    borrowed = normalized(unit(1) + math.exp(-20) * unit(0, 1))
    np.testing.assert_allclose(stored(twin), normalized(0.5 * borrowed + 0.5 * unit(0.2, 0, 0, 0, 0, 1)), atol=HALF_PRECISION)


def test_a_version_mixes_by_its_own_borrowed_share(pond, version):
    # A trained version may lean more on its own image vector (search/training.py picks it).
    version.borrowed_share = 0.25
    version.save(update_fields=["borrowed_share"])
    between = pond[2]
    assert neighbour_vectors_refresh(version=version, image_ids=[between.id]) == 1
    expected = normalized(0.25 * normalized(unit(1) + unit(0, 1)) + 0.75 * unit(0.1, 0, 1))
    np.testing.assert_allclose(stored(between), expected, atol=HALF_PRECISION)


def test_described_images_point_back_to_the_bare_ones_near_them(pond, version):
    frog, lily, between, twin = pond
    assert sorted(bare_images_near(version=version, image_ids=[frog.id])) == sorted([between.id, twin.id])
    assert bare_images_near(version=version, image_ids=[between.id]) == []
    assert neighbour_vectors_refresh(version=version, image_ids=[]) == 0


def test_the_sweep_fills_what_is_missing_once(pond, version):
    frog, lily, between, twin = pond
    ImageEmbedding.objects.filter(image__in=[frog, lily]).update(text_vector=None)
    assert neighbour_sweep(version=version) == 0  # nobody to borrow from
    ImageEmbedding.objects.filter(image=frog).update(text_vector=unit(1))
    assert neighbour_sweep(version=version) == 3
    assert neighbour_sweep(version=version) == 0
    np.testing.assert_allclose(stored(lily), normalized(0.5 * unit(1) + 0.5 * unit(0, 0, 0, 0, 1)), atol=HALF_PRECISION)


def test_bare_images_rank_by_their_borrowed_words_in_their_own_list(pond, version):
    frog, lily, between, twin = pond
    query = dict(mode="semantic", vector=checked_vector(unit(1, 0.5)), text="frog", version=version, filters=Filters())
    # Descriptions: frog 1, lily 2. Before borrowing the bare images rank by their bridge
    # vectors: twin 1 (0.18), between 2 (0.09). Ties go to the older image.
    assert [image_id for image_id, _ in fused_ranking(**query)] == [frog.id, twin.id, lily.id, between.id]
    neighbour_vectors_refresh(version=version, image_ids=[between.id, twin.id])
    ranking = fused_ranking(**query)
    # Borrowed: between 1 (0.71: half frog, half lily, mixed with its bridge vector), twin 2 (0.69).
    assert [image_id for image_id, _ in ranking] == [frog.id, between.id, lily.id, twin.id]
    assert [score for _, score in ranking] == pytest.approx([1 / 61, 1 / 61, 1 / 62, 1 / 62])


def test_suggested_tags_are_the_neighbours_tags_by_weight(pond, version):
    frog, lily, between, twin = pond
    # Half the weight on each neighbour; "pond" is the image's own and "green" is on both.
    assert image_suggested_tags(image_id=between.id) == [("green", 1.0), ("frog", 0.5), ("lily", 0.5)]
    # The twin's only weighty neighbour is the frog.
    assert image_suggested_tags(image_id=twin.id) == [("frog", 1.0), ("green", 1.0)]
    # A described image's neighbours are the other described images, never itself.
    assert image_suggested_tags(image_id=frog.id) == [("lily", 1.0)]
    assert image_suggested_tags(image_id=10**9) == []


def test_the_sweep_command_lends_words_and_queues_unread_pictures(pond, queue, capsys):
    from django.core.management import call_command

    from catalog.models import Image
    from embeddings.picture_text import queued_reading_ids

    frog, lily, between, twin = pond
    # Embedded, text not read yet, and no job queued for it (the command once left these to the scheduler).
    Image.objects.filter(id__in=[frog.id, twin.id]).update(embedding_status="ready", picture_text_state="pending")
    Image.objects.filter(id__in=[lily.id, between.id]).update(embedding_status="ready", picture_text_state="read")
    call_command("embed_sweep")
    out = capsys.readouterr().out
    assert "gave borrowed words to 2 images without text" in out and "queued 2 pictures for reading" in out
    assert ImageEmbedding.objects.filter(neighbour_vector__isnull=False).count() == 2
    assert queued_reading_ids() == {frog.id, twin.id}


def test_the_nearest_described_images_come_from_one_statement_for_training_and_for_borrowing(pond, version):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    frog, lily, between, twin = pond
    near = described_neighbours(version=version, image_ids=[image.id for image in pond])
    # Only the bare images, each with every described image nearest first (NEIGHBOURS is more than two).
    assert sorted(near) == sorted([between.id, twin.id])
    assert [neighbour for neighbour, _ in near[twin.id]] == [frog.id, lily.id]
    assert [similarity for _, similarity in near[twin.id]] == pytest.approx([1.0, 0.0], abs=HALF_PRECISION)
    assert sorted(neighbour for neighbour, _ in near[between.id]) == sorted([frog.id, lily.id])
    assert [similarity for _, similarity in near[between.id]] == pytest.approx([math.sqrt(0.5)] * 2, abs=HALF_PRECISION)
    with CaptureQueriesContext(connection) as queries:
        assert neighbour_vectors_refresh(version=version, image_ids=[between.id, twin.id]) == 2
    assert sum("CROSS JOIN LATERAL" in query["sql"] for query in queries.captured_queries) == 1
