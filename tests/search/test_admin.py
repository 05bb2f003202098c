"""The search side of the admin: starting a training run, the query log."""
import re

import django_rq
from django.urls import reverse

from search.judgments import is_held_out, judgment_record
from search.models import QueryLog
from tests.conftest import unit

TRAIN = "admin:embeddings_modelversion_train"
WORDS = ["apple", "guitar", "car", "cat", "dog", "house", "tree", "boat", "clock", "flower", "moon", "bread"]


def judge(curator, images, queries):
    for query in queries:
        judgment_record(curator=curator, image_id=images[0].id, grade=3, query_text=query)


def test_the_versions_page_has_a_train_button_that_needs_no_selection(admin_client):
    listing = admin_client.get(reverse("admin:embeddings_modelversion_changelist")).content.decode()
    assert f'<form method="post" action="{reverse(TRAIN)}">' in listing and "Train a new version now" in listing
    assert admin_client.get(reverse(TRAIN)).status_code == 405  # a GET (a prefetch, a crawler) trains nothing


def test_training_is_refused_while_no_judged_query_would_be_held_out(admin_client, curator, make_images, queue):
    images = make_images([{"title": "apple", "image_vector": unit(1)}])
    response = admin_client.post(reverse(TRAIN), follow=True)
    assert "the judgments cover 0 text queries and none of them falls in the held-out 30%" in response.content.decode()

    trained_only = [word for word in WORDS if not is_held_out(word, seed=0, share=0.3)][:3]
    judge(curator, images, trained_only)
    response = admin_client.post(reverse(TRAIN), follow=True)
    assert response.redirect_chain == [(reverse("admin:embeddings_modelversion_changelist"), 302)]
    assert "the judgments cover 3 text queries and none of them" in response.content.decode()
    assert django_rq.get_queue("training").count == 0


def test_training_is_queued_once_a_judged_query_is_held_out(admin_client, curator, make_images, queue):
    images = make_images([{"title": "apple", "image_vector": unit(1)}])
    judge(curator, images, [next(word for word in WORDS if is_held_out(word, seed=0, share=0.3))])
    response = admin_client.post(reverse(TRAIN), follow=True)
    assert "Training queued; the new version appears here when it finishes." in response.content.decode()
    assert [job.func_name for job in django_rq.get_queue("training").get_jobs()] == ["search.jobs.train_version"]


def test_curators_without_change_rights_cannot_train(client, curator, queue):
    client.force_login(curator)
    assert client.post(reverse(TRAIN)).status_code == 403
    assert django_rq.get_queue("training").count == 0


def test_the_query_log_rounds_latency_and_trims_long_queries(admin_client, version):
    long_query = "a red apple on a wooden table next to " + "a very long description " * 8
    QueryLog.objects.create(kind=QueryLog.Kind.TEXT, text=long_query, mode="hybrid", total=3, latency_ms=23.4567, version=version)
    listing = admin_client.get(reverse("admin:search_querylog_changelist")).content.decode()
    cells = dict(re.findall(r'<td class="field-(\w+)[^"]*">(.*?)</td>', listing))
    assert cells["latency"] == "23\xa0ms" and cells["version_number"] == "v1"
    shown = re.fullmatch(r'<span title="([^"]*)">([^<]*)</span>', cells["query"])
    assert shown.group(1) == long_query
    assert len(shown.group(2)) == 40 and shown.group(2).endswith("…")


def test_the_version_page_says_how_grades_reach_visitors(admin_client, version, settings):
    settings.GLIMPSE_HIDE_AFTER_CURATORS = 3
    page = admin_client.get(reverse("admin:embeddings_modelversion_change", args=[version.id])).content.decode()
    assert "How curators&#x27; grades reach visitors" in page
    assert "a picture graded 0 is hidden from visitors only once 3 curator(s) graded it 0 there and none higher" in page


ADMIN_REGISTRATIONS = """
import json
from django.contrib.admin.sites import AdminSite

unregistered = []
unregister = AdminSite.unregister
AdminSite.unregister = lambda site, model: unregistered.append(model.__name__) or unregister(site, model)

import django

django.setup()  # the admin app's ready() imports every app's admin module
from django.contrib import admin
from catalog.models import Image
from embeddings.models import ModelVersion

print(json.dumps([unregistered, type(admin.site._registry[Image]).__name__, type(admin.site._registry[ModelVersion]).__name__]))
"""


def test_each_admin_page_is_composed_and_registered_once_with_nothing_unregistered():
    # In a fresh interpreter: the admin modules are imported once per process.
    import json
    import os
    import subprocess
    import sys

    from django.conf import settings

    result = subprocess.run(
        [sys.executable, "-c", ADMIN_REGISTRATIONS], cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [[], "ImageWithSuggestionsAdmin", "TrainableModelVersionAdmin"]
