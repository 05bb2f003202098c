"""Suggested tags on the image admin: shown, and written only when a curator accepts them."""
import re

import numpy as np
from django.urls import reverse
from django.utils import timezone

from catalog.models import Image
from embeddings.models import FEATURE_DIMENSIONS, ModelVersion
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
    assert "— (not embedded yet: suggestions come from the described pictures its vectors look like)" in lonely_page

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


def test_the_suggested_tags_line_says_why_there_are_none(admin_client, make_images):
    def line(image: Image) -> str:
        page = admin_client.get(reverse("admin:catalog_image_change", args=[image.id])).content.decode()
        return re.search(r"Suggested tags:</label>\s*<div class=\"readonly\">(.*?)</div>", page, re.S).group(1)

    [bare] = make_images([{"image_vector": unit(0, 1), "feature_vector": feature(0, 1)}])
    assert line(bare) == "— (no described image looks like this one yet)"

    described, alike = make_images(
        [
            {"title": "frog", "tags": ("frog",), "image_vector": unit(1), "text_vector": unit(1), "feature_vector": feature(1, 0)},
            {"description": "a frog on a leaf", "tags": ("frog",), "image_vector": unit(1), "text_vector": unit(1), "feature_vector": feature(1, 0.05)},
        ]
    )
    # Described pictures whose look-alike carries only tags they have: nothing to add, and
    # not for want of look-alikes.
    own_words = "— (none to add: this picture has words of its own, and no described look-alike carries a tag it lacks)"
    assert line(described) == line(alike) == own_words
    assert line(bare) == "frog <small>(1.00)</small>"


def kept_back_version(**metrics) -> ModelVersion:
    return ModelVersion.objects.create(
        number=2, kind=ModelVersion.Kind.HEADS, state=ModelVersion.State.RETIRED, image_model="cnn", text_model="bert", metrics=metrics
    )


def test_a_version_that_never_served_is_kept_back_and_shows_no_made_up_metrics(admin_client):
    kept_back_version(held_out={"candidate": {"nDCG@10": 0.0, "Recall@10": 0.0, "MRR": 0.0, "queries": 0}, "active_v1": {"nDCG@10": 0.0, "Recall@10": 0.0, "MRR": 0.0, "queries": 0}})
    ModelVersion.objects.create(
        number=3, kind=ModelVersion.Kind.HEADS, state=ModelVersion.State.RETIRED, image_model="cnn", text_model="bert",
        activated_at=timezone.now(), retired_at=timezone.now(),
        metrics={"held_out": {"candidate": {"nDCG@10": 0.61234, "Recall@10": 0.5, "MRR": 0.7, "queries": 4}}},
    )
    listing = admin_client.get(reverse("admin:embeddings_modelversion_changelist")).content.decode()
    rows = {number: row for number, row in re.findall(r'<tr>.*?>(\d+)</a></th>(.*?)</tr>', listing, re.S)}
    cells = {number: re.findall(r'<td class="field-(\w+)[^"]*">(.*?)</td>', row) for number, row in rows.items()}
    assert dict(cells["2"])["status"] == "kept back (never served)"
    assert (dict(cells["2"])["held_out_ndcg"], dict(cells["2"])["active_ndcg"]) == ("—", "—")
    assert (dict(cells["3"])["status"], dict(cells["3"])["held_out_ndcg"]) == ("retired", "0.6123")
    assert dict(cells["1"])["status"] == "active"
    kept_back = admin_client.get(reverse("admin:embeddings_modelversion_changelist"), {"status": "kept_back"}).content.decode()
    assert re.findall(r'field-number[^>]*><a[^>]*>(\d+)</a>', kept_back) == ["2"]

    page = admin_client.get(reverse("admin:embeddings_modelversion_change", args=[ModelVersion.objects.get(number=2).id])).content.decode()
    table = re.search(r"Held-out judgments:.*?</table>", page, re.S).group(0)
    assert table.count("<td>—</td>") == 6 and "0.0" not in table


def test_the_training_curve_has_axes_epochs_and_the_held_out_line(admin_client):
    curve = [{"epoch": epoch, "loss": 2.0 - epoch / 10, "held_out_nDCG@10": ndcg} for epoch, ndcg in enumerate([0.40, 0.52, 0.55, 0.50], start=1)]
    version = kept_back_version(curve=curve)
    page = admin_client.get(reverse("admin:embeddings_modelversion_change", args=[version.id])).content.decode()
    held_out, loss = re.findall(r"<svg[^>]*role=\"img\".*?</svg>", page, re.S)
    assert 'aria-label="held-out nDCG@10 per epoch"' in held_out and 'aria-label="training loss per epoch"' in loss
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", held_out)
    assert ["1", "2", "3", "4", "epoch", "nDCG@10"] == [label for label in labels if label in {"1", "2", "3", "4", "epoch", "nDCG@10"}]
    assert "best: 0.5500 at epoch 3" in labels
    assert held_out.count("<line") == 2 + 5 + 4  # two axes, five y gridlines, four epoch ticks
    assert len(re.search(r'<polyline[^>]*points="([^"]*)"', held_out).group(1).split()) == 4


def test_version_pages_offer_no_save_buttons(admin_client):
    version = kept_back_version()
    page = admin_client.get(reverse("admin:embeddings_modelversion_change", args=[version.id])).content.decode()
    assert 'name="_save"' not in page and 'name="_continue"' not in page and 'name="_addanother"' not in page
    assert "Close" in page


def test_a_post_to_a_version_page_changes_nothing(admin_client):
    version = kept_back_version()
    url = reverse("admin:embeddings_modelversion_change", args=[version.id])
    page = admin_client.get(url).content.decode()
    form = re.search(r'<form[^>]*id="modelversion_form".*?</form>', page, re.S).group(0)
    assert re.findall(r'<(?:input|select|textarea)[^>]*name="(\w+)"', form) == ["csrfmiddlewaretoken"]
    response = admin_client.post(url, {"state": "training", "notes": "edited", "borrowed_share": "0.9"})
    assert response.status_code == 403
    version.refresh_from_db()
    assert (version.state, version.notes, version.borrowed_share) == ("retired", "", 0.5)


def test_only_those_who_may_change_versions_release_them(client, django_user_model):
    from django.contrib.auth.models import Permission

    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_modelversion"))
    client.force_login(viewer)
    version = kept_back_version()
    listing = client.get(reverse("admin:embeddings_modelversion_changelist"))
    assert listing.status_code == 200 and 'value="release"' not in listing.content.decode()
    client.post(reverse("admin:embeddings_modelversion_changelist"), {"action": "release", "_selected_action": [version.id]})
    version.refresh_from_db()
    assert version.state == "retired"


def test_the_version_page_shows_the_gates_rule_and_folds(admin_client):
    gate = {
        "released": False, "rule": "nDCG@10 gain ≥ 0.005 over all 4 held-out queries and in at least 2 of 2 folds", "gain": 0.1,
        "folds": [{"queries": 2, "candidate": 0.9, "active": 0.5, "gain": 0.4}, {"queries": 2, "candidate": 0.3, "active": 0.5, "gain": -0.2}],
        "folds_won": 1,
    }
    page = admin_client.get(reverse("admin:embeddings_modelversion_change", args=[kept_back_version(gate=gate).id])).content.decode()
    shown = re.search(r"Release gate:.*?</table>", page, re.S).group(0)
    assert "not released: nDCG@10 gain ≥ 0.005 over all 4 held-out queries and in at least 2 of 2 folds." in shown
    assert "Gain over all held-out queries +0.1000; the margin was met in 1 of 2 folds." in shown
    assert re.findall(r"<tr><th>fold \d</th>.*?</tr>", shown) == [
        "<tr><th>fold 1</th><td>2</td><td>0.9000</td><td>0.5000</td><td>+0.4000</td></tr>",
        "<tr><th>fold 2</th><td>2</td><td>0.3000</td><td>0.5000</td><td>-0.2000</td></tr>",
    ]


def test_a_training_versions_page_shows_its_progress_and_reloads_itself(admin_client):
    import time

    from embeddings.services import version_progress_record

    version = ModelVersion.objects.create(number=2, kind=ModelVersion.Kind.HEADS, state=ModelVersion.State.TRAINING, image_model="cnn", text_model="bert")
    now = time.monotonic()
    version_progress_record(version=version, stage="training", started=now - 100, epoch=3, epochs=15, epoch_started=now - 60)
    version.refresh_from_db()
    assert {key: version.metrics["progress"][key] for key in ("stage", "epoch", "epochs", "elapsed_s", "eta_s")} == {
        "stage": "training", "epoch": 3, "epochs": 15, "elapsed_s": 100, "eta_s": 240,
    }
    page = admin_client.get(reverse("admin:embeddings_modelversion_change", args=[version.id])).content.decode()
    assert 'epoch 3 of 15, 1 min 40 s elapsed, about 4 min 0 s left <meta http-equiv="refresh" content="5">' in page
    listing = admin_client.get(reverse("admin:embeddings_modelversion_changelist")).content.decode()
    assert "training (epoch 3 of 15, 1 min 40 s elapsed, about 4 min 0 s left)" in listing
    # Once the run has written its results, the page stops reloading.
    ModelVersion.objects.filter(id=version.id).update(state=ModelVersion.State.RETIRED, metrics={"released": False})
    page = admin_client.get(reverse("admin:embeddings_modelversion_change", args=[version.id])).content.decode()
    assert 'http-equiv="refresh"' not in page
