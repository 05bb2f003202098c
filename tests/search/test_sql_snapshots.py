"""The statements each search path sends, rendered from fixed inputs, against the checked-in
search/queries/*.sql: a change to ranking SQL shows up in review as a diff of those files.
GLIMPSE_UPDATE_SQL_SNAPSHOTS=1 rewrites them (then read the diff as you would code)."""
import os
import textwrap
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from pgvector import HalfVector, Vector

from embeddings.models import ModelVersion
from search.judged import judged_list_sql
from search.ranking import fused_ranking_sql
from search.selectors import Filters, browse_sql

QUERIES = Path(__file__).resolve().parents[2] / "search" / "queries"
UPDATE = os.environ.get("GLIMPSE_UPDATE_SQL_SNAPSHOTS") == "1"

VERSION = ModelVersion(id=3, number=3, kind=ModelVersion.Kind.HEADS, multilingual_text_model="multilingual-e5-small")
VECTOR = np.full(384, 1 / np.sqrt(384), dtype=np.float32)
FEATURES = np.full(1280, 1 / np.sqrt(1280), dtype=np.float32)
FILTERS = Filters(category="animals", tags=("cat",), created_from=date(2024, 3, 1), created_to=date(2024, 3, 31))
WORDS = dict(vector=VECTOR, multilingual=VECTOR, english=0.75, text='red apple "green pear" -banana', judged_ids=(7, 3))


def text(mode: str, filters: Filters = Filters()):
    return fused_ranking_sql(mode=mode, version=VERSION, filters=filters, **WORDS)


STATEMENTS = {
    "text_hybrid": lambda: text("hybrid"),
    "text_hybrid_filtered": lambda: text("hybrid", FILTERS),
    "text_semantic": lambda: text("semantic"),
    "text_semantic_filtered": lambda: text("semantic", FILTERS),
    "text_keyword": lambda: text("keyword"),
    "text_keyword_filtered": lambda: text("keyword", FILTERS),
    "picture": lambda: fused_ranking_sql(mode="semantic", vector=None, features=FEATURES, text="", version=VERSION, filters=Filters()),
    "picture_filtered": lambda: fused_ranking_sql(mode="semantic", vector=None, features=FEATURES, text="", version=VERSION, filters=FILTERS),
    "more_like_this": lambda: fused_ranking_sql(
        mode="semantic", vector=None, features=FEATURES, text="", version=VERSION, filters=Filters(), exclude_id=42
    ),
    "browse_filtered": lambda: browse_sql(filters=FILTERS, depth=100),
    "judged_list": lambda: judged_list_sql(raw_vector=VECTOR, filters=Filters()),
    "judged_list_multilingual_filtered": lambda: judged_list_sql(raw_vector=VECTOR, filters=FILTERS, multilingual=True),
}


def parameter(value) -> str:
    if isinstance(value, (HalfVector, Vector)):
        return f"{type(value).__name__}({len(value.to_list())})"
    return "NULL" if value is None else repr(value)


def rendered(name: str, sql: str, params: list) -> str:
    lines = [
        f"-- {name}: written by tests/search/test_sql_snapshots.py from its fixed inputs; do not edit by hand.",
        *(f"-- ${number}: {parameter(value)}" for number, value in enumerate(params, start=1)),
    ]
    body = "\n".join(line.rstrip() for line in textwrap.dedent(sql).strip("\n").splitlines())
    return "\n".join(lines) + "\n" + body + "\n"


@pytest.fixture(autouse=True)
def pinned_settings(settings):
    """The settings the statements inline or bind, as shipped: the environment cannot change the snapshots."""
    settings.GLIMPSE_SEARCH_DEPTH = 100
    settings.GLIMPSE_PICTURE_TEXT_SIMILARITY = 0.88
    settings.GLIMPSE_JUDGED_QUERY_SIMILARITY = 0.9
    settings.GLIMPSE_JUDGED_QUERY_SIMILARITY_MULTILINGUAL = 0.97


@pytest.mark.parametrize("name", STATEMENTS)
def test_each_search_statement_is_the_checked_in_one(name):
    sql, params = STATEMENTS[name]()
    found = rendered(name, sql, params)
    path = QUERIES / f"{name}.sql"
    if UPDATE:
        path.write_text(found)
    assert path.exists(), f"{path} is missing: run GLIMPSE_UPDATE_SQL_SNAPSHOTS=1 pytest {__file__}"
    assert found == path.read_text(), f"{name}'s SQL changed: if that is meant, rewrite the snapshots with GLIMPSE_UPDATE_SQL_SNAPSHOTS=1"


def test_no_snapshot_is_left_without_its_statement():
    assert sorted(path.stem for path in QUERIES.glob("*.sql")) == sorted(STATEMENTS)
