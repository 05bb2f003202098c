from datetime import timedelta

from django.core.management.base import BaseCommand

from embeddings.services import embedding_sweep


class Command(BaseCommand):
    help = "Queue images still pending embedding that no queued job covers (run it from cron)."

    def add_arguments(self, parser):
        parser.add_argument("--grace-minutes", type=float, default=10, help="leave images younger than this alone")

    def handle(self, *args, grace_minutes: float, **options):
        count = embedding_sweep(grace=timedelta(minutes=grace_minutes))
        self.stdout.write(f"queued {count} pending images")
