import subprocess
import sys
import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.models import Image
from embeddings.services import embedding_sweep


class Command(BaseCommand):
    help = "Queue every pending image, run a worker process until the queue is empty, and show progress."

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="re-embed every image, not only pending ones")

    def handle(self, *args, verbosity: int, **options):
        if options["all"]:
            Image.objects.update(embedding_status=Image.EmbeddingStatus.PENDING, embedding_error="")
        embedding_sweep(grace=timedelta(0))
        statuses = Image.objects.values_list("embedding_status", flat=True)
        total = Image.objects.count()
        if not Image.objects.filter(embedding_status=Image.EmbeddingStatus.PENDING).exists():
            self.stdout.write(f"all {total} images are embedded or failed; nothing to do")
            return
        # Vectors only: the text in the pictures is read afterwards (manage.py read_pictures, or any worker).
        worker = subprocess.Popen([sys.executable, "manage.py", "embed_worker", "--burst", "--no-sweep", "--queue", "embeddings"])
        with tqdm(total=total, unit="image", desc="embedding", disable=verbosity == 0) as progress:
            while True:
                done = statuses.exclude(embedding_status=Image.EmbeddingStatus.PENDING).count()
                progress.update(done - progress.n)
                if worker.poll() is not None:
                    break
                time.sleep(0.5)
        failed = Image.objects.filter(embedding_status=Image.EmbeddingStatus.FAILED).count()
        pending = Image.objects.filter(embedding_status=Image.EmbeddingStatus.PENDING).count()
        self.stdout.write(f"{total - failed - pending} ready, {failed} failed, {pending} pending, of {total} images")
        if failed:
            self.stdout.write("failed images and their reasons: admin → Images, filter by embedding status")
        if worker.returncode != 0:
            raise CommandError(f"the worker exited with status {worker.returncode}")
