"""An rq worker that outlives PostgreSQL and Redis outages.

Models load once per process (rq's SimpleWorker: no fork per job, so CUDA stays usable).
A job that loses the database goes back to the queue instead of being recorded as
failed, and the worker takes no further job until the database answers; when Redis goes
away the worker waits for it instead of exiting. Either way a dead embedded server is
started again by the worker if no other process did so first, and after Redis comes back
the worker re-queues the pending images no queued job covers. Every job here can run
twice without harm (vectors are upserts), which is what makes putting a job back safe.
"""
from datetime import timedelta

from django.db import close_old_connections
from rq import Retry, SimpleWorker
from rq.exceptions import InvalidJobOperation
from rq.job import Job, JobStatus

from config import supervision
from config.embedded import say

from .services import embedding_sweep

# Outages one job may meet before rq records it as failed after all.
OUTAGE_RETRIES = 10


class OutageRetriedJob(Job):
    def perform(self):
        try:
            return super().perform()
        except supervision.DATABASE_ERRORS as error:
            if not supervision.database_unreachable(error):
                raise
            say(f"job {self.id} lost the database ({supervision.first_line(error)}); it goes back to the queue")
            return Retry(max=OUTAGE_RETRIES)


class OutageProofWorker(SimpleWorker):
    job_class = OutageRetriedJob
    redis_was_lost = False

    def dequeue_job_and_maintain_ttl(self, timeout, max_idle_time=None):
        while True:
            # A job taken while the database is down would only go back to the queue.
            if supervision.redis_wait(client=self.connection):
                self.redis_was_lost = True
            supervision.database_wait()
            try:
                if self.redis_was_lost:
                    self.requeue_what_redis_lost()
                result = super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)
            except supervision.REDIS_ERRORS:
                self.redis_was_lost = True  # rq retries only part of its dequeue
                continue
            if result is None and self.redis_was_lost:
                continue  # lost during this very dequeue: in burst mode the worker would stop now
            return result

    def check_for_suspension(self, burst):
        try:
            super().check_for_suspension(burst)
        except supervision.REDIS_ERRORS:
            self.redis_was_lost = True  # the dequeue that comes next waits for Redis

    def heartbeat(self, timeout=None, pipeline=None):
        try:
            super().heartbeat(timeout, pipeline)
        except supervision.REDIS_ERRORS:
            # rq meets a lost Redis first in a heartbeat, and on its own would only retry,
            # with growing pauses, until someone else starts the embedded server again.
            self.redis_was_lost = True
            if not supervision.redis_revive():
                raise
            super().heartbeat(timeout, pipeline)

    def teardown(self):
        # Stopped while Redis is away, the worker cannot record its own end there; nothing
        # is lost (a worker re-queues pending images when it starts), so one line, no traceback.
        try:
            super().teardown()
        except supervision.REDIS_ERRORS as error:
            say(f"worker stopped without Redis ({supervision.first_line(error)}); the next worker start re-queues pending images")

    def requeue_what_redis_lost(self) -> None:
        """rq pops a job, then reads it: a Redis that dies in between takes the job with it.
        The database still knows which images wait for vectors."""
        self.redis_was_lost = False
        requeued = embedding_sweep(grace=timedelta(0))
        if requeued:
            say(f"re-queued {requeued} pending images that no queued job covered after Redis went away")

    def execute_job(self, job, queue):
        close_old_connections()
        try:
            super().execute_job(job, queue)
        except supervision.REDIS_ERRORS as error:
            say(f"Redis went away during job {job.id} ({supervision.first_line(error)})")
            self.redis_was_lost = True
            supervision.redis_wait(client=self.connection)
            self.requeue_unfinished(job, queue)

    def requeue_unfinished(self, job, queue) -> None:
        """Put back a job whose end Redis never recorded (it would be failed as abandoned later)."""
        try:
            recorded = job.get_status(refresh=True)
        except InvalidJobOperation:
            recorded = None  # a Redis that keeps nothing on disk lost the job; this process still has it
        if recorded not in (None, JobStatus.QUEUED, JobStatus.STARTED):
            return
        queue.started_job_registry.remove_executions(job)
        queue.enqueue_job(job, at_front=True)
        say(f"job {job.id} goes back to the queue")
