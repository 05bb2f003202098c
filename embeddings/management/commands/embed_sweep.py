from datetime import timedelta

from django.core.management.base import BaseCommand

from embeddings.jobs import sweep


class Command(BaseCommand):
    help = (
        "Queue images still pending embedding that no queued job covers, lend words to images without text "
        "that have none yet, and queue embedded pictures whose text waits to be read (run it from cron; the "
        "scheduler runs the same sweep)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--grace-minutes", type=float, default=10, help="leave images younger than this alone")

    def handle(self, *args, grace_minutes: float, **options):
        done = sweep(grace=timedelta(minutes=grace_minutes), borrow_all=True)
        self.stdout.write(f"queued {done['queued']} pending images")
        self.stdout.write(f"gave borrowed words to {done['borrowed']} images without text")
        self.stdout.write(f"queued {done['reading']} pictures for reading")
