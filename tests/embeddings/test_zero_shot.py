"""The zero-shot version (embeddings/zero_shot.py) on hand-made classifiers and vectors.

Two classes; the first image's logits are (3, 1), the second's (2, 1.5): the plain bridge
puts both on class 0's side. The catalog's mean logits are (2.5, 1.25); without them the
first shows class 0 more than the catalog does and the second class 1, and with centred
class vectors each lands exactly on its side of the axis between the two class names.
"""
from io import StringIO

import django_rq
import numpy as np
import pytest
from django.core.management import CommandError, call_command
from rq import SimpleWorker

from embeddings.exceptions import EmptyCatalog, VersionStateError
from embeddings.models import FEATURE_DIMENSIONS, ImageEmbedding, ModelVersion
from embeddings.selectors import version_active
from embeddings.services import (
    TRAINING_QUEUE,
    version_activate,
    version_backfill,
    version_mark_backfilling,
    version_zero_shot_create,
)
from embeddings.spaces import ZeroShotSpace, space_for
from embeddings.zero_shot import FEATURE_NORM, ZeroShotRecipe
from search.selectors import image_search
from tests.conftest import unit

CLASS_0 = unit(1, 0)
CLASS_1 = unit(0, 1)
TOWARDS_0 = unit(1, -1)
TOWARDS_1 = unit(-1, 1)


def features(*weights):
    vector = np.zeros(FEATURE_DIMENSIONS, dtype=np.float32)
    vector[: len(weights)] = weights
    return vector / np.linalg.norm(vector)


def classifier() -> tuple[np.ndarray, np.ndarray]:
    """Logits (3, 1) for the first feature axis, (2, 1.5) for the second, at the fixed norm."""
    weight = np.zeros((2, FEATURE_DIMENSIONS), dtype=np.float32)
    weight[:, 0] = np.array([3, 1]) / FEATURE_NORM
    weight[:, 1] = np.array([2, 1.5]) / FEATURE_NORM
    return weight, np.zeros(2, dtype=np.float32)


def recipe_for(catalog_features: np.ndarray) -> ZeroShotRecipe:
    weight, bias = classifier()
    return ZeroShotRecipe.from_catalog(
        features=catalog_features, classifier_weight=weight, classifier_bias=bias, class_embeddings=np.stack([CLASS_0, CLASS_1])
    )


def test_the_catalog_prior_and_the_shared_class_direction_are_removed():
    recipe = recipe_for(np.stack([features(1), features(0, 1)]))
    assert np.allclose(recipe.class_offsets, [2.5, 1.25])
    assert np.allclose(recipe.class_vectors, np.stack([unit(0.5, -0.5), unit(-0.5, 0.5)]) / np.sqrt(2))
    vectors = recipe.image_vectors(np.stack([features(1), features(0, 1)]))
    assert np.allclose(vectors, np.stack([TOWARDS_0, TOWARDS_1]), atol=1e-6)
    # Stored and read back, the recipe gives the same vectors.
    assert np.allclose(ZeroShotRecipe.from_bytes(recipe.to_bytes()).image_vectors(np.stack([features(0, 1)])), TOWARDS_1[None], atol=1e-6)


def test_the_prior_is_the_catalogs():
    # A catalog of pictures like the first only: the first is now average, the second shows class 1 more.
    recipe = recipe_for(np.stack([features(1), features(1)]))
    assert np.allclose(recipe.class_offsets, [3, 1])
    vectors = recipe.image_vectors(np.stack([features(1), features(0, 1)]))
    assert np.allclose(vectors[1], TOWARDS_1, atol=1e-6)


def test_no_embedded_image_no_version(db):
    weight, bias = classifier()
    with pytest.raises(EmptyCatalog, match="no image has been embedded yet"):
        version_zero_shot_create(classifier_weight=weight, classifier_bias=bias, class_embeddings=np.stack([CLASS_0, CLASS_1]))
    assert list(ModelVersion.objects.values_list("number", flat=True)) == [1]


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_zero_shot_version_is_backfilled_from_the_stored_features_and_switched_to(make_images):
    # Version 1's bridge vectors put both pictures on class 0's side, the first further.
    make_images(
        [
            {"title": "shows class 0", "image_vector": unit(1, 0.1), "feature_vector": features(1)},
            {"title": "shows class 1 more than most", "image_vector": unit(1, 0.5), "feature_vector": features(0, 1)},
        ]
    )
    assert [hit.image.title for hit in image_search(vector=TOWARDS_1, mode="semantic").hits] == ["shows class 1 more than most", "shows class 0"]
    assert [hit.image.title for hit in image_search(vector=CLASS_1, mode="semantic").hits] == ["shows class 1 more than most", "shows class 0"]
    weight, bias = classifier()
    version = version_zero_shot_create(classifier_weight=weight, classifier_bias=bias, class_embeddings=np.stack([CLASS_0, CLASS_1]))
    assert (version.number, version.kind, version.state, version.metrics) == (2, "zero-shot", "training", {"prior_images": 2})
    assert isinstance(space_for(version), ZeroShotSpace)
    with pytest.raises(VersionStateError, match="only a backfilled version can be activated"):
        version_activate(version=version)

    version_mark_backfilling(version=version)
    assert version_backfill(version=version) == 2
    version.refresh_from_db()
    assert version.state == "active"
    rows = {row.image.title: row for row in ImageEmbedding.objects.filter(version=version).select_related("image")}
    assert np.allclose(rows["shows class 0"].image_vector, TOWARDS_0, atol=1e-3)  # stored at half precision
    assert np.allclose(rows["shows class 1 more than most"].image_vector, TOWARDS_1, atol=1e-3)
    # Picture search is untouched: the features are version 1's.
    assert np.allclose(rows["shows class 0"].feature_vector, features(1))
    results = image_search(vector=TOWARDS_0, mode="semantic")
    assert results.version.number == 2
    assert [hit.image.title for hit in results.hits] == ["shows class 0", "shows class 1 more than most"]
    assert [hit.image.title for hit in image_search(vector=TOWARDS_1, mode="semantic").hits] == ["shows class 1 more than most", "shows class 0"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_command_releases_a_zero_shot_version_through_the_training_queue(make_images, queue):
    with pytest.raises(CommandError, match="no image has been embedded yet"):
        call_command("zero_shot_version")
    make_images(
        [
            {"title": "one", "image_vector": unit(1, 0.1), "feature_vector": features(1)},
            {"title": "two", "image_vector": unit(1, 0.5), "feature_vector": features(0, 1)},
        ]
    )
    output = StringIO()
    call_command("zero_shot_version", stdout=output)
    assert output.getvalue() == "v2: class prior from 2 images; backfill queued, searches switch when it is done\n"
    assert ModelVersion.objects.get(number=2).state == "backfilling"
    SimpleWorker([django_rq.get_queue(TRAINING_QUEUE)], connection=queue.connection).work(burst=True)
    assert version_active().number == 2
    assert ImageEmbedding.objects.filter(version__number=2, image_vector__isnull=False).count() == 2
