"""Read a folder's JSONL or CSV manifest into rows the import can use."""
import csv
import json
from dataclasses import dataclass
from pathlib import Path

from .exceptions import InvalidManifest


@dataclass(frozen=True)
class ManifestRow:
    line: int
    path: Path
    title: str
    description: str
    tags: tuple[str, ...]
    category: str
    source: str
    license: str


def split_tags(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        separator = ";" if ";" in value else ","
        return tuple(part.strip() for part in value.split(separator) if part.strip())
    if isinstance(value, list):
        return tuple(str(part) for part in value)
    raise ValueError("tags must be a list or a comma-separated string")


def text(record: dict, *names: str) -> str:
    for name in names:
        value = record.get(name)
        if value not in (None, ""):
            if not isinstance(value, (str, int, float)):
                raise ValueError(f"{name} must be text")
            return str(value)
    return ""


def row_from_record(record: dict, *, line: int, folder: Path, text_fields: tuple[str, ...] | None) -> ManifestRow:
    if not isinstance(record, dict):
        raise InvalidManifest(f"line {line}: expected an object, found {type(record).__name__}")
    name = record.get("file")
    if not name or not isinstance(name, str):
        raise InvalidManifest(f"line {line}: no 'file'")
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise InvalidManifest(f"line {line}: {name!r} points outside {folder}")
    try:
        if text_fields is None:
            title = text(record, "title", "caption")
            description = text(record, "description")
            tags = split_tags(record.get("tags", record.get("keywords")))
        else:
            prose = [field for field in text_fields if field != "keywords"]
            title = text(record, prose[0]) if prose else ""
            description = ". ".join(filter(None, (text(record, field) for field in prose[1:])))
            tags = split_tags(record.get("keywords")) if "keywords" in text_fields else ()
        return ManifestRow(
            line=line,
            path=path,
            title=title,
            description=description,
            tags=tags,
            category=text(record, "category", "label"),
            source=text(record, "source"),
            license=text(record, "license"),
        )
    except ValueError as error:
        raise InvalidManifest(f"line {line}: {error}") from None


def read_manifest(manifest: Path, *, folder: Path, text_fields: tuple[str, ...] | None = None) -> list[ManifestRow]:
    """All rows, or InvalidManifest naming the first bad line (nothing is imported from a bad manifest).

    `text_fields` replaces the default title/description/tags mapping: `keywords` become
    the tags, the first other field the title, the rest the description; an empty tuple
    stores no text at all, as retrieval evaluation needs.
    """
    if not manifest.exists():
        raise InvalidManifest(f"{manifest} does not exist")
    records: list[tuple[int, dict]] = []
    with open(manifest, newline="", encoding="utf-8") as handle:
        if manifest.suffix.lower() == ".csv":
            for line, record in enumerate(csv.DictReader(handle), start=2):
                records.append((line, record))
        elif manifest.suffix.lower() in (".jsonl", ".ndjson"):
            for line, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    records.append((line, json.loads(raw)))
                except json.JSONDecodeError as error:
                    raise InvalidManifest(f"line {line}: not JSON ({error.msg})") from None
        else:
            raise InvalidManifest(f"{manifest.name}: use a .jsonl or .csv manifest")
    return [row_from_record(record, line=line, folder=folder, text_fields=text_fields) for line, record in records]
