"""Writing many vector rows at once with binary COPY.

Django's bulk_create sends every vector as a text literal that the server parses
(326 rows/s of three vectors here); binary COPY sends the floats as they are. Upserts
go through a temporary table, since COPY itself cannot resolve conflicts.
"""
import weakref

import numpy as np
import psycopg
from django.db import connection, transaction
from django.utils import timezone
from pgvector import HalfVector, Vector
from pgvector.django import HalfVectorField, VectorField
from pgvector.psycopg.halfvec import register_halfvec_info
from pgvector.psycopg.vector import register_vector_info
from psycopg import sql
from psycopg.types import TypeInfo

from .exceptions import InvalidVector
from .models import ImageEmbedding

# Largest finite half-precision float: beyond it a halfvec column would hold infinity.
HALF_MAX = 65504.0
# pgvector's Python types, by the column type that a field declares.
VECTOR_CLASSES = {"vector": Vector, "halfvec": HalfVector}
VECTOR_REGISTRATIONS = {"vector": register_vector_info, "halfvec": register_halfvec_info}
# Type information per psycopg connection: fetched once, not on every batch.
type_infos: "weakref.WeakKeyDictionary[psycopg.Connection, dict[str, TypeInfo]]" = weakref.WeakKeyDictionary()


def column_type(field) -> str:
    """The type name COPY needs for a field: "vector", "halfvec", "bigint", ..."""
    return field.db_type(connection).split("(")[0]


def vector_adapters_register(cursor: psycopg.Cursor, names: set[str]) -> None:
    """pgvector's psycopg dumpers on this cursor only: the connection's other queries keep
    Django's own way of reading vectors."""
    infos = type_infos.setdefault(cursor.connection, {})
    for name in sorted(names):
        if name not in infos:
            infos[name] = TypeInfo.fetch(cursor.connection, name)
        VECTOR_REGISTRATIONS[name](cursor, infos[name])


def vector_checked(value, *, field, image_id: int) -> np.ndarray | None:
    """The value as float32, or InvalidVector naming the image and column."""
    if value is None:
        if not field.null:
            raise InvalidVector(f"image {image_id}: {field.name} is missing")
        return None
    vector = np.asarray(value, dtype=np.float32)
    if vector.shape != (field.dimensions,):
        raise InvalidVector(f"image {image_id}: {field.name} has shape {vector.shape}, expected ({field.dimensions},)")
    if not np.isfinite(vector).all():
        raise InvalidVector(f"image {image_id}: {field.name} holds NaN or infinite values")
    if isinstance(field, HalfVectorField) and np.abs(vector).max(initial=0) > HALF_MAX:
        raise InvalidVector(f"image {image_id}: {field.name} holds values beyond half precision (±{HALF_MAX:g})")
    return vector


def embeddings_upsert(*, rows: list[ImageEmbedding]) -> int:
    """Insert the rows, or overwrite every column of an existing (image, version) row.

    Vector types come from the model's fields (vector or halfvec), so the statement
    follows the columns. Every vector is checked before anything is sent; a row the
    server refuses rolls back the whole call. Returns the number of rows written.
    """
    if not rows:
        return 0
    fields = [field for field in ImageEmbedding._meta.concrete_fields if not field.primary_key]
    types = [column_type(field) for field in fields]
    now = timezone.now()
    records = []
    for row in rows:
        record = []
        for field, type_name in zip(fields, types):
            if isinstance(field, (VectorField, HalfVectorField)):
                vector = vector_checked(getattr(row, field.attname), field=field, image_id=row.image_id)
                record.append(None if vector is None else VECTOR_CLASSES[type_name](vector))
            elif field.name == "created_at":
                record.append(now)
            else:
                record.append(getattr(row, field.attname))
        records.append(record)

    table = ImageEmbedding._meta.db_table
    columns = sql.SQL(", ").join(sql.Identifier(field.column) for field in fields)
    key = sql.SQL(", ").join(sql.Identifier(ImageEmbedding._meta.get_field(name).column) for name in ("image", "version"))
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(field.column))
        for field in fields
        if field.name not in ("image", "version")
    )
    with transaction.atomic(), connection.cursor() as wrapper, connection.wrap_database_errors:
        cursor = wrapper.cursor
        vector_adapters_register(cursor, {name for name in types if name in VECTOR_CLASSES})
        # Column types from the table itself, so the staging table matches it after any migration.
        cursor.execute(
            sql.SQL("CREATE TEMPORARY TABLE embeddings_incoming ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
                columns, sql.Identifier(table)
            )
        )
        with cursor.copy(sql.SQL("COPY embeddings_incoming ({}) FROM STDIN (FORMAT BINARY)").format(columns)) as copy:
            copy.set_types(types)
            for record in records:
                copy.write_row(record)
        cursor.execute(
            sql.SQL("INSERT INTO {table} ({columns}) SELECT {columns} FROM embeddings_incoming ON CONFLICT ({key}) DO UPDATE SET {updates}").format(
                table=sql.Identifier(table), columns=columns, key=key, updates=updates
            )
        )
        # Dropped now, not at commit: one transaction may write several batches.
        cursor.execute("DROP TABLE embeddings_incoming")
    return len(records)
