"""The cursor search statements run on. The query vector travels once per statement as a
binary halfvec parameter (not a 384-number text literal the server parses once per list),
and each statement is prepared on its connection, so a repeated search is neither parsed
nor planned again."""
import functools
import weakref
from contextlib import contextmanager

import numpy as np
import psycopg
from django.db import connections
from pgvector import HalfVector, Vector
from pgvector.psycopg.halfvec import HalfVectorBinaryDumper, HalfVectorBinaryLoader, HalfVectorDumper, HalfVectorLoader
from pgvector.psycopg.vector import VectorBinaryDumper, VectorBinaryLoader, VectorDumper, VectorLoader

from config.routers import read_database

from .exceptions import InvalidQuery


def checked_vector(vector) -> np.ndarray:
    """A query vector checked to be one row of finite numbers, as float32 for the search
    functions (they bind it as a binary parameter)."""
    values = np.asarray(vector, dtype=np.float32)
    if values.ndim != 1 or not np.isfinite(values).all():
        raise InvalidQuery("the query vector must be one row of finite numbers")
    return values


def halfvec(vector) -> HalfVector | None:
    return None if vector is None else HalfVector(checked_vector(vector))


# pgvector's type oids per raw connection: one catalog query per connection.
_vector_oids: "weakref.WeakKeyDictionary[psycopg.Connection, tuple[int, int]]" = weakref.WeakKeyDictionary()


@functools.cache
def vector_adapters(vector_oid: int, halfvec_oid: int) -> tuple[list, list]:
    """(dumpers, loaders) for pgvector's types in one database: what pgvector's
    register_vector_info and register_halfvec_info put on a cursor, with the dumper
    classes made once. Those functions make new classes on every call, which was most of
    the cost of a search cursor (0.23 of 0.38 ms, five cursors a search)."""

    def with_oid(dumper, oid: int):
        return type(dumper.__name__, (dumper,), {"oid": oid})

    dumpers = [
        (Vector, with_oid(VectorDumper, vector_oid)),
        (Vector, with_oid(VectorBinaryDumper, vector_oid)),  # registered last: the default for %s
        (HalfVector, with_oid(HalfVectorDumper, halfvec_oid)),
        (HalfVector, with_oid(HalfVectorBinaryDumper, halfvec_oid)),
    ]
    loaders = [(vector_oid, VectorLoader), (vector_oid, VectorBinaryLoader), (halfvec_oid, HalfVectorLoader), (halfvec_oid, HalfVectorBinaryLoader)]
    return dumpers, loaders


class PreparedCursor(psycopg.Cursor):
    """Binds parameters on the server and prepares each statement on its connection, so a
    repeated search is neither parsed nor planned again; rows come back in binary."""

    def execute(self, query, params=None, *, prepare=True, binary=True):
        return super().execute(query, params, prepare=prepare, binary=binary)


@contextmanager
def search_cursor():
    """A PreparedCursor on the connection reads go to now (a replica inside
    `replica_reads()`, config/routers.py), inside Django's cursor wrapper: database errors,
    execute wrappers and query logging behave as for any Django query.

    Django's own cursors interpolate parameters into the SQL text on the client, which
    can neither send a vector in binary nor prepare a statement. pgvector's adapters are
    registered on this cursor only: the ORM's queries on the same connection keep reading
    vectors Django's way, whether or not a search ran on it before."""
    connection = connections[read_database()]
    connection.ensure_connection()
    raw = connection.connection
    oids = _vector_oids.get(raw)
    if oids is None:
        with raw.cursor() as cursor:
            cursor.execute("SELECT 'vector'::regtype::oid, 'halfvec'::regtype::oid")
            oids = _vector_oids[raw] = cursor.fetchone()
    cursor = PreparedCursor(raw)
    dumpers, loaders = vector_adapters(*oids)
    for python_type, dumper in dumpers:
        cursor.adapters.register_dumper(python_type, dumper)
    for oid, loader in loaders:
        cursor.adapters.register_loader(oid, loader)
    # Private Django API: _prepare_cursor is how Django wraps the cursors it makes itself
    # (CursorWrapper, or the debug one that logs queries); there is no public way to wrap a
    # cursor made here. tests/search/test_query_path.py checks what it returns.
    with connection._prepare_cursor(cursor) as wrapped:
        yield wrapped
