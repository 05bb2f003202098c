"""Images per second: the raw model forward pass vs the whole embedding pipeline, side by side.

    python bench/embed_throughput.py catalog/fixtures/openclipart-demo [--repeat 3] [--batch 32]

"forward" runs the CNN on already-preprocessed tensors; "forward + bridge + text" adds
the class-name mix and the description encoder; "pipeline" is what a worker does per
job: read the stored file, decode, pad and resize, encode both towers, bulk-write the
vectors and statuses. Medians over --repeat runs on the same images in one process.
"""
import argparse
import time
from pathlib import Path

from common import import_folder, median, table, throwaway_database


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--manifest", default="data.jsonl")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--limit", type=int, default=256, help="images to use")
    options = parser.parse_args()

    with throwaway_database():
        import torch

        from catalog.imaging import decode
        from catalog.models import Image
        from embeddings import encoders
        from embeddings.selectors import version_active
        from embeddings.services import images_embed

        ids = import_folder(options.folder, options.manifest, options.limit)
        version = version_active()
        image_encoder, text_encoder = encoders.image_encoder(), encoders.text_encoder()
        encoders.class_embeddings()
        images = list(Image.objects.filter(id__in=ids).order_by("id"))
        tensors = []
        for image in images:
            with image.file.open("rb") as handle:
                tensors.append(image_encoder.preprocess(decode(handle.read(), max_pixels=10**9, max_aspect_ratio=10**9).rgb))
        batches = [torch.stack(tensors[start : start + options.batch]) for start in range(0, len(tensors), options.batch)]
        texts = [image.text for image in images]

        def forward():
            for batch in batches:
                image_encoder.encode(batch)

        def forward_bridge_text():
            for start, batch in zip(range(0, len(images), options.batch), batches):
                outputs = image_encoder.encode(batch)
                encoders.bridge_vectors(outputs.probabilities, encoders.class_embeddings())
                text_encoder.encode([text for text in texts[start : start + options.batch] if text])

        def pipeline():
            for start in range(0, len(ids), options.batch):
                images_embed(image_ids=ids[start : start + options.batch], version=version)

        forward()  # warm-up: first calls pay for allocation and kernel selection
        rows = []
        timings = {}
        for name, run in [("forward (CNN only)", forward), ("forward + bridge + text", forward_bridge_text), ("pipeline (read, decode, resize, encode, write)", pipeline)]:
            seconds = []
            for _ in range(options.repeat):
                started = time.perf_counter()
                run()
                seconds.append(time.perf_counter() - started)
            timings[name] = median(seconds)
        base = timings["forward (CNN only)"]
        for name, seconds in timings.items():
            rows.append([name, f"{len(ids) / seconds:.1f}", f"{seconds * 1000 / len(ids):.1f}", f"{seconds / base:.2f}×"])
        device = encoders.device()
        print(f"{len(ids)} images from {options.folder}, batch {options.batch}, device {device}, torch threads {torch.get_num_threads()}, median of {options.repeat}")
        print(table(["stage", "images/s", "ms/image", "time vs forward"], rows))


if __name__ == "__main__":
    main()
