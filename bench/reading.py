"""What reading the text in pictures costs the pipeline: images per second of a worker that
embeds only, against one that also reads every picture (GLIMPSE_READING), on one folder.

    python bench/reading.py catalog/fixtures/openclipart-demo [--limit 128] [--repeat 3]

Each repeat embeds the images (images_embed, in batches, as the embeddings queue's jobs do),
then reads them (pictures_read, as the reading queue's jobs do), on the same images in one
process; the ratio is taken per repeat before the median, so a change in the machine's load
between rows does not enter it. A worker serves both queues one job at a time, so its
throughput with reading is images / (embedding + reading seconds).
"""
import argparse
import os
import time
from pathlib import Path

from common import import_folder, median, table, throwaway_database


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--manifest", default="data.jsonl")
    parser.add_argument("--limit", type=int, default=128, help="images to use")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    options = parser.parse_args()

    with throwaway_database():
        from catalog.models import Image
        from embeddings.models import ImageEmbedding
        from embeddings.picture_text import pictures_read
        from embeddings.reading import reader
        from embeddings.selectors import version_active
        from embeddings.services import images_embed

        ids = import_folder(options.folder, options.manifest, options.limit)
        version = version_active()
        batches = [ids[start : start + options.batch] for start in range(0, len(ids), options.batch)]

        def embedding() -> float:
            ImageEmbedding.objects.filter(image_id__in=ids).delete()
            started = time.perf_counter()
            for batch in batches:
                images_embed(image_ids=batch, version=version)
            return time.perf_counter() - started

        def reading() -> float:
            Image.objects.filter(id__in=ids).update(picture_text_state=Image.PictureTextState.PENDING)
            started = time.perf_counter()
            for batch in batches:
                pictures_read(image_ids=batch)
            return time.perf_counter() - started

        reader()
        embedding(), reading()  # warm-up: the first calls load the models and pick kernels
        embed_seconds, read_seconds = [], []
        for _ in range(options.repeat):
            embed_seconds.append(embedding())
            read_seconds.append(reading())
        with_words = Image.objects.filter(id__in=ids).exclude(picture_text="").count()
        failed = Image.objects.filter(id__in=ids, picture_text_state=Image.PictureTextState.FAILED).count()
        embed_rate = median([len(ids) / seconds for seconds in embed_seconds])
        both_rate = median([len(ids) / (embed + read) for embed, read in zip(embed_seconds, read_seconds)])
        ratio = median([embed / (embed + read) for embed, read in zip(embed_seconds, read_seconds)])
        print(
            f"{len(ids)} images from {options.folder}, batch {options.batch}, {os.cpu_count()} CPUs, median of {options.repeat}; "
            f"{with_words} have words read, {failed} failed; load average {os.getloadavg()[0]:.2f} at the end"
        )
        print(table(
            ["worker", "images/s", "× embedding only"],
            [
                ["embedding only (GLIMPSE_READING=0)", f"{embed_rate:.1f}", "1.00"],
                ["reading alone", f"{median([len(ids) / seconds for seconds in read_seconds]):.1f}", ""],
                ["embedding, then reading (GLIMPSE_READING=1)", f"{both_rate:.1f}", f"{ratio:.2f}"],
            ],
        ))


if __name__ == "__main__":
    main()
