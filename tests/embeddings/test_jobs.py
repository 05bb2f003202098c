"""Embedding through the real queue and a real worker, with the real encoders."""
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.db import connection
from rq import SimpleWorker

from catalog.models import Image
from catalog.services import ImageInput, images_create
from embeddings.models import ImageEmbedding
from embeddings.selectors import queued_image_ids
from embeddings.services import embedding_sweep, embeddings_enqueue
from tests.images import DEMO, distinct_pngs

pytestmark = pytest.mark.slow


def demo_items(count: int) -> list[ImageInput]:
    files = sorted(Path(DEMO, "images").glob("*.png"))[:count]
    return [ImageInput(content=path.read_bytes(), title=path.stem.replace("_", " ")) for path in files]


def drain(queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


@pytest.mark.django_db
def test_ingest_queues_a_job_that_a_worker_turns_into_vectors(queue, version, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        report = images_create(items=demo_items(3) + [ImageInput(content=distinct_pngs(1)[0])])
    drain(queue)
    rows = ImageEmbedding.objects.filter(version=version).order_by("image_id")
    assert [row.image_id for row in rows] == [image.id for image in report.created]
    assert set(Image.objects.values_list("embedding_status", flat=True)) == {"ready"}
    for row in rows:
        assert np.isclose(np.linalg.norm(row.image_vector), 1, atol=1e-3)  # stored in half precision
    # The untitled image has no text, so no description vector.
    assert [row.text_vector is None for row in rows] == [False, False, False, True]
    # ... so it borrows the description vectors of the drawings nearest to it, and only it.
    assert [row.neighbour_vector is None for row in rows] == [True, True, True, False]
    assert np.isclose(np.linalg.norm(rows[3].neighbour_vector), 1, atol=1e-3)


@pytest.mark.django_db
def test_a_bad_stored_file_fails_alone_with_its_reason(queue, version):
    report = images_create(items=demo_items(3))
    broken = report.created[1]
    Path(settings.MEDIA_ROOT, broken.file.name).write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    embeddings_enqueue(image_ids=[image.id for image in report.created])
    drain(queue)
    statuses = dict(Image.objects.values_list("id", "embedding_status"))
    assert statuses == {report.created[0].id: "ready", broken.id: "failed", report.created[2].id: "ready"}
    broken.refresh_from_db()
    assert broken.embedding_error.startswith("cannot decode the stored file:")
    assert ImageEmbedding.objects.count() == 2
    assert queue.failed_job_registry.count == 0


@pytest.mark.django_db
def test_re_embedding_overwrites_instead_of_duplicating(queue, version):
    report = images_create(items=demo_items(2))
    ids = [image.id for image in report.created]
    for _ in range(2):
        embeddings_enqueue(image_ids=ids)
        drain(queue)
    assert ImageEmbedding.objects.filter(version=version).count() == 2


@pytest.mark.django_db
def test_the_sweeper_queues_what_no_job_covers(queue):
    report = images_create(items=[ImageInput(content=content) for content in distinct_pngs(5)])
    ids = [image.id for image in report.created]
    embeddings_enqueue(image_ids=ids[:2])
    assert embedding_sweep(grace=timedelta(0)) == 3
    assert sorted(id for job in queue.get_jobs() for id in job.args[0]) == ids
    assert embedding_sweep(grace=timedelta(0)) == 0


def worker_process(database_name: str) -> subprocess.Popen:
    environment = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings",
        GLIMPSE_TEST_DATABASE=database_name,
        GLIMPSE_TEST_MEDIA=str(settings.MEDIA_ROOT),
    )
    return subprocess.Popen(
        [sys.executable, "manage.py", "embed_worker", "--burst"],
        cwd=settings.BASE_DIR,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(queue):
    """kill -9 during the first batches; a new worker re-queues what was left and finishes."""
    report = images_create(items=demo_items(40))
    ids = [image.id for image in report.created]
    database_name = connection.settings_dict["NAME"]

    first = worker_process(database_name)
    deadline = time.monotonic() + 120
    while ImageEmbedding.objects.count() < 4:
        assert first.poll() is None, first.stderr.read().decode()
        assert time.monotonic() < deadline, "the first worker embedded nothing in 120 s"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_before = ImageEmbedding.objects.count()
    assert done_before < len(ids), "the worker finished before it could be killed; use more images"
    # Usually the kill lands inside a job: its images stay pending and no queued job covers them.
    stranded = set(Image.objects.filter(embedding_status="pending").values_list("id", flat=True)) - queued_image_ids()

    second = worker_process(database_name)
    _, errors = second.communicate(timeout=300)
    assert second.returncode == 0, errors.decode()
    if stranded:
        # Either the killed worker's job goes back to the queue at the next start (rq had it in
        # its started registry), or the start-up sweep re-queues the images no job covers.
        said = errors.decode()
        assert "died while running it" in said or f"re-queued {len(stranded)} pending images" in said, said
    assert sorted(ImageEmbedding.objects.values_list("image_id", flat=True)) == ids
    assert set(Image.objects.values_list("embedding_status", flat=True)) == {"ready"}


def test_a_worker_stopped_while_redis_is_away_says_so_in_one_line(queue, tmp_path, capsys):
    import redis

    from embeddings.worker import OutageProofWorker

    worker = OutageProofWorker([queue], connection=queue.connection, name="stopping")
    worker.connection = redis.Redis(unix_socket_path=str(tmp_path / "no-redis.sock"))  # Redis went away
    worker.teardown()
    assert capsys.readouterr().err.strip().endswith("the next worker start re-queues pending images")
