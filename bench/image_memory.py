"""Peak memory of one image through ingest and model input: before and after the bounded decode.

    python bench/image_memory.py [--max-old-mb 2000]

"before" decodes at full size, converts, pads to a square and resizes (the old pipeline);
"after" is catalog.imaging.check_image + thumbnail + ImageEncoder.preprocess. Peak RSS
growth per case, measured by the kernel (VmHWM after a reset), with malloc's free pages
handed back first. A "before" that would need more than --max-old-mb is estimated, not run.
"""
import argparse
import ctypes
import io
import re
import time
from pathlib import Path

import common  # noqa: F401  (puts the project on sys.path)
from common import table

MB = 1024 * 1024


def status_kilobytes(field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE).group(1))


def peak_growth(work) -> tuple[int, float]:
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    Path("/proc/self/clear_refs").write_text("5")
    start, started = status_kilobytes("VmRSS"), time.perf_counter()
    work()
    return (status_kilobytes("VmHWM") - start) * 1024, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-old-mb", type=int, default=2000)
    options = parser.parse_args()

    import numpy as np
    import timm
    import torch
    from PIL import Image as PILImage
    from PIL import ImageOps

    from catalog.exceptions import InvalidImage
    from catalog.imaging import check_image, thumbnail_bytes
    from embeddings.encoders.image import ImageEncoder, pad_to_square

    encoder = ImageEncoder(timm.create_model("tf_efficientnet_lite0", pretrained=False), device=torch.device("cpu"))

    def saved(image, **save) -> bytes:
        buffer = io.BytesIO()
        image.save(buffer, **save)
        return buffer.getvalue()

    def drawing(size, mode="RGB") -> PILImage.Image:
        image = PILImage.new(mode, size, "white")
        image.paste("red" if mode != "1" else 0, (size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2))
        return image

    cases = [
        ("ordinary drawing 800×600 PNG", saved(drawing((800, 600)), format="PNG")),
        ("photo 6000×4000 JPEG", saved(PILImage.fromarray(np.random.default_rng(1).integers(0, 256, (4000, 6000, 3), dtype=np.uint8)), format="JPEG")),
        ("20:1 RGBA 31000×1550 PNG", saved(drawing((31_000, 1_550), "RGBA"), format="PNG")),
        ("20:1 RGB 16000×800 PNG", saved(drawing((16_000, 800)), format="PNG")),
        ("93:1 RGB 65000×700 PNG", saved(drawing((65_000, 700)), format="PNG")),
        ("200:1 1-bit 20000×100 PNG", saved(drawing((20_000, 100), "1"), format="PNG")),
    ]
    rows = []
    for name, content in cases:
        size = PILImage.open(io.BytesIO(content)).size

        def old():
            rgb = ImageOps.exif_transpose(PILImage.open(io.BytesIO(content))).convert("RGB")
            thumbnail_bytes(rgb, size=256)
            pad_to_square(rgb).resize((encoder.size, encoder.size), encoder.interpolation)

        def new(ratio):
            def run():
                checked = check_image(content, max_bytes=25 * MB, max_pixels=50_000_000, max_aspect_ratio=ratio)
                thumbnail_bytes(checked.rgb, size=256)
                encoder.preprocess(checked.rgb)

            return run

        padded = max(size) ** 2 * 4
        before = f"{peak_growth(old)[0] / MB:,.0f}" if padded <= options.max_old_mb * MB else f"~{padded / MB:,.0f} (not run)"
        after = []
        for ratio in (32, 100):
            try:
                growth, seconds = peak_growth(new(ratio))
                after.append(f"{growth / MB:,.0f} MB, {seconds:.2f} s")
            except InvalidImage:
                after.append("refused on its header")
        rows.append([name, f"{len(content) / 1024:,.0f}", before, *after])
    print(table(["image", "file KB", "before: peak MB", "after, ratio 32:1", "after, ratio 100:1"], rows))


if __name__ == "__main__":
    main()
