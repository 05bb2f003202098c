"""Version lifecycle on hand-made vectors: heads, backfill, atomic switch, rollback, drop."""
import re

import django_rq
import numpy as np
import pytest
from rq import SimpleWorker

from embeddings.exceptions import VersionStateError
from embeddings.indexes import index_name, version_indexes_create
from embeddings.models import FEATURE_DIMENSIONS, ImageEmbedding, ModelVersion
from embeddings.rows import version_backfill_chunk
from embeddings.selectors import version_active
from embeddings.services import TRAINING_QUEUE, version_activate, version_drop_vectors, version_start_release
from embeddings.spaces import HeadsSpace, ImageVectors
from embeddings.training.heads import HeadWeights
from search.selectors import Filters, checked_vector, image_search
from tests.conftest import unit
from tests.plans import ranking_plan

QUERY = unit(1, 0, 0)


def features(*weights):
    vector = np.zeros(FEATURE_DIMENSIONS, dtype=np.float32)
    vector[: len(weights)] = weights
    return vector / np.linalg.norm(vector)


def swapping_heads() -> HeadWeights:
    """Heads that push each image away from the query axis by its second feature: reverses v1's order."""
    image = np.zeros((FEATURE_DIMENSIONS, 384), dtype=np.float32)
    image[1, 1] = 5.0
    return HeadWeights(image=image, text=np.zeros((384, 384), dtype=np.float32), logit_scale=3.0)


@pytest.fixture
def catalog(make_images):
    return make_images(
        [
            {"title": "first in v1", "image_vector": unit(1, 0.1), "feature_vector": features(0, 1)},
            {"title": "second in v1", "image_vector": unit(1, 0.5), "feature_vector": features(1, 1)},
            {"title": "third in v1", "image_vector": unit(1, 0.9), "feature_vector": features(1, 0)},
        ]
    )


@pytest.fixture
def trained(db):
    return ModelVersion.objects.create(
        number=2, kind="heads", state="training", image_model="x", text_model="y", weights=swapping_heads().to_bytes()
    )


def titles(results):
    return [hit.image.title for hit in results.hits]


def test_zero_heads_are_exactly_the_bridge():
    zero = HeadWeights(image=np.zeros((FEATURE_DIMENSIONS, 384), np.float32), text=np.zeros((384, 384), np.float32), logit_scale=0)
    base = ImageVectors(text_space=np.stack([unit(1, 2), unit(0, 1)]), features=np.stack([features(1), features(0, 1)]))
    space = HeadsSpace(zero)
    assert np.allclose(space.from_base(base).text_space, base.text_space)
    assert np.allclose(space.texts_from_base(base.text_space), base.text_space)
    assert HeadWeights.from_bytes(zero.to_bytes()).image.shape == (FEATURE_DIMENSIONS, 384)


def test_searches_stay_on_the_old_version_until_the_switch(catalog, trained):
    version_start_release(version=trained)
    assert version_backfill_chunk(version=trained, limit=1) == 1
    # Half-backfilled: every search still sees all of v1 and nothing of v2.
    results = image_search(vector=QUERY, mode="semantic")
    assert results.version.number == 1
    assert titles(results) == ["first in v1", "second in v1", "third in v1"]
    with pytest.raises(VersionStateError, match="still lacks vectors for 2 images"):
        version_activate(version=trained)
    assert version_backfill_chunk(version=trained) == 2
    assert version_backfill_chunk(version=trained) == 0
    version_activate(version=trained)
    results = image_search(vector=QUERY, mode="semantic")
    assert results.version.number == 2
    assert titles(results) == ["third in v1", "second in v1", "first in v1"]
    assert list(ModelVersion.objects.order_by("number").values_list("number", "state")) == [(1, "retired"), (2, "active")]


# Transactional, like production: the backfill job builds its index CONCURRENTLY.
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_rollback_and_drop_and_bring_back(catalog, trained, queue):
    def release(version):
        version_start_release(version=version)

    release(trained)
    training = SimpleWorker([_training_queue()], connection=queue.connection)
    training.work(burst=True)  # the backfill job indexes, fills and activates v2
    assert version_active().number == 2
    v1 = ModelVersion.objects.get(number=1)
    release(v1)
    training.work(burst=True)
    assert version_active().number == 1
    trained.refresh_from_db()
    assert version_drop_vectors(version=trained) == 3
    assert ImageEmbedding.objects.filter(version=trained).count() == 0
    with pytest.raises(VersionStateError, match="only retired trained versions"):
        version_drop_vectors(version=v1)
    # The heads are kept: v2 comes back from the base rows alone.
    release(trained)
    training.work(burst=True)
    assert version_active().number == 2 and ImageEmbedding.objects.filter(version=trained).count() == 3


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_each_version_searches_through_its_own_index(catalog, trained):
    version_indexes_create(version=trained)
    while version_backfill_chunk(version=trained):
        pass
    plan = ranking_plan(mode="semantic", vector=checked_vector(QUERY), text="", version=trained, filters=Filters())
    used = set(re.findall(r"Index Scan using (\w+)", plan))
    assert index_name("text_vector", trained) in used
    assert index_name("text_vector", ModelVersion.objects.get(number=1)) not in used


def _training_queue():
    return django_rq.get_queue(TRAINING_QUEUE)
