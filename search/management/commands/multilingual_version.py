from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from embeddings.exceptions import VersionStateError
from search.multilingual import multilingual_release, multilingual_version_create


class Command(BaseCommand):
    help = (
        "Give a catalog embedded before the multilingual text tower existed that tower, as a new version: "
        "a copy of the active version with the tower added. A training-queue worker gives every picture the "
        "tower's vectors (the CNN runs again), fills the version while the active one serves, compares the "
        "two on the judged queries and switches searches to it unless it ranks them worse."
    )

    def add_arguments(self, parser):
        parser.add_argument("--here", action="store_true", help="release it in this process instead of queueing the job (progress in the log)")

    def handle(self, *args, here: bool, **options):
        try:
            version = multilingual_version_create(queue=not here)
        except (ImproperlyConfigured, VersionStateError) as error:
            raise CommandError(str(error)) from None
        if not here:
            self.stdout.write(f"v{version.number}: {version.notes}; its release is queued, searches switch to it when a worker is done")
            return
        version = multilingual_release(version=version)
        self.stdout.write(f"v{version.number} is {version.state}: {version.notes}")
