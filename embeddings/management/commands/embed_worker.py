import faulthandler
import logging
import os
import signal
import sys
from datetime import timedelta

import django_rq
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from config import supervision
from embeddings import encoders
from embeddings.exceptions import PrecisionMismatch
from embeddings.picture_text import READING_QUEUE, reading_sweep
from embeddings.selectors import version_base, versions_written
from embeddings.services import QUEUE, TRAINING_QUEUE, embedding_sweep, version_precision_check
from embeddings.worker import OutageProofWorker, abandoned_jobs_requeue


class Command(BaseCommand):
    help = (
        "Run an embedding worker. It loads the encoders once and runs every job in its own "
        "process (no fork per job, which also keeps CUDA usable on GPU workers). It waits out "
        "PostgreSQL and Redis outages, restarting the embedded servers when they die."
    )

    def add_arguments(self, parser):
        parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
        parser.add_argument("--no-sweep", action="store_true", help="do not first re-queue pending images")
        parser.add_argument(
            "--name", help="this worker's name in the queue dashboard, unique among running workers (default: a random one)"
        )
        parser.add_argument(
            "--queue", dest="queues", action="append", choices=[QUEUE, READING_QUEUE, TRAINING_QUEUE],
            help="queue to serve (repeatable); default: embeddings, then reading (the text in pictures), then training",
        )

    def handle(self, *args, burst: bool, no_sweep: bool, queues: list[str] | None, name: str | None, **options):
        # `kill -USR1 <pid>` prints where every thread of a worker is, without stopping it.
        faulthandler.register(signal.SIGUSR1, all_threads=True)
        # rq takes from the first queue that has a job: vectors before text, text before training.
        served = [django_rq.get_queue(queue) for queue in queues or [QUEUE, READING_QUEUE, TRAINING_QUEUE]]
        supervision.redis_wait(client=served[0].connection)
        # Before the name check: a killed worker's name is free again once it is known dead.
        abandoned_jobs_requeue(queues=served)
        if name and any(worker.name == name for worker in OutageProofWorker.all(connection=served[0].connection)):
            raise CommandError(f"a worker named {name!r} is already running; give each machine's workers their own names")
        supervision.database_wait()
        try:
            version_precision_check(version=version_base())
        except PrecisionMismatch as error:
            raise CommandError(str(error)) from None
        encoders.image_encoder()
        encoders.text_encoder()
        encoders.class_embeddings()
        if any(version.multilingual for version in versions_written()):
            encoders.multilingual_encoder()
            encoders.class_embeddings(multilingual=True)
        if settings.GLIMPSE_READING and READING_QUEUE in [queue.name for queue in served]:
            from embeddings.reading import reader

            reader()
        if not no_sweep:
            # A worker that died mid-batch left its images pending (its job went back to the queue above).
            requeued = embedding_sweep(grace=timedelta(0))
            if requeued:
                self.stderr.write(f"re-queued {requeued} pending images that no queued job covered")
            unread = reading_sweep()
            if unread:
                self.stderr.write(f"queued {unread} pictures whose text waits to be read")
        worker = OutageProofWorker(served, connection=served[0].connection, name=name)
        worker.work(burst=burst, with_scheduler=False, logging_level="WARNING")
        # The worker has recorded its end in Redis. Leave without Python's finalisation: on a
        # busy machine, collecting the encoders' native objects at exit now and then hung
        # (a TERMed worker stuck "Garbage-collecting" for over a minute, no Python frame left).
        connections.close_all()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
