"""Suggested tags on the image admin: shown, and written only when a curator accepts them."""
import numpy as np
from django.urls import reverse

from catalog.models import Image
from embeddings.models import FEATURE_DIMENSIONS
from tests.conftest import unit


def feature(*weights: float) -> np.ndarray:
    vector = np.zeros(FEATURE_DIMENSIONS, dtype=np.float32)
    vector[: len(weights)] = weights
    return vector / np.linalg.norm(vector)


def test_curators_see_and_accept_suggested_tags(admin_client, django_capture_on_commit_callbacks, queue, make_images):
    frog, bare, lonely = make_images(
        [
            {"title": "frog", "tags": ("frog", "green"), "image_vector": unit(1), "text_vector": unit(1), "feature_vector": feature(1, 0)},
            {"tags": ("pond",), "image_vector": unit(0, 1), "feature_vector": feature(1, 0.1)},
            {"title": "not embedded yet"},
        ]
    )
    page = admin_client.get(reverse("admin:catalog_image_change", args=[bare.id])).content.decode()
    assert "Suggested tags" in page and "frog <small>(1.00)</small>, green <small>(1.00)</small>" in page
    assert Image.objects.get(id=bare.id).tags == ["pond"]  # looking writes nothing
    lonely_page = admin_client.get(reverse("admin:catalog_image_change", args=[lonely.id])).content.decode()
    assert "no described image looks like this one yet" in lonely_page

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse("admin:catalog_image_changelist"),
            {"action": "accept_suggested_tags", "_selected_action": [bare.id, lonely.id]},
            follow=True,
        )
    assert "1 images got suggested tags and were queued for embedding." in response.content.decode()
    bare.refresh_from_db()
    assert (bare.tags, bare.embedding_status) == (["pond", "frog", "green"], "pending")
    assert Image.objects.get(id=lonely.id).tags == []
    assert [job.args for job in queue.get_jobs()] == [([bare.id], None)]
