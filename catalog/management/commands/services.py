from django.conf import settings
from django.core.management.base import BaseCommand

from config import services


class Command(BaseCommand):
    help = "Show or stop the embedded PostgreSQL and Redis in the data folder."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "stop"])

    def handle(self, *args, action: str, **options):
        database = settings.DATABASES["default"]
        if action == "status":
            self.stdout.write(f"data folder: {settings.DATA_DIR}")
            self.stdout.write(f"database:    {database['NAME']} on {database['HOST'] or 'localhost'}")
            self.stdout.write(f"redis:       {settings.REDIS_URL}")
            return
        from django.db import connections

        connections.close_all()
        stopped = []
        if services.stop_embedded_redis(settings.DATA_DIR):
            stopped.append("Redis")
        if services.stop_embedded_database(settings.DATA_DIR):
            stopped.append("PostgreSQL")
        self.stdout.write(f"stopped {' and '.join(stopped)}" if stopped else "no embedded service was running")
