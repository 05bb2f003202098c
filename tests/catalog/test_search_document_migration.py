"""0004 rebuilds the search document with the configuration `glimpse` and CJK bigrams,
and back to 0003's English one."""
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("catalog", "0003_search_document_category")]


def migrate(targets) -> None:
    MigrationExecutor(connection).migrate(targets)
    # Statements prepared on this connection were planned for the old column.
    connection.close()


def latest():
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def stored() -> tuple[str, bool]:
    """The one image's search document, and whether the configuration `glimpse` exists."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT search_document::text, EXISTS (SELECT FROM pg_ts_config WHERE cfgname = 'glimpse') FROM catalog_image")
        return cursor.fetchone()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_document_gets_cjk_bigrams_and_loses_them_when_reversed(make_images):
    make_images([{"title": "黑猫 on a roof", "tags": ("猫",)}])
    migrate(BEFORE)
    try:
        assert stored() == ("'roof':4A '猫':5B '黑猫':1A", False)
    finally:
        migrate(latest())
    # The words first ("on" and "a" keep their places), then the run's bigram and characters.
    assert stored() == ("'roof':3A '猫':6A,7B '黑':5A '黑猫':4A", True)
