import logging

import django_rq
from django.core.management.base import BaseCommand
from django_rq.cron import DjangoCronScheduler
from redis import RedisError
from rq.exceptions import StopRequested

from config.supervision import first_line, redis_wait
from embeddings.services import QUEUE


class Command(BaseCommand):
    help = (
        "Run the periodic jobs of a cron config (rq cron). Unlike `rqcron`, a Redis outage "
        "does not end it: it waits for Redis (restarting the embedded one) and carries on."
    )

    def add_arguments(self, parser):
        parser.add_argument("config_path", nargs="?", default="config/cron.py")
        parser.add_argument(
            "-l", "--logging-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
        )

    def handle(self, *args, config_path: str, logging_level: str, **options):
        connection = django_rq.get_queue(QUEUE).connection
        try:
            while True:
                redis_wait(client=connection)
                scheduler = DjangoCronScheduler(logging_level=getattr(logging, logging_level))
                scheduler.load_config_from_file(config_path)
                try:
                    scheduler.start()
                    return  # stopped on request: rq handles Ctrl-C and SIGTERM inside start()
                except RedisError as error:
                    self.stderr.write(f"scheduler: Redis went away ({first_line(error)}); waiting for it")
        except (KeyboardInterrupt, StopRequested):
            return  # a stop request that came while waiting for Redis
