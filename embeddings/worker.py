"""An rq worker that outlives PostgreSQL and Redis outages.

Models load once per process (rq's SimpleWorker: no fork per job, so CUDA stays usable).
A job that loses the database goes back to the queue instead of being recorded as
failed, and the worker takes no further job until the database answers; when Redis goes
away the worker waits for it instead of exiting. Either way a dead embedded server is
started again by the worker if no other process did so first, and after Redis comes back
the worker re-queues the pending images no queued job covers. Every job here can run
twice without harm (vectors are upserts), which is what makes putting a job back safe.
"""
import os
import socket
from datetime import timedelta

from django.db import close_old_connections
from rq import Queue, Retry, SimpleWorker, Worker
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.executions import Execution
from rq.job import Job, JobStatus

from config import supervision
from config.embedded import pid_is_running, say

from .services import embedding_sweep

# Outages one job may meet before rq records it as failed after all.
OUTAGE_RETRIES = 10
# Deaths of its worker one job may see before it is failed rather than run again: past a
# few, the job is likely what kills the worker (memory, a crashing library).
ABANDONED_RETRIES = 3


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
    # How long one wait for a job blocks in Redis (rq: its worker TTL - 15 s, 405 s). A TERM
    # that the kernel hands to another thread of the process (the encoders' thread pools,
    # rq's job timer) does not interrupt that wait, and Python runs its handler only when
    # the main thread wakes: a stopped worker took minutes to go. It now goes within this.
    dequeue_timeout = 5

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


def worker_is_gone(worker: Worker) -> bool:
    """True for a worker on this machine whose process no longer runs (kill -9, a crash).

    Its key outlives it in Redis for minutes. A pid equal to ours is a dead predecessor
    too (a restarted container hands out the same pids), since this process has not
    registered yet. A worker on another machine counts as alive while its key lasts. (One
    host name is one pid namespace: containers get host names of their own.)"""
    if worker.hostname != socket.gethostname() or worker.pid is None:
        return False
    return worker.pid == os.getpid() or not pid_is_running(worker.pid)


def abandoned_jobs_requeue(*, queues: list[Queue]) -> list[str]:
    """Put back at the front of their queue the jobs whose worker died while running them;
    returns their ids. Called as a worker starts, before it takes a job.

    rq leaves such a job in the started registry until its timeout passes and then records
    it as failed (AbandonedJobError), an hour later, though a sweep may long since have
    embedded its images. Every job here can run twice, so it runs again instead; one whose
    worker died ABANDONED_RETRIES times is failed with that reason. Removing the entry from
    the registry is the claim: of two workers starting together, one puts a job back."""
    connection = queues[0].connection
    workers = Worker.all(connection=connection)
    gone = [worker for worker in workers if worker_is_gone(worker)]
    alive = {worker.name for worker in workers} - {worker.name for worker in gone}
    running = {worker.get_current_job_id() for worker in workers if worker.name in alive}
    for worker in gone:
        worker.register_death()
    requeued = []
    for queue in queues:
        registry = queue.started_job_registry
        for job_id, execution_id in registry.get_job_and_execution_ids(cleanup=False):
            try:
                worker_name = Execution.fetch(id=execution_id, job_id=job_id, connection=connection).worker_name
            except ValueError:
                worker_name = ""  # its record expired with its worker's last heartbeat
            if worker_name in alive or (not worker_name and job_id in running):
                continue
            if not connection.zrem(registry.key, f"{job_id}:{execution_id}"):
                continue
            try:
                job = queue.fetch_job(job_id)
            except NoSuchJobError:
                job = None
            # A worker killed between taking the job and marking it started left it "queued".
            status = job.get_status(refresh=False) if job else None
            if status not in (JobStatus.STARTED, JobStatus.QUEUED) or job.id in queue.get_job_ids():
                continue
            deaths = job.meta.get("worker_deaths", 0) + 1
            job.meta["worker_deaths"] = deaths
            job.save_meta()
            if deaths > ABANDONED_RETRIES:
                reason = f"its worker died {deaths} times while running it"
                with connection.pipeline() as pipeline:
                    # As rq's own registry cleanup fails a job: status, failed registry and a result.
                    job.set_status(JobStatus.FAILED, pipeline=pipeline)
                    job._handle_failure(reason, pipeline, worker_name=worker_name)
                    pipeline.execute()
                say(f"job {job.id} failed: {reason}")
                continue
            queue.enqueue_job(job, at_front=True)
            requeued.append(job.id)
            say(f"job {job.id} goes back to the queue: worker {worker_name or '(unknown)'} died while running it")
    return requeued
