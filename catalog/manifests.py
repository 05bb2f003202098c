"""Read a folder's JSONL or CSV manifest into rows the import can use, and lines it must skip."""
import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

from .exceptions import InvalidManifest, UnreadableFile
from .files import open_regular_file
from .mojibake import mojibake_repaired

# A manifest line holds one image's text; a longer one is hostile or broken, and reading it
# whole would let one line take any amount of memory.
MAX_LINE_BYTES = 1024 * 1024


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
    file: str = ""  # the manifest's own `file` value, for messages (`path` is resolved)


@dataclass
class Manifest:
    rows: list[ManifestRow] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, "line N: reason")

    def skip(self, line: int, reason: str) -> None:
        self.skipped.append((line, f"line {line}: {reason}"))

    def __len__(self) -> int:
        return len(self.rows) + len(self.skipped)


def split_tags(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        separator = ";" if ";" in value else ","
        return tuple(mojibake_repaired(part.strip()) for part in value.split(separator) if part.strip())
    if isinstance(value, list) and all(isinstance(part, (str, int, float)) for part in value):
        return tuple(mojibake_repaired(str(part)) for part in value)
    raise ValueError("tags must be a list of words or a comma-separated string")


def text(record: dict, *names: str) -> str:
    for name in names:
        value = record.get(name)
        if value not in (None, ""):
            if not isinstance(value, (str, int, float)):
                raise ValueError(f"{name} must be text")
            return mojibake_repaired(str(value))
    return ""


def unusable_path_reason(name: str) -> str | None:
    """Why a `file` value cannot name a file at all (before it is joined to the folder)."""
    if "\x00" in name:
        return "'file' contains a NUL character"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "'file' is not valid Unicode (it holds a lone surrogate)"
    return None


def row_from_record(record, *, line: int, folder: Path, text_fields: tuple[str, ...] | None) -> ManifestRow:
    """One manifest record -> a row, or InvalidManifest saying, with the line, what is wrong."""
    if not isinstance(record, dict):
        raise InvalidManifest(f"line {line}: expected an object, found {type(record).__name__}")
    name = record.get("file")
    if not name or not isinstance(name, str):
        raise InvalidManifest(f"line {line}: no 'file'" if not name else f"line {line}: 'file' must be text")
    if reason := unusable_path_reason(name):
        raise InvalidManifest(f"line {line}: {reason}")
    try:
        path = (folder / name).resolve()
    except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop
        raise InvalidManifest(f"line {line}: {name!r} cannot be resolved ({error})") from None
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
            file=name,
        )
    except ValueError as error:
        raise InvalidManifest(f"line {line}: {error}") from None


def numbered_lines(handle: BinaryIO, manifest: Manifest) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line; a line too long or not UTF-8 is skipped in `manifest`."""
    number = 0
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            while raw and not raw.endswith(b"\n"):
                raw = handle.readline(MAX_LINE_BYTES)
            manifest.skip(number, f"the line is longer than {MAX_LINE_BYTES // 1024 // 1024} MiB")
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            manifest.skip(number, f"not UTF-8 text (byte {raw[error.start]:#04x} at column {error.start + 1})")
            continue
        yield number, (line.removeprefix("\ufeff") if number == 1 else line)


def jsonl_records(lines: Iterator[tuple[int, str]], manifest: Manifest) -> Iterator[tuple[int, object]]:
    for number, line in lines:
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as error:
            manifest.skip(number, f"not JSON ({error.msg})")
        except (ValueError, RecursionError) as error:  # e.g. an integer of 5,000 digits, [[[[… nested too deep
            manifest.skip(number, f"not JSON ({type(error).__name__}: {str(error)[:100]})")


def csv_records(lines: Iterator[tuple[int, str]], manifest: Manifest) -> Iterator[tuple[int, object]]:
    current = 0

    def texts() -> Iterator[str]:
        nonlocal current
        for current, line in lines:
            yield line

    reader = csv.DictReader(texts())
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            manifest.skip(current, f"not CSV ({error})")
            continue
        yield current, record


def read_manifest(
    manifest: Path, *, folder: Path, text_fields: tuple[str, ...] | None = None, limit: int | None = None
) -> Manifest:
    """The good rows, and each bad line with its reason; InvalidManifest only when the file as a whole is unusable.

    `text_fields` replaces the default title/description/tags mapping: `keywords` become
    the tags, the first other field the title, the rest the description; an empty tuple
    stores no text at all, as retrieval evaluation needs. `limit` keeps the first that
    many rows, good or bad.
    """
    suffix = manifest.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise InvalidManifest(f"{manifest.name}: use a .jsonl or .csv manifest")
    try:
        # The manifest is named by whoever runs the import: a symlink to it is followed.
        handle = open_regular_file(manifest.resolve())
    except UnreadableFile as error:
        raise InvalidManifest(str(error)) from None
    result = Manifest()
    with handle:
        lines = numbered_lines(handle, result)
        records = csv_records(lines, result) if suffix == ".csv" else jsonl_records(lines, result)
        for line, record in records:
            try:
                result.rows.append(row_from_record(record, line=line, folder=folder, text_fields=text_fields))
            except InvalidManifest as error:
                result.skipped.append((line, str(error)))
    if limit is not None and len(result) > limit:
        last = sorted([row.line for row in result.rows] + [line for line, _ in result.skipped])[limit - 1]
        result.rows = [row for row in result.rows if row.line <= last]
        result.skipped = [skip for skip in result.skipped if skip[0] <= last]
    return result
