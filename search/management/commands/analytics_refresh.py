import time

from django.core.management.base import BaseCommand

from search.analytics import MATERIALIZED, analytics_refresh


class Command(BaseCommand):
    help = "Recompute the materialised analytics views (near duplicates, neighbours of bare images) for the active version."

    def handle(self, *args, **options):
        started = time.perf_counter()
        analytics_refresh()
        self.stdout.write(f"refreshed {', '.join(MATERIALIZED)} in {time.perf_counter() - started:.1f} s")
