from pathlib import Path
from typing import Iterator

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from catalog.exceptions import InvalidManifest, UnreadableFile
from catalog.files import read_regular_file
from catalog.manifests import ManifestRow, read_manifest
from catalog.services import ImageInput, images_create


class Command(BaseCommand):
    help = (
        "Import a folder of images described by a JSONL or CSV manifest. Re-running adds nothing new. "
        "Bad rows are reported and skipped; the exit status is 1 when any row was skipped."
    )

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
            read = read_manifest(manifest_path, folder=folder, limit=limit or None)
        except InvalidManifest as error:
            raise CommandError(f"{manifest_path}: {error}") from None

        created = duplicates = 0
        problems: list[tuple[int, str]] = list(read.skipped)
        line_of = {display_name(row): row.line for row in read.rows}
        with tqdm(total=len(read), unit="image", desc="importing", disable=verbosity == 0) as progress:
            progress.update(len(read.skipped))
            for start in range(0, len(read.rows), batch_size):
                chunk = read.rows[start : start + batch_size]
                # A generator, so that only one file's bytes are held at a time.
                report = images_create(items=self.inputs(chunk, problems))
                created += len(report.created)
                duplicates += len(report.duplicates)
                problems += [(line_of[item.name], f"{item.name}: {reason}") for item, reason in report.invalid]
                progress.update(len(chunk))

        for _, problem in sorted(problems):
            self.stderr.write(f"skipped {problem}")
        self.stdout.write(
            f"{created} imported, {duplicates} already in the catalog, {len(problems)} skipped, of {len(read)} rows"
        )
        if problems:
            raise CommandError(f"{len(problems)} of {len(read)} rows were skipped; the reasons are above", returncode=1)

    def inputs(self, rows: list[ManifestRow], problems: list[tuple[int, str]]) -> Iterator[ImageInput]:
        for row in rows:
            name = display_name(row)
            try:
                content = read_regular_file(row.path, max_bytes=settings.GLIMPSE_MAX_UPLOAD_BYTES)
            except UnreadableFile as error:
                problems.append((row.line, f"{name}: {error}"))
                continue
            yield ImageInput(
                content=content,
                title=row.title,
                description=row.description,
                tags=row.tags,
                category=row.category,
                source=row.source,
                license=row.license,
                name=name,
            )


def display_name(row: ManifestRow) -> str:
    return f"{row.file} (line {row.line})"
