import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.models import Image
from embeddings.picture_text import READING_QUEUE, picture_text_reread, reading_sweep

State = Image.PictureTextState


class Command(BaseCommand):
    help = (
        "Read the text in every embedded picture whose text is not read yet (a catalog from before "
        "reading, or after GLIMPSE_READING was off), running a worker on the reading queue until it "
        "is empty, with progress. Curators' corrections and dismissals stay."
    )

    def add_arguments(self, parser):
        parser.add_argument("--all", action="store_true", help="read every picture again, curators' corrections and dismissals dropped")

    def handle(self, *args, verbosity: int, **options):
        if not settings.GLIMPSE_READING:
            raise CommandError("GLIMPSE_READING is 0: set it to 1 to read the text in pictures")
        embedded = Image.objects.filter(embedding_status=Image.EmbeddingStatus.READY)
        if options["all"]:
            picture_text_reread(image_ids=list(embedded.values_list("id", flat=True)))
        reading_sweep()
        total = embedded.count()
        if not embedded.filter(picture_text_state=State.PENDING).exists():
            self.stdout.write(f"the text of all {total} embedded pictures is read; nothing to do")
            return
        worker = subprocess.Popen([sys.executable, "manage.py", "embed_worker", "--burst", "--no-sweep", "--queue", READING_QUEUE])
        with tqdm(total=total, unit="picture", desc="reading", disable=verbosity == 0) as progress:
            while True:
                progress.update(embedded.exclude(picture_text_state=State.PENDING).count() - progress.n)
                if worker.poll() is not None:
                    break
                time.sleep(0.5)
        counts = {state: embedded.filter(picture_text_state=state).count() for state in State.values}
        with_text = embedded.exclude(picture_text="").count()
        self.stdout.write(
            f"{with_text} of {total} pictures have words; {counts[State.FAILED]} could not be read, {counts[State.PENDING]} wait"
        )
        if counts[State.FAILED]:
            self.stdout.write("pictures whose text could not be read, and why: admin → Images, filter by picture text state")
        if worker.returncode != 0:
            raise CommandError(f"the worker exited with status {worker.returncode}")
