from django.conf import settings
from django.core.management.base import BaseCommand

from config import embedded
from config.service_status import postgres_status, redis_status


class Command(BaseCommand):
    help = "Show or stop the embedded PostgreSQL and Redis of the data folder; starts neither (see manage.py)."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "stop"])

    def handle(self, *args, action: str, **options):
        database, redis = postgres_status(settings.DATA_DIR), redis_status(settings.DATA_DIR)
        if action == "status":
            self.stdout.write(f"data folder: {settings.DATA_DIR}")
            self.stdout.write(f"PostgreSQL:  {self.external('DATABASE_URL') if not settings.GLIMPSE_EMBEDDED_DATABASE else database.describe()}")
            self.stdout.write(f"Redis:       {self.external('REDIS_URL') if not settings.GLIMPSE_EMBEDDED_REDIS else redis.describe()}")
            return
        from django.db import connections

        connections.close_all()
        stopped = []
        if settings.GLIMPSE_EMBEDDED_REDIS and redis.running and embedded.stop_embedded_redis(settings.DATA_DIR):
            stopped.append(f"Redis (pid {redis.pid})")
        if settings.GLIMPSE_EMBEDDED_DATABASE and database.running and embedded.stop_embedded_database(settings.DATA_DIR):
            stopped.append(f"PostgreSQL (pid {database.pid})")
        self.stdout.write(f"stopped {' and '.join(stopped)}" if stopped else "no embedded server was running; nothing stopped")

    def external(self, variable: str) -> str:
        return f"external ({variable} is set; this project neither starts nor stops it)"
