"""Shared set-up for benchmarks: Django on a throwaway database, so the demo catalog is untouched."""
import json
import os
import statistics
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@contextmanager
def throwaway_database():
    """Django set up against a fresh database of its own, dropped afterwards."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    from config import embedded

    django.setup()
    embedded.start()
    # The one evaluate_retrieval uses: its own name beside the suite, no queued embedding.
    from search.management.commands.evaluate_retrieval import throwaway_database as fresh_database

    with fresh_database("glimpse_bench"):
        yield


def manifest_rows(path: Path, limit: int | None = None) -> list[dict]:
    """A JSONL manifest's rows (blank lines skipped), the first `limit` of them."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()][:limit]


SYNTHETIC_IMAGE_COLUMNS = (
    "id, file, thumbnail, title, description, tags, category, source, license, content_hash, width, height, created_at, "
    "updated_at, embedding_status, embedding_error, picture_text, picture_text_state, picture_text_lines, "
    "picture_text_reader, picture_text_error, picture_glyphs"
)


def synthetic_images_copy(cursor, rows) -> None:
    """Catalog rows without files, which the benches' synthetic vectors only need the ids of:
    `rows` of (id, title, category, created), embedded and with nothing to read. `cursor`
    is a psycopg cursor. One writer for every bench, so a new column is added once."""
    with cursor.copy(f"COPY catalog_image ({SYNTHETIC_IMAGE_COLUMNS}) FROM STDIN") as copy:
        for image_id, title, category, created in rows:
            copy.write_row((
                image_id, "images/synthetic.png", "thumbnails/synthetic.webp", title, "", [], category, "bench", "",
                f"synthetic-{image_id}", 1, 1, created, created, "ready", "", "", "read", "[]", "", "", "",
            ))


def import_folder(folder: Path, manifest: str = "data.jsonl", limit: int | None = None) -> list[int]:
    from django.core.management import call_command

    from catalog.models import Image

    call_command("import_images", str(folder), "--manifest", manifest, verbosity=0, **({"limit": limit} if limit else {}))
    return list(Image.objects.order_by("id").values_list("id", flat=True))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(headers: list[str], rows: list[list]) -> str:
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(header), *(len(row[index]) for row in cells)) for index, header in enumerate(headers)]
    lines = [
        "| " + " | ".join(header.ljust(width) for header, width in zip(headers, widths)) + " |",
        "|" + "|".join("-" * (width + 2) for width in widths) + "|",
    ]
    lines += ["| " + " | ".join(cell.rjust(width) for cell, width in zip(row, widths)) + " |" for row in cells]
    return "\n".join(lines)
