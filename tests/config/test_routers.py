"""Search reads on replicas, everything else on the primary (config/routers.py).

The replica is the test database under a second alias (Django's TEST MIRROR), so data
must be committed to be seen through it: these tests use real transactions.
"""
import json
import subprocess
import sys

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext

from catalog.models import Image
from config.routers import ReplicaRouter, read_database, replica_reads
from search.models import QueryLog
from tests.config.test_settings import ROOT, clean_environment
from tests.conftest import unit

replicated = pytest.mark.django_db(transaction=True, serialized_rollback=True, databases=["default", "replica"])


@pytest.fixture
def replica(settings):
    settings.GLIMPSE_READ_REPLICAS = ["replica"]
    return "replica"


def queries_on(alias: str) -> CaptureQueriesContext:
    return CaptureQueriesContext(connections[alias])


@replicated
def test_reads_inside_replica_reads_go_to_the_replica_until_the_request_writes(replica, make_images):
    (image,) = make_images([{"title": "kept"}])
    assert Image.objects.db == "default"  # workers, training, commands, admin
    with replica_reads():
        assert Image.objects.db == read_database() == "replica"
        with queries_on("replica") as on_replica, queries_on("default") as on_primary:
            assert Image.objects.get(id=image.id).title == "kept"
        assert (len(on_replica), len(on_primary)) == (1, 0)
        with transaction.atomic():
            assert Image.objects.db == "default"  # a transaction reads its own writes
        assert Image.objects.db == "replica"
        Image.objects.filter(id=image.id).update(title="changed")
        assert Image.objects.db == "default"
        assert Image.objects.get(id=image.id).title == "changed"
    assert Image.objects.db == "default"


@pytest.mark.django_db
def test_without_replicas_every_read_uses_the_primary(settings):
    settings.GLIMPSE_READ_REPLICAS = []
    with replica_reads():
        assert Image.objects.db == read_database() == "default"


def test_migrations_and_writes_go_to_the_primary_only():
    router = ReplicaRouter()
    assert router.allow_migrate("default", "catalog") and not router.allow_migrate("replica", "catalog")
    with replica_reads():
        assert router.db_for_write(Image) == "default"


@replicated
def test_a_search_request_ranks_on_the_replica_and_logs_on_the_primary(replica, make_images, client):
    red, green, guitar = make_images(
        [
            {"title": "Red apple", "image_vector": unit(1, 0.1)},
            {"title": "Green apple", "image_vector": unit(1, 0.3)},
            {"title": "Guitar", "image_vector": unit(0, 1)},
        ]
    )
    with queries_on("replica") as on_replica, queries_on("default") as on_primary:
        body = client.get("/api/search", {"like": red.id}).json()
    assert [result["title"] for result in body["results"]] == ["Green apple", "Guitar"]
    assert any("<=>" in query["sql"] for query in on_replica.captured_queries)
    assert not any("<=>" in query["sql"] for query in on_primary.captured_queries)
    assert any("INSERT" in query["sql"] and "search_querylog" in query["sql"] for query in on_primary.captured_queries)
    assert not any("INSERT" in query["sql"] for query in on_replica.captured_queries)
    assert QueryLog.objects.get().result_ids == [green.id, guitar.id]
    # A form post is no search read: all of it on the primary.
    with queries_on("replica") as on_replica:
        client.post("/api/search", {"like": red.id})
    assert len(on_replica) == 0


def test_replica_urls_become_aliases_parsed_like_database_url(tmp_path):
    environment = clean_environment(
        tmp_path, DATABASE_REPLICA_URLS="postgresql://reader:pw@replica-1.invalid:5433/glimpse, postgresql://reader@replica-2.invalid/glimpse"
    )
    shown = "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps([s.GLIMPSE_READ_REPLICAS, {a: [d['HOST'], d['PORT'], d['USER'], d['NAME']] for a, d in s.DATABASES.items()}]))"
    result = subprocess.run([sys.executable, "-c", shown], env=environment, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    replicas, databases = json.loads(result.stdout)
    assert replicas == ["replica_1", "replica_2"]
    assert databases == {
        "default": ["db.invalid", "5432", "glimpse", "glimpse"],
        "replica_1": ["replica-1.invalid", "5433", "reader", "glimpse"],
        "replica_2": ["replica-2.invalid", "", "reader", "glimpse"],
    }
    refused = subprocess.run(
        [sys.executable, "-c", shown], env=environment | {"DATABASE_REPLICA_URLS": "mysql://replica/glimpse"}, cwd=ROOT,
        capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode != 0 and "DATABASE_REPLICA_URLS must hold postgresql:// URLs, not mysql://" in refused.stderr
