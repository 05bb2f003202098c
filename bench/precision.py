"""What GLIMPSE_INFERENCE_PRECISION=bf16 buys and costs on this CPU: OpenVINO's forward passes
in f32 and in bf16, side by side, and how far bf16's vectors move from torch's f32 ones.

    python bench/precision.py catalog/fixtures/openclipart-demo [--repeat 5] [--limit 256]

Each repeat times f32 then bf16 on the same preprocessed batches (images, batch 32; the
folder's titles as texts, batch 64; and each title alone as a query); the ratio is taken
per repeat before the median, so a change in the machine's load between rows does not
enter it. On a CPU without bf16 instructions (avx512_bf16 or AMX) the bf16 rows say so.
What bf16 does to retrieval is measured by `manage.py evaluate_retrieval` run once with
each setting (docs/measurements.md).
"""
import argparse
import os
import time
from pathlib import Path

import numpy as np
from common import manifest_rows, median, percentile, table


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--manifest", default="data.jsonl")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--limit", type=int, default=256, help="images and titles to use")
    options = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from PIL import Image as PILImage

    from embeddings import encoders

    records = manifest_rows(options.folder / options.manifest, options.limit)
    titles = [record.get("title") or record.get("caption") or "" for record in records]
    reference_image, reference_text = encoders.image_encoder_on("torch"), encoders.text_encoder_on("torch")
    pixels = np.stack([reference_image.preprocess(PILImage.open(options.folder / record["file"])) for record in records])
    expected_features, expected_texts = reference_image.encode(pixels).features, reference_text.encode(titles)

    towers = {}
    for precision in ("f32", "bf16"):
        settings.GLIMPSE_INFERENCE_PRECISION = precision
        try:
            towers[precision] = (encoders.image_encoder_on("openvino"), encoders.text_encoder_on("openvino"))
        except ImproperlyConfigured as error:
            print(f"{precision}: {error}")
    samples = {precision: {"images": [], "texts": [], "query": []} for precision in towers}
    for _ in range(options.repeat + 1):  # the first round warms up and is dropped
        for precision, (image_tower, text_tower) in towers.items():
            started = time.perf_counter()
            for start in range(0, len(pixels), 32):
                image_tower.encode(pixels[start : start + 32])
            samples[precision]["images"].append(len(pixels) / (time.perf_counter() - started))
            started = time.perf_counter()
            text_tower.encode(titles)
            samples[precision]["texts"].append(len(titles) / (time.perf_counter() - started))
            latencies = []
            for title in titles:
                started = time.perf_counter()
                text_tower.encode([title])
                latencies.append((time.perf_counter() - started) * 1000)
            samples[precision]["query"].append(median(latencies))
    rows = []
    for precision, (image_tower, text_tower) in towers.items():
        measured = {name: values[1:] for name, values in samples[precision].items()}
        feature_change = np.abs(image_tower.encode(pixels).features - expected_features).max()
        text_change = np.abs(text_tower.encode(titles) - expected_texts).max()
        speed_up = ""
        if precision != "f32" and "f32" in towers:
            base = {name: values[1:] for name, values in samples["f32"].items()}
            speed_up = f"{median([a / b for a, b in zip(measured['images'], base['images'])]):.2f} × / {median([a / b for a, b in zip(measured['texts'], base['texts'])]):.2f} ×"
        rows.append([
            precision, f"{median(measured['images']):.1f}", f"{median(measured['texts']):.1f}",
            f"{median(measured['query']):.2f} (p95 {percentile(measured['query'], 95):.2f})", speed_up,
            f"{feature_change:.1e}", f"{text_change:.1e}",
        ])
    print(f"{len(pixels)} images and titles from {options.folder}, OpenVINO, {os.cpu_count()} CPUs, median of {options.repeat}")
    print(table(
        ["precision", "images/s", "texts/s", "query ms", "images / texts vs f32", "max |Δ| features vs torch f32", "max |Δ| text vectors"],
        rows,
    ))


if __name__ == "__main__":
    main()
