"""The catalog's language for full-text search.

The search document (catalog migration 0004) and the keyword queries (search/ranking.py)
read words through one text search configuration of the project's, `glimpse`; this module
keeps it mapped like the PostgreSQL configuration that GLIMPSE_TEXT_SEARCH_LANGUAGE names
(a snowball language such as english or german, or simple).

It runs after every `migrate` (post_migrate, connected in CatalogConfig.ready()): migrate
is the step a deployment runs anyway after changing its settings and the one that makes a
new database, so the language can neither be forgotten nor fall behind the schema. When
the configuration already agrees it costs four catalog queries. A change stores every
image's document again, since a generated column keeps what it computed: migrate prints
the progress, and the switch is one transaction, so searches see the old language or the
new, never a mix, and go on meanwhile; writes to the catalog wait for it.
"""
import sys
from typing import Callable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import DEFAULT_DB_ALIAS, connections, router, transaction

from .models import Image

CONFIGURATION = "glimpse"
REFRESH_BATCH = 5000

# Each token type's dictionaries, in order, as quoted names for ALTER TEXT SEARCH CONFIGURATION.
MAPPING_SQL = """
    SELECT quote_ident(t.alias), array_agg(format('%%I.%%I', n.nspname, d.dictname) ORDER BY m.mapseqno)
    FROM pg_ts_config c
    JOIN pg_ts_config_map m ON m.mapcfg = c.oid
    JOIN ts_token_type(c.cfgparser) t ON t.tokid = m.maptokentype
    JOIN pg_ts_dict d ON d.oid = m.mapdict
    JOIN pg_namespace n ON n.oid = d.dictnamespace
    WHERE c.oid = %s
    GROUP BY t.alias
    ORDER BY t.alias"""

# Assigning a column that the document reads makes PostgreSQL compute it again
# (SET search_document = DEFAULT keeps the stored one).
REFRESH_SQL = """
    UPDATE catalog_image SET title = title
    WHERE id IN (SELECT id FROM catalog_image WHERE id > %s ORDER BY id LIMIT %s)
    RETURNING id"""


def language_configuration(cursor) -> int:
    """The oid of PostgreSQL's own configuration that GLIMPSE_TEXT_SEARCH_LANGUAGE names."""
    language = settings.GLIMPSE_TEXT_SEARCH_LANGUAGE
    cursor.execute("SELECT cfgname, oid FROM pg_ts_config WHERE cfgnamespace = 'pg_catalog'::regnamespace ORDER BY cfgname")
    known = dict(cursor.fetchall())
    if language not in known:
        raise ImproperlyConfigured(
            f"GLIMPSE_TEXT_SEARCH_LANGUAGE={language!r}: PostgreSQL has no such text search configuration; use one of {', '.join(known)}"
        )
    return known[language]


def project_configuration(cursor) -> int | None:
    """The oid of `glimpse`, None before migration 0004."""
    cursor.execute("SELECT oid FROM pg_ts_config WHERE cfgname = %s AND pg_ts_config_is_visible(oid)", [CONFIGURATION])
    row = cursor.fetchone()
    return row and row[0]


def mapping(cursor, configuration: int) -> list[tuple[str, list[str]]]:
    cursor.execute(MAPPING_SQL, [configuration])
    return cursor.fetchall()


def mapping_copy(cursor, *, configuration: int, source: list[tuple[str, list[str]]]) -> None:
    """Map `glimpse` as `source`, every token type anew (the names come quoted from the catalog)."""
    mapped = ", ".join(alias for alias, _ in mapping(cursor, configuration))
    cursor.execute(f"ALTER TEXT SEARCH CONFIGURATION {CONFIGURATION} DROP MAPPING FOR {mapped}")
    for alias, dictionaries in source:
        cursor.execute(f"ALTER TEXT SEARCH CONFIGURATION {CONFIGURATION} ADD MAPPING FOR {alias} WITH {', '.join(dictionaries)}")


def documents_refresh(cursor, *, progress: Callable[[int, int], None], batch_size: int) -> None:
    """Compute every image's search document again, in batches of ids."""
    cursor.execute("SELECT count(*) FROM catalog_image")
    total, done, last_id = cursor.fetchone()[0], 0, 0
    progress(done, total)
    while True:
        cursor.execute(REFRESH_SQL, [last_id, batch_size])
        ids = [image_id for (image_id,) in cursor.fetchall()]
        if not ids:
            return
        done, last_id = done + len(ids), max(ids)
        progress(done, total)


def text_search_language_apply(
    *, using: str = DEFAULT_DB_ALIAS, progress: Callable[[int, int], None] = lambda done, total: None, batch_size: int = REFRESH_BATCH
) -> bool:
    """Map `glimpse` like the configuration GLIMPSE_TEXT_SEARCH_LANGUAGE names and store
    every search document again, in one transaction; nothing where it already agrees or
    where `glimpse` is not there yet. True when it changed; `progress(done, total)` is
    called before the first batch of documents and after each."""
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        configuration = project_configuration(cursor)
        if configuration is None:
            return False
        language = mapping(cursor, language_configuration(cursor))
        if mapping(cursor, configuration) == language:
            return False
        # An image stored by another transaction meanwhile would keep the old language's document.
        cursor.execute("LOCK TABLE catalog_image IN SHARE ROW EXCLUSIVE MODE")
        mapping_copy(cursor, configuration=configuration, source=language)
        documents_refresh(cursor, progress=progress, batch_size=batch_size)
        return True


def text_search_language_follow(*, using: str, verbosity: int, stdout=None, **kwargs) -> None:
    """post_migrate receiver: apply the setting to the database just migrated, with progress."""
    if not router.allow_migrate_model(using, Image):
        return
    stdout = stdout or sys.stdout
    language = settings.GLIMPSE_TEXT_SEARCH_LANGUAGE

    def report(done: int, total: int) -> None:
        if verbosity:
            stdout.write(f"Storing the search documents in {language}: {done} of {total}\n")

    text_search_language_apply(using=using, progress=report)
