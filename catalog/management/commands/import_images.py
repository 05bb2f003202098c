from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.exceptions import InvalidManifest
from catalog.manifests import read_manifest
from catalog.services import ImageInput, images_create


class Command(BaseCommand):
    help = "Import a folder of images described by a JSONL or CSV manifest. Re-running adds nothing new."

    def add_arguments(self, parser):
        parser.add_argument("folder", type=Path)
        parser.add_argument("--manifest", default="data.jsonl", help="file name inside FOLDER, or a path (.jsonl or .csv)")
        parser.add_argument("--batch-size", type=int, default=32, help="images per transaction and per embedding job")
        parser.add_argument("--limit", type=int, help="import only the first N rows")

    def handle(self, *args, folder: Path, manifest: str, batch_size: int, limit: int | None, verbosity: int, **options):
        if not folder.is_dir():
            raise CommandError(f"{folder} is not a folder")
        manifest_path = Path(manifest) if Path(manifest).is_absolute() or Path(manifest).exists() else folder / manifest
        try:
            rows = read_manifest(manifest_path, folder=folder)
        except InvalidManifest as error:
            raise CommandError(f"{manifest_path}: {error}") from None
        rows = rows[:limit] if limit else rows

        created = duplicates = 0
        problems: list[str] = []
        with tqdm(total=len(rows), unit="image", desc="importing", disable=verbosity == 0) as progress:
            for start in range(0, len(rows), batch_size):
                chunk = rows[start : start + batch_size]
                items = []
                for row in chunk:
                    try:
                        content = row.path.read_bytes()
                    except OSError as error:
                        problems.append(f"{row.path.name} (line {row.line}): cannot read: {error.strerror}")
                        continue
                    items.append(
                        ImageInput(
                            content=content,
                            title=row.title,
                            description=row.description,
                            tags=row.tags,
                            category=row.category,
                            source=row.source,
                            license=row.license,
                            name=f"{row.path.name} (line {row.line})",
                        )
                    )
                report = images_create(items=items)
                created += len(report.created)
                duplicates += len(report.duplicates)
                problems += [f"{item.name}: {reason}" for item, reason in report.invalid]
                progress.update(len(chunk))

        for problem in problems:
            self.stderr.write(f"skipped {problem}")
        self.stdout.write(
            f"{created} imported, {duplicates} already in the catalog, {len(problems)} skipped, of {len(rows)} rows"
        )
