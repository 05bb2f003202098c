"""Exact orders on hand-made 384-d vectors: unit(a, b, c) has cosine a·a' + b·b' + c·c'."""
from datetime import date, timedelta

import pytest
from django.utils import timezone

from catalog.models import Image
from embeddings.indexes import index_name
from search.exceptions import InvalidQuery
from search.selectors import CANDIDATES, Filters, image_search, vector_literal
from tests.conftest import unit
from tests.plans import ranking_plan

QUERY = unit(1, 0, 0)


def titles(results):
    return [hit.image.title for hit in results.hits]


@pytest.fixture
def fruit(make_images):
    return make_images(
        [
            # image vector close to the query, text far
            {"title": "near", "category": "a", "tags": ("red",), "image_vector": unit(1, 0.1), "text_vector": unit(0, 1)},
            {"title": "middle", "category": "b", "image_vector": unit(1, 0.5), "text_vector": unit(1, 0.2)},
            {"title": "far", "category": "a", "tags": ("red", "round"), "image_vector": unit(0, 1), "text_vector": unit(1, 0.9)},
            {"title": "opposite", "category": "b", "image_vector": unit(-1, 0.1)},
        ]
    )


def test_semantic_fuses_image_and_text_vector_ranks(fruit):
    # image ranks: near 1, middle 2, far 3, opposite 4; text ranks: middle 1, far 2, near 3.
    results = image_search(vector=QUERY, mode="semantic", include_distant=True)
    assert titles(results) == ["middle", "near", "far", "opposite"]
    assert [round(hit.score, 6) for hit in results.hits] == [
        round(1 / 62 + 1 / 61, 6),
        round(1 / 61 + 1 / 63, 6),
        round(1 / 63 + 1 / 62, 6),
        round(1 / 64, 6),
    ]
    assert results.total == 4 and results.mode == "semantic" and results.version.number == 1


def test_keyword_ranks_by_full_text_with_title_weighted_above_tags(make_images):
    make_images(
        [
            {"title": "Apple tree", "description": "an orchard"},
            {"title": "Orchard", "tags": ("apple",)},
            {"title": "Pear", "description": "no match here"},
        ]
    )
    assert titles(image_search(text="apple", mode="keyword")) == ["Apple tree", "Orchard"]
    assert titles(image_search(text="apple -tree", mode="keyword")) == ["Orchard"]
    assert titles(image_search(text="banana", mode="keyword")) == []


def test_hybrid_adds_the_keyword_list(make_images):
    make_images(
        [
            {"title": "close picture", "image_vector": unit(1, 0.1)},
            {"title": "second picture", "image_vector": unit(1, 0.3)},
            {"title": "word match", "image_vector": unit(0, 1)},
        ]
    )
    # vectors: close 1, second 2, word 3; keyword list: only "word" (rank 1).
    results = image_search(text="word", vector=QUERY, mode="hybrid")
    assert titles(results) == ["word match", "close picture", "second picture"]
    assert titles(image_search(text="word", vector=QUERY, mode="semantic")) == ["close picture", "second picture", "word match"]


def test_filters_by_category_tags_and_date(fruit):
    assert titles(image_search(vector=QUERY, mode="semantic", filters=Filters(category="a"))) == ["near", "far"]
    assert titles(image_search(vector=QUERY, mode="semantic", filters=Filters(tags=("red", "round")))) == ["far"]
    Image.objects.filter(title="middle").update(created_at=timezone.now() - timedelta(days=10))
    today = date.today()
    assert titles(image_search(vector=QUERY, mode="semantic", filters=Filters(created_to=today - timedelta(days=5)))) == ["middle"]
    assert titles(image_search(vector=QUERY, mode="semantic", filters=Filters(created_from=today))) == ["near", "far", "opposite"]


def test_a_filter_matching_one_percent_still_fills_the_page(make_images):
    # 1000 images, 10 in the rare category and all of them far from the query, so a
    # plain post-filtered HNSW scan (ef_search candidates) would return none of them.
    specs = [{"title": f"common {n}", "category": "common", "image_vector": unit(1, n / 1000)} for n in range(990)]
    specs += [{"title": f"rare {n}", "category": "rare", "image_vector": unit(0.2, 1, n / 10)} for n in range(10)]
    make_images(specs)
    results = image_search(vector=QUERY, mode="semantic", filters=Filters(category="rare"), limit=10)
    assert titles(results) == [f"rare {n}" for n in range(10)]


def test_pages_are_stable_and_do_not_overlap(make_images):
    make_images([{"title": f"n{n:02d}", "image_vector": unit(1, n / 50)} for n in range(30)])
    first = image_search(vector=QUERY, mode="semantic", limit=10)
    second = image_search(vector=QUERY, mode="semantic", limit=10, offset=10)
    both = image_search(vector=QUERY, mode="semantic", limit=20)
    assert titles(first) + titles(second) == titles(both) == [f"n{n:02d}" for n in range(20)]
    assert first.total == 30


def test_near_duplicates_collapse_behind_the_higher_ranked_one(make_images):
    make_images(
        [
            {"title": "original", "image_vector": unit(1, 0.1)},
            {"title": "copy", "image_vector": unit(1, 0.101)},
            {"title": "other", "image_vector": unit(1, 0.8)},
        ]
    )
    results = image_search(vector=QUERY, mode="semantic", collapse_distance=0.01)
    assert titles(results) == ["original", "other"]
    assert results.collapsed == 1


def test_more_like_this_can_exclude_the_image_itself(fruit):
    near = fruit[0]
    results = image_search(vector=unit(1, 0.1), mode="semantic", exclude_id=near.id)
    assert near.id not in results.image_ids


def test_images_without_vectors_for_the_version_are_not_ranked(make_images):
    make_images([{"title": "embedded", "image_vector": unit(1)}, {"title": "pending"}])
    assert titles(image_search(vector=QUERY, mode="semantic")) == ["embedded"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"text": "   "}, "type something to search for"),
        ({"text": "x" * 201}, "the query is 201 characters; the limit is 200"),
        ({"text": "a", "mode": "fuzzy"}, "unknown mode 'fuzzy'"),
        ({"text": "a", "limit": 0}, "limit must be between 1 and 100"),
        ({"text": "a", "offset": CANDIDATES}, "results go 100 deep"),
    ],
)
def test_bad_queries_raise_a_readable_error(db, kwargs, message):
    with pytest.raises(InvalidQuery, match=message):
        image_search(mode=kwargs.pop("mode", "keyword"), **kwargs)


def test_odd_characters_are_just_text(make_images):
    make_images([{"title": "C++ & SQL; DROP TABLE"}])
    for text in ["'; DROP TABLE catalog_image; --", "C++ & SQL", '"unbalanced', "ß∂ƒ 漢字 🍎", "OR OR -"]:
        image_search(text=text, mode="keyword")
    assert titles(image_search(text="SQL", mode="keyword")) == ["C++ & SQL; DROP TABLE"]


@pytest.mark.parametrize("filters", [Filters(), Filters(category="a")])
def test_the_ranking_statement_uses_the_hnsw_indexes(fruit, version, filters):
    plan = ranking_plan(mode="hybrid", vector=vector_literal(QUERY), text="near", version=version, filters=filters)
    assert f"Index Scan using {index_name('image_vector', version)}" in plan
    assert f"Index Scan using {index_name('text_vector', version)}" in plan
    if not filters:
        # With a filter the planner may start from the category index instead; both are fine.
        assert "catalog_image_search_document_gin" in plan
