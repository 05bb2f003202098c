"""kill -9 of each embedded server while images are imported and while they are embedded.

Each import or worker runs as its own process, as in production; nobody restarts anything
by hand, yet every image ends up imported once and embedded once, and no job fails.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from catalog.models import Image
from catalog.services import ImageInput, images_create
from embeddings.models import ImageEmbedding, ModelVersion
from embeddings.selectors import queued_image_ids
from embeddings.worker import OutageProofWorker
from tests.config.conftest import kill_postgres, kill_redis, wait_for
from tests.images import DEMO

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

IMAGES = 40
IMPORTED = 48  # 12 batches: at about 35 images/s the import still runs when the kill lands


def manage(*arguments: str, **variables: str) -> subprocess.Popen:
    """A management command in its own process, on this test run's database and media,
    with `variables` added to its environment."""
    environment = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings",
        GLIMPSE_TEST_DATABASE=connection.settings_dict["NAME"],
        GLIMPSE_TEST_MEDIA=str(settings.MEDIA_ROOT),
        **variables,
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", *arguments],
        cwd=settings.BASE_DIR,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen, *, seconds: float) -> tuple[str, str]:
    """Wait for the process to succeed; returns its stdout and stderr."""
    try:
        output, errors = process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGUSR1)  # embed_worker prints its threads' stacks: where it hangs
        time.sleep(2)
        process.kill()
        output, errors = process.communicate()
        pytest.fail(f"{process.args[2]} did not finish in {seconds} s:\n{errors}")
    assert process.returncode == 0, errors
    return output, errors


def count(model) -> int:
    return model.objects.count()


def import_demo() -> subprocess.Popen:
    importing = manage("import_images", DEMO, "--manifest", "data.jsonl", "--limit", str(IMPORTED), "--batch-size", "4")
    wait_for(lambda: count(Image) >= 4, seconds=120, what="the import stored its first batch")
    return importing


def assert_still_running(process: subprocess.Popen) -> None:
    assert process.poll() is None, "it finished before the kill; give it more work"


def assert_each_image_embedded_once(ids: list[int], *, log: str = "") -> None:
    version = ModelVersion.objects.get(number=1)
    embedded = sorted(ImageEmbedding.objects.filter(version=version).values_list("image_id", flat=True))
    assert embedded == sorted(ids), f"missing {sorted(set(ids) - set(embedded))}\n{log}"
    assert ImageEmbedding.objects.count() == len(ids)
    assert set(Image.objects.values_list("embedding_status", flat=True)) == {"ready"}


def drain(queue) -> None:
    OutageProofWorker([queue], connection=queue.connection).work(burst=True)


def test_postgres_killed_during_an_import(queue, outage):
    importing = import_demo()
    pid = kill_postgres()
    assert_still_running(importing)
    output, errors = finish(importing, seconds=180)
    assert f"PostgreSQL pid {pid} is gone; restarting it" in errors
    assert "lost the database" in errors
    assert f"0 skipped, of {IMPORTED} rows" in output
    connection.close()
    ids = list(Image.objects.values_list("id", flat=True))
    assert len(ids) == IMPORTED
    assert queued_image_ids() == set(ids)
    drain(queue)
    assert_each_image_embedded_once(ids)
    assert queue.failed_job_registry.count == 0


def test_redis_killed_during_an_import(queue, outage):
    importing = import_demo()
    pid = kill_redis()
    assert_still_running(importing)
    output, errors = finish(importing, seconds=180)
    assert f"Redis pid {pid} is gone; restarting it" in errors
    assert f"{IMPORTED} imported, 0 already in the catalog, 0 skipped" in output
    ids = list(Image.objects.values_list("id", flat=True))
    assert len(ids) == IMPORTED
    # The jobs queued before the kill survived it; those after went to the restarted server.
    assert queued_image_ids() == set(ids)
    drain(queue)
    assert_each_image_embedded_once(ids)
    assert queue.failed_job_registry.count == 0


def queue_images() -> list[int]:
    files = sorted(Path(DEMO, "images").glob("*.png"))[:IMAGES]
    report = images_create(items=[ImageInput(content=path.read_bytes(), title=path.stem) for path in files])
    return [image.id for image in report.created]


def test_postgres_killed_while_a_worker_embeds(queue, outage):
    ids = queue_images()
    working = manage("embed_worker", "--burst", "--no-sweep")
    wait_for(lambda: count(ImageEmbedding) >= 4, seconds=180, what="the worker embedded 4 images")
    pid = kill_postgres()
    assert_still_running(working)
    _, errors = finish(working, seconds=300)
    assert f"PostgreSQL pid {pid} is gone; restarting it" in errors
    connection.close()
    assert_each_image_embedded_once(ids, log=errors)
    assert queue.failed_job_registry.count == 0
    assert queue.count == 0


def test_redis_killed_while_a_worker_embeds(queue, outage):
    ids = queue_images()
    working = manage("embed_worker", "--burst", "--no-sweep")
    wait_for(lambda: count(ImageEmbedding) >= 4, seconds=180, what="the worker embedded 4 images")
    pid = kill_redis()
    assert_still_running(working)
    _, errors = finish(working, seconds=300)
    assert f"Redis pid {pid} is gone; restarting it" in errors
    assert_each_image_embedded_once(ids, log=errors)
    assert queue.failed_job_registry.count == 0
    assert queue.count == 0
