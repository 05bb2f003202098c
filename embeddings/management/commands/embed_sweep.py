from datetime import timedelta

from django.core.management.base import BaseCommand

from embeddings.borrowing import neighbours_fill
from embeddings.selectors import versions_written
from embeddings.services import embedding_sweep


class Command(BaseCommand):
    help = (
        "Queue images still pending embedding that no queued job covers, and lend words to images "
        "without text that have none yet (run it from cron)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--grace-minutes", type=float, default=10, help="leave images younger than this alone")

    def handle(self, *args, grace_minutes: float, **options):
        count = embedding_sweep(grace=timedelta(minutes=grace_minutes))
        self.stdout.write(f"queued {count} pending images")
        borrowed = sum(neighbours_fill(version=version) for version in versions_written())
        self.stdout.write(f"gave borrowed words to {borrowed} images without text")
