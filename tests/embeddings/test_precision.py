"""A version's vectors are computed in one precision: a new catalog takes the precision of its
first vectors, and a worker set to another refuses to write into it, before reading a file."""

import pytest

from catalog.models import Image
from embeddings.exceptions import PrecisionMismatch
from embeddings.models import ImageEmbedding, ModelVersion
from embeddings.services import images_embed, version_precision_check
from tests.config.test_outages import manage
from tests.conftest import unit


def test_a_catalog_without_vectors_takes_the_precision_it_is_first_embedded_in(db, settings):
    settings.GLIMPSE_INFERENCE_PRECISION = "bf16"
    base = ModelVersion.objects.get(number=1)
    assert base.precision == "f32"
    version_precision_check(version=base)
    assert base.precision == "bf16" and ModelVersion.objects.get(number=1).precision == "bf16"


def test_a_worker_in_another_precision_writes_nothing_and_says_what_to_set(make_images, settings):
    embedded, waiting = make_images([{"title": "embedded in f32", "image_vector": unit(1)}, {"title": "new"}])
    settings.GLIMPSE_INFERENCE_PRECISION = "bf16"
    with pytest.raises(PrecisionMismatch) as refused:
        images_embed(image_ids=[waiting.id])
    assert str(refused.value) == (
        "this process computes in bf16 (GLIMPSE_INFERENCE_PRECISION) but v1's vectors were computed in f32; "
        "set GLIMPSE_INFERENCE_PRECISION=f32 on every worker"
    )
    # The picture is fine: it stays pending for a worker set right, with no error of its own.
    assert Image.objects.values_list("embedding_status", "embedding_error").get(id=waiting.id) == ("pending", "")
    assert list(ImageEmbedding.objects.values_list("image_id", flat=True)) == [embedded.id]
    assert ModelVersion.objects.get(number=1).precision == "f32"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_worker_refuses_to_start_in_another_precision(make_images):
    make_images([{"title": "embedded in f32", "image_vector": unit(1)}])
    worker = manage("embed_worker", "--burst", GLIMPSE_INFERENCE_PRECISION="bf16")
    _, errors = worker.communicate(timeout=240)
    assert worker.returncode == 1
    assert errors.strip().splitlines()[-1] == (
        "CommandError: this process computes in bf16 (GLIMPSE_INFERENCE_PRECISION) but v1's vectors were computed in f32; "
        "set GLIMPSE_INFERENCE_PRECISION=f32 on every worker"
    )
