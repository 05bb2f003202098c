"""A worker killed mid-job left the job in rq's started registry, and rq recorded it as
failed (AbandonedJobError) when its timeout passed, an hour later, though a sweep had
embedded its images long before. The next worker to start puts such a job back."""
import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings
from rq import SimpleWorker, Worker
from rq.job import JobStatus

from embeddings.worker import ABANDONED_RETRIES, abandoned_jobs_requeue
from tests.config.conftest import wait_for
from tests.timeouts import timeout  # noqa: F401  (the fixture)

pytestmark = pytest.mark.usefixtures("timeout")

AN_HOUR_LATER = 3600 + 600


def rq_worker(name: str) -> subprocess.Popen:
    """A plain rq SimpleWorker in its own process on the test queue (its waits for a job last
    5 s, worker_ttl - 15, so that a TERM stops it within that: embeddings/worker.py)."""
    script = (
        "import sys; from redis import Redis; from rq import Queue, SimpleWorker; "
        "connection = Redis.from_url(sys.argv[1]); "
        "SimpleWorker([Queue('embeddings', connection=connection)], connection=connection, name=sys.argv[2], worker_ttl=20).work()"
    )
    return subprocess.Popen(
        [sys.executable, "-c", script, settings.RQ_QUEUES["embeddings"]["URL"], name],
        cwd=settings.BASE_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def started(queue, job) -> bool:
    return job.id in queue.started_job_registry.get_job_ids(cleanup=False)


def test_a_job_whose_worker_was_killed_runs_again_instead_of_failing_an_hour_later(queue):
    job = queue.enqueue(time.sleep, 2, job_timeout=3600)
    worker = rq_worker("doomed")
    wait_for(lambda: started(queue, job), seconds=60, what="the worker took the job")
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()

    assert abandoned_jobs_requeue(queues=[queue]) == [job.id]
    assert queue.job_ids == [job.id] and not started(queue, job)
    assert job.get_status(refresh=True) == JobStatus.QUEUED
    assert "doomed" not in [worker.name for worker in Worker.all(connection=queue.connection)]
    # What rq's own cleanup does an hour later no longer finds the job.
    queue.started_job_registry.cleanup(timestamp=time.time() + AN_HOUR_LATER)
    assert queue.failed_job_registry.count == 0

    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert abandoned_jobs_requeue(queues=[queue]) == []  # nothing is put back twice


def test_a_running_workers_job_is_left_alone(queue):
    job = queue.enqueue(time.sleep, 3, job_timeout=3600)
    worker = rq_worker("busy")
    try:
        wait_for(lambda: started(queue, job), seconds=60, what="the worker took the job")
        assert abandoned_jobs_requeue(queues=[queue]) == []
        assert started(queue, job) and queue.job_ids == []
        wait_for(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, seconds=60, what="the job finished")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)


def test_a_job_that_keeps_killing_its_worker_is_failed_with_that_reason(queue):
    job = queue.enqueue(time.sleep, 30, job_timeout=3600, meta={"worker_deaths": ABANDONED_RETRIES})
    worker = rq_worker("killed-again")
    wait_for(lambda: started(queue, job), seconds=60, what="the worker took the job")
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()

    assert abandoned_jobs_requeue(queues=[queue]) == []
    job.refresh()
    assert job.get_status() == JobStatus.FAILED
    assert queue.failed_job_registry.get_job_ids() == [job.id]
    assert job.latest_result().exc_string == f"its worker died {ABANDONED_RETRIES + 1} times while running it"
    assert queue.job_ids == [] and not started(queue, job)
