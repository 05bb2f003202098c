"""Writing many vector rows at once with binary COPY.

Django's bulk_create sends every vector as a text literal that the server parses
(326 rows/s of three vectors here); binary COPY sends the floats as they are. The COPY
stream is built by numpy a block of rows at a time (one structured big-endian array per
block, in pgvector's binary layout), not row by row in Python, and each column's type
comes from the catalog, so the same writer fits a `vector` or a `halfvec` column and
follows a migration that converts one into the other.
"""
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import numpy as np
import psycopg
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone
from psycopg import sql

from .exceptions import InvalidVector
from .models import ImageEmbedding

# Largest finite half-precision float: beyond it a halfvec column would hold infinity.
HALF_MAX = 65504.0
# The binary COPY header (signature, no flags, no extension) and the end-of-data marker.
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
TRAILER = b"\xff\xff"
POSTGRES_EPOCH = datetime(2000, 1, 1, tzinfo=dt_timezone.utc)
# Rows per numpy block, about a megabyte. Larger blocks measured slower (4,000 rows), and a
# writer thread (psycopg's QueuedLibpqWriter) gained nothing on two busy cores.
BLOCK_ROWS = 256
# pgvector's binary layout: int16 dimensions, int16 unused, then the elements.
ELEMENT_TYPES = {"vector": ">f4", "halfvec": ">f2"}
# Other column types this writer sends; timestamps as microseconds since 2000-01-01 UTC.
SCALAR_TYPES = {"int8": ">i8", "int4": ">i4", "int2": ">i2", "timestamptz": ">i8"}

COLUMNS_SQL = """
    SELECT attribute.attname, type.typname, attribute.atttypmod, NOT attribute.attnotnull
    FROM pg_attribute attribute JOIN pg_type type ON type.oid = attribute.atttypid
    WHERE attribute.attrelid = %s::regclass AND attribute.attnum > 0 AND NOT attribute.attisdropped"""


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # pg_type.typname: "vector", "halfvec", "int8", "timestamptz", ...
    dimensions: int  # a vector column's declared width; -1 for other types
    nullable: bool

    @property
    def is_vector(self) -> bool:
        return self.type in ELEMENT_TYPES

    def value_dtype(self) -> np.dtype:
        """The bytes of one non-null value on the wire."""
        if self.is_vector:
            return np.dtype([("dimensions", ">i2"), ("unused", ">i2"), ("elements", ELEMENT_TYPES[self.type], (self.dimensions,))])
        return np.dtype(SCALAR_TYPES[self.type])


def table_columns(cursor: psycopg.Cursor, *, table: str, names: Sequence[str]) -> list[Column]:
    """`names` of `table` as the catalog declares them now (not as the models say: a
    process that runs before or after a migration writes what the table holds)."""
    cursor.execute(COLUMNS_SQL, [table])
    found = {name: Column(name, type_name, modifier, nullable) for name, type_name, modifier, nullable in cursor.fetchall()}
    columns = []
    for name in names:
        if name not in found:
            raise ImproperlyConfigured(f"{table} has no column {name}: are migrations applied?")
        column = found[name]
        if column.type not in ELEMENT_TYPES and column.type not in SCALAR_TYPES:
            raise ImproperlyConfigured(f"{table}.{name} is {column.type}, which binary COPY here does not write")
        if column.is_vector and column.dimensions < 1:
            raise ImproperlyConfigured(f"{table}.{name} is a {column.type} without a declared width")
        columns.append(column)
    return columns


def vector_checked(value, *, column: Column, label: str) -> np.ndarray:
    """One vector as float32, or InvalidVector naming the row and column."""
    vector = np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)
    if vector.shape != (column.dimensions,):
        raise InvalidVector(f"{label}: {column.name} has shape {vector.shape}, expected ({column.dimensions},)")
    return vector


@dataclass(frozen=True)
class Rows:
    """Rows as columns: values[i] holds column i for every row (zeros where absent),
    present[i] says which rows have a value (NULL elsewhere)."""

    columns: list[Column]
    values: list[np.ndarray]
    present: list[np.ndarray]

    def __len__(self) -> int:
        return len(self.present[0]) if self.present else 0

    def take(self, positions: np.ndarray) -> "Rows":
        return Rows(self.columns, [value[positions] for value in self.values], [here[positions] for here in self.present])


def rows_checked(columns: list[Column], data: dict[str, Sequence], *, labels: Sequence[str]) -> Rows:
    """`data` (column name -> one value per row, None for NULL; or an (n, d) array for a
    vector column without NULLs) checked against the columns: every vector's shape, NaN
    and infinity, half precision's range, and a value wherever the column is NOT NULL.
    The first fault raises InvalidVector naming the row (`labels`) and column; nothing is
    sent before every row passed."""
    values, present = [], []
    for column in columns:
        given = data[column.name]
        if isinstance(given, np.ndarray) and given.ndim == 2 and column.is_vector:
            here = np.ones(len(given), dtype=bool)
        else:
            here = np.fromiter((value is not None for value in given), dtype=bool, count=len(given))
        if not column.nullable and not here.all():
            raise InvalidVector(f"{labels[int(np.argmin(here))]}: {column.name} is missing")
        if column.is_vector:
            array = vectors_checked(given, here, column=column, labels=labels)
        else:
            array = np.array([0 if value is None else value for value in given], dtype=np.int64)
        values.append(array)
        present.append(here)
    return Rows(columns, values, present)


def vectors_checked(given: Sequence, here: np.ndarray, *, column: Column, labels: Sequence[str]) -> np.ndarray:
    """One vector column as an (n, d) float32 array (zeros where NULL), checked."""
    if isinstance(given, np.ndarray) and given.ndim == 2:
        if given.shape[1] != column.dimensions:
            raise InvalidVector(f"{labels[0]}: {column.name} has shape ({given.shape[1]},), expected ({column.dimensions},)")
        array = np.asarray(given, dtype=np.float32)
    else:
        array = np.zeros((len(given), column.dimensions), dtype=np.float32)
        positions = np.flatnonzero(here)
        vectors = [given[position] for position in positions]
        if all(np.shape(vector) == (column.dimensions,) for vector in vectors):
            if vectors:
                array[positions] = vectors
        else:
            # One by one, to name the faulty row (or to convert pgvector's own objects).
            for position in positions:
                array[position] = vector_checked(given[position], column=column, label=labels[position])
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        raise InvalidVector(f"{labels[int(np.argmin(finite))]}: {column.name} holds NaN or infinite values")
    if column.type == "halfvec":
        within = (np.abs(array) <= HALF_MAX).all(axis=1)
        if not within.all():
            raise InvalidVector(f"{labels[int(np.argmin(within))]}: {column.name} holds values beyond half precision (±{HALF_MAX:g})")
    return array


def copy_stream(rows: Rows) -> Iterator[bytes | memoryview]:
    """The binary COPY data of `rows`: the header, blocks of rows, the trailer.

    Rows with the same NULL columns share one fixed layout, so each such group is a
    structured array that numpy fills column by column (converting to big-endian and,
    for halfvec, to half precision on the way) and the wire sees as plain bytes.
    """
    yield SIGNATURE
    if len(rows):
        patterns, group_of = np.unique(np.stack(rows.present, axis=1), axis=0, return_inverse=True)
        for number, pattern in enumerate(patterns):
            layout = [("count", ">i2")]
            for index, (column, here) in enumerate(zip(rows.columns, pattern)):
                layout.append((f"length{index}", ">i4"))
                if here:
                    layout.append((f"value{index}", column.value_dtype()))
            layout = np.dtype(layout)
            members = np.flatnonzero(group_of.reshape(-1) == number)
            for start in range(0, len(members), BLOCK_ROWS):
                chosen = members[start : start + BLOCK_ROWS]
                block = np.empty(len(chosen), dtype=layout)
                block["count"] = len(rows.columns)
                for index, (column, here) in enumerate(zip(rows.columns, pattern)):
                    if not here:
                        block[f"length{index}"] = -1
                        continue
                    value = block[f"value{index}"]
                    block[f"length{index}"] = layout[f"value{index}"].itemsize
                    if column.is_vector:
                        value["dimensions"] = column.dimensions
                        value["unused"] = 0
                        value["elements"] = rows.values[index][chosen]
                    else:
                        block[f"value{index}"] = rows.values[index][chosen]
                yield memoryview(block.view(np.uint8))
    yield TRAILER


def rows_copy(cursor: psycopg.Cursor, *, table: str, rows: Rows) -> int:
    """COPY checked `rows` into `table` in binary; returns the number of rows."""
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(column.name) for column in rows.columns)
    )
    with cursor.copy(statement) as copy:
        for data in copy_stream(rows):
            copy.write(data)
    return len(rows)


def microseconds_since_2000(moment: datetime) -> int:
    return (moment - POSTGRES_EPOCH) // timedelta(microseconds=1)


def embeddings_upsert_columns(*, image_ids: Sequence[int], version_ids: Sequence[int], vectors: dict[str, Sequence]) -> int:
    """The rows given as columns: ids, and per vector column (image_vector, text_vector,
    feature_vector, neighbour_vector) one vector or None per row, or an (n, d) array.
    A column left out is NULL. What a backfill calls: no model instance per row.

    Every vector is checked before anything is sent. Rows whose (image, version) is new,
    nearly always all of them, go straight into the table by COPY; rows that exist go by
    COPY into a temporary table and one INSERT … ON CONFLICT DO UPDATE (COPY itself cannot
    resolve conflicts). A row another transaction inserted meanwhile makes the straight
    COPY fail; it is undone and the whole batch takes the second way. A row the server
    refuses rolls back the whole call. Returns the number of rows written.
    """
    count = len(image_ids)
    if not count:
        return 0
    fields = [field for field in ImageEmbedding._meta.concrete_fields if not field.primary_key]
    unknown = set(vectors) - {field.name for field in fields}
    if unknown:
        raise ValueError(f"ImageEmbedding has no vector column {', '.join(sorted(unknown))}")
    now = microseconds_since_2000(timezone.now())
    data = {"image_id": list(image_ids), "version_id": list(version_ids), "updated_at": [now] * count}
    for field in fields:
        if field.column not in data:
            data[field.column] = vectors.get(field.name, [None] * count)
    labels = [f"image {image_id}" for image_id in image_ids]
    table = ImageEmbedding._meta.db_table
    with transaction.atomic(), connection.cursor() as wrapper, connection.wrap_database_errors:
        cursor = wrapper.cursor
        checked = rows_checked(table_columns(cursor, table=table, names=list(data)), data, labels=labels)
        exists = existing_keys(cursor, table=table, image_ids=data["image_id"], version_ids=data["version_id"])
        new = np.flatnonzero(~exists)
        if len(new):
            try:
                with transaction.atomic():
                    rows_copy(cursor, table=table, rows=checked.take(new))
            except psycopg.errors.UniqueViolation:
                exists[:] = True
        if exists.any():
            rows_upsert_staged(cursor, table=table, rows=checked.take(np.flatnonzero(exists)), key=["image_id", "version_id"])
    return count


def existing_keys(cursor: psycopg.Cursor, *, table: str, image_ids: list[int], version_ids: list[int]) -> np.ndarray:
    """Which (image, version) pairs already have a row, by position. By image alone, which
    the unique (image, version) index answers whatever the batch's size."""
    cursor.execute(sql.SQL("SELECT image_id, version_id FROM {} WHERE image_id = ANY(%s)").format(sql.Identifier(table)), [sorted(set(image_ids))])
    found = set(cursor.fetchall())
    return np.fromiter(((image_id, version_id) in found for image_id, version_id in zip(image_ids, version_ids)), dtype=bool, count=len(image_ids))


def rows_upsert_staged(cursor: psycopg.Cursor, *, table: str, rows: Rows, key: list[str]) -> None:
    """COPY into a temporary table shaped like `table`, then one INSERT … ON CONFLICT (`key`) DO UPDATE."""
    names = [column.name for column in rows.columns]
    columns = sql.SQL(", ").join(map(sql.Identifier, names))
    cursor.execute(
        sql.SQL("CREATE TEMPORARY TABLE embeddings_incoming ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
            columns, sql.Identifier(table)
        )
    )
    rows_copy(cursor, table="embeddings_incoming", rows=rows)
    updates = sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(name)) for name in names if name not in key)
    cursor.execute(
        sql.SQL("INSERT INTO {table} ({columns}) SELECT {columns} FROM embeddings_incoming ON CONFLICT ({key}) DO UPDATE SET {updates}").format(
            table=sql.Identifier(table), columns=columns, key=sql.SQL(", ").join(map(sql.Identifier, key)), updates=updates
        )
    )
    # Dropped now, not at commit: one transaction may write several batches.
    cursor.execute("DROP TABLE embeddings_incoming")
