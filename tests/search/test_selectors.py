"""Exact orders on hand-made 384-d vectors: unit(a, b, c) has cosine a·a' + b·b' + c·c'."""
from datetime import date, timedelta

import numpy as np
import pytest
from django.utils import timezone

from catalog.models import Image
from embeddings.indexes import index_name
from embeddings.models import ModelVersion
from search.exceptions import InvalidQuery
from search.judgments import judged_queries_embed, judgment_record
from search.models import JudgedQuery
from search.relevance import MULTILINGUAL_KINDS, calibration_for, calibration_from_similarities, calibrations_from_similarities
from search.selectors import Filters, JudgedImages, checked_vector, image_search, judged_list
from tests.conftest import unit
from tests.plans import ranking_plan

QUERY = unit(1, 0, 0)


def titles(results):
    return [hit.image.title for hit in results.hits]


@pytest.fixture
def fruit(make_images):
    return make_images(
        [
            # image vector close to the query, text far: ranked by its text
            {"title": "near", "category": "a", "tags": ("red",), "image_vector": unit(1, 0.1), "text_vector": unit(0, 1)},
            {"title": "middle", "category": "b", "image_vector": unit(1, 0.5), "text_vector": unit(1, 0.2)},
            {"title": "far", "category": "a", "tags": ("red", "round"), "image_vector": unit(0, 1), "text_vector": unit(1, 0.9)},
            {"title": "opposite", "category": "b", "image_vector": unit(-1, 0.1)},
        ]
    )


def test_semantic_ranks_described_images_by_their_words_and_the_others_by_the_bridge(fruit):
    # Descriptions: middle 1 (0.98), far 2 (0.74), near 3 (0); without text, by the bridge:
    # opposite 1 (-0.995). Each list's first counts the same (the cut-off is what hides
    # opposite from a text query: test_each_kind_of_vector_is_cut_at_its_own_similarity).
    results = image_search(vector=QUERY, mode="semantic", include_distant=True)
    assert titles(results) == ["middle", "opposite", "far", "near"]
    assert [round(hit.score, 6) for hit in results.hits] == [round(1 / rank, 6) for rank in (61, 61, 62, 63)]
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
    assert titles(image_search(vector=QUERY, mode="semantic", filters=Filters(category="a"))) == ["far", "near"]
    assert titles(image_search(vector=QUERY, mode="semantic", filters=Filters(tags=("red", "round")))) == ["far"]
    Image.objects.filter(title="middle").update(created_at=timezone.now() - timedelta(days=10))
    today = date.today()
    assert titles(image_search(vector=QUERY, mode="semantic", filters=Filters(created_to=today - timedelta(days=5)))) == ["middle"]
    assert titles(image_search(vector=QUERY, mode="semantic", filters=Filters(created_from=today))) == ["far", "opposite", "near"]


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
        ({"text": "a", "offset": 100}, "results go 100 deep"),
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
    plan = ranking_plan(mode="hybrid", vector=checked_vector(QUERY), text="near", version=version, filters=filters)
    assert f"Index Scan using {index_name('text_vector', version)}" in plan
    assert f"Index Scan using {index_name('bare_vector', version)}" in plan
    if not filters:
        # With a filter the planner may start from the category index instead; both are fine.
        assert "catalog_image_search_document_gin" in plan


def test_keyword_matches_any_word_and_ranks_by_how_many_match(make_images):
    make_images(
        [
            {"title": "Green apple"},
            {"title": "Red car"},
            {"title": "Red apple", "tags": ("fruit",)},
            {"title": "Dog", "description": "running in the park"},
            {"title": "Pear"},
        ]
    )
    # Both words first; one-word matches tie on rank and go to the older image.
    assert titles(image_search(text="red apple", mode="keyword")) == ["Red apple", "Green apple", "Red car"]
    assert titles(image_search(text="a dog running", mode="keyword")) == ["Dog"]  # "a" is a stop word
    assert titles(image_search(text='"red apple"', mode="keyword")) == ["Red apple"]
    assert titles(image_search(text="red apple -car", mode="keyword")) == ["Red apple", "Green apple"]
    assert titles(image_search(text='apple -"green apple"', mode="keyword")) == ["Red apple"]
    assert titles(image_search(text="the a or", mode="keyword")) == []
    assert titles(image_search(text='car"wash or pear', mode="keyword")) == ["Pear"]


def test_a_partial_keyword_match_counts_by_the_share_of_words_it_holds(make_images):
    make_images(
        [
            {"title": "red apple", "image_vector": unit(0.2, 1)},
            {"title": "red car", "image_vector": unit(0.1, 1)},
            {"title": "picture", "image_vector": unit(1, 0.1)},
        ]
    )
    results = image_search(text="red apple", vector=QUERY, mode="hybrid", include_distant=True)
    # Vectors: picture 1, red apple 2, red car 3; keywords: red apple 1 (2 of 2 words), red car 2 (1 of 2).
    assert titles(results) == ["red apple", "red car", "picture"]
    assert [hit.score for hit in results.hits] == pytest.approx([1 / 62 + 1 / 61, 1 / 63 + 0.5 / 62, 1 / 61])


def test_keyword_results_say_how_many_words_they_match(make_images):
    make_images([{"title": "Green apple"}, {"title": "Red apple"}])
    results = image_search(text="red apple", mode="keyword")
    assert [(hit.label, hit.relevance) for hit in results.hits] == [("close", 1.0), ("related", 0.5)]
    assert (results.total, results.distant, results.nearest_only) == (2, 0, False)


def test_a_category_holds_its_subcategories_and_its_words_are_searchable(make_images):
    make_images(
        [
            {"title": "tabby", "category": "animals/housecats", "image_vector": unit(1, 0.1)},
            {"title": "lion", "category": "animals", "image_vector": unit(1, 0.2)},
            {"title": "pun", "category": "animalsfoo", "image_vector": unit(1, 0.3)},
            {"title": "rose", "category": "plants/roses", "image_vector": unit(1, 0.4)},
        ]
    )
    assert titles(image_search(vector=QUERY, mode="semantic", filters=Filters(category="animals"))) == ["tabby", "lion"]
    assert titles(image_search(vector=QUERY, mode="semantic", filters=Filters(category="animals/housecats"))) == ["tabby"]
    assert titles(image_search(vector=QUERY, mode="semantic", filters=Filters(category="anim"))) == []
    assert titles(image_search(text="housecats", mode="keyword")) == ["tabby"]
    assert titles(image_search(text="roses", mode="keyword")) == ["rose"]


def test_english_words_are_still_stemmed(make_images):
    make_images([{"title": "Red apple"}, {"title": "Pear", "tags": ("apples",)}])
    assert titles(image_search(text="apples", mode="keyword")) == ["Red apple", "Pear"]
    assert titles(image_search(text="apple", mode="keyword")) == ["Red apple", "Pear"]


@pytest.fixture
def cjk_titles(make_images):
    return make_images(
        [
            {"title": "黑猫在屋顶上"},  # a black cat on the roof
            {"title": "白い猫のイラスト"},  # an illustration of a white cat
            {"title": "白狗"},  # a white dog
            {"title": "고양이가 잔다"},  # the cat (고양이) sleeps; 가 marks the subject
        ]
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("猫", ["黑猫在屋顶上", "白い猫のイラスト"]),  # a single character matches wherever it stands
        ("黑猫", ["黑猫在屋顶上"]),
        ("屋顶", ["黑猫在屋顶上"]),
        ("猫在屋", ["黑猫在屋顶上"]),  # three characters: the phrase of two bigrams
        ("白猫", []),  # both characters are in 白い猫, but not next to each other
        ("白", ["白い猫のイラスト", "白狗"]),
        ("イラスト", ["白い猫のイラスト"]),  # katakana
        ("白い", ["白い猫のイラスト"]),  # kanji and hiragana
        ("猫のイラスト", ["白い猫のイラスト"]),
        ("ｲﾗｽﾄ", ["白い猫のイラスト"]),  # half-width katakana reads as the usual kind
        ("ネコ", []),  # a word in another script is another word
        ("고양이", ["고양이가 잔다"]),  # Korean, with the particle attached in the title
    ],
)
def test_a_chinese_japanese_or_korean_title_is_found_by_a_part_of_it(cjk_titles, text, expected):
    assert titles(image_search(text=text, mode="keyword")) == expected


def test_cjk_and_english_terms_mix_in_one_query_and_exclusions_work_for_both(make_images):
    make_images([{"title": "Red apple"}, {"title": "苹果树"}, {"title": "Red 苹果"}, {"title": "青苹果"}])  # apple tree, green apple
    # Both terms first; one-term matches tie on rank and go to the older image.
    assert titles(image_search(text="red 苹果", mode="keyword")) == ["Red 苹果", "Red apple", "苹果树", "青苹果"]
    assert titles(image_search(text='"red 苹果"', mode="keyword")) == ["Red 苹果"]
    assert titles(image_search(text="苹果 -苹果树", mode="keyword")) == ["Red 苹果", "青苹果"]
    assert titles(image_search(text="苹果 -青", mode="keyword")) == ["苹果树", "Red 苹果"]
    assert titles(image_search(text="red -苹果", mode="keyword")) == ["Red apple"]
    assert titles(image_search(text="苹果 -red", mode="keyword")) == ["苹果树", "青苹果"]


def test_a_cjk_term_counts_as_one_word_of_the_query(make_images):
    make_images([{"title": "Red 苹果树"}, {"title": "苹果树"}, {"title": "苹果"}])
    results = image_search(text="苹果树 red", mode="keyword")
    assert [(hit.image.title, hit.label, hit.relevance) for hit in results.hits] == [
        ("Red 苹果树", "close", 1.0),
        ("苹果树", "related", 0.5),
    ]


@pytest.mark.parametrize(
    "full, partial, text",
    [("red apple", "red car", "red apple"), ("红色 苹果", "红色 汽车", "红色 苹果"), ("red 苹果", "red 汽车", "red 苹果")],
)
def test_a_partial_cjk_match_weighs_as_much_as_a_partial_english_one(make_images, full, partial, text):
    make_images(
        [
            {"title": full, "image_vector": unit(0.2, 1)},
            {"title": partial, "image_vector": unit(0.1, 1)},
            {"title": "picture", "image_vector": unit(1, 0.1)},
        ]
    )
    results = image_search(text=text, vector=QUERY, mode="hybrid", include_distant=True)
    # As in test_a_partial_keyword_match_counts_by_the_share_of_words_it_holds: half a word list's weight.
    assert titles(results) == [full, partial, "picture"]
    assert [hit.score for hit in results.hits] == pytest.approx([1 / 62 + 1 / 61, 1 / 63 + 0.5 / 62, 1 / 61])


def test_a_query_that_no_keyword_matches_ranks_in_hybrid_exactly_as_in_semantic(make_images):
    make_images(
        [
            {"title": "青苹果", "image_vector": unit(1, 0.1)},  # green apple: holds 苹果 but not 红苹果
            {"title": "红 苹 果", "image_vector": unit(1, 0.5)},  # the characters, apart
            {"title": "red car", "image_vector": unit(0.5, 1)},
            {"title": "nothing", "image_vector": unit(0, 1)},
        ]
    )
    for text in ("红苹果", "blue 红苹果", "the"):
        assert titles(image_search(text=text, mode="keyword")) == []
        hybrid = image_search(text=text, vector=QUERY, mode="hybrid", include_distant=True)
        semantic = image_search(text=text, vector=QUERY, mode="semantic", include_distant=True)
        assert titles(hybrid) == ["青苹果", "红 苹 果", "red car", "nothing"]
        assert [(hit.image_id, hit.score, hit.label, hit.relevance) for hit in hybrid.hits] == [
            (hit.image_id, hit.score, hit.label, hit.relevance) for hit in semantic.hits
        ]
        assert [hit.score for hit in hybrid.hits] == pytest.approx([1 / 61, 1 / 62, 1 / 63, 1 / 64])


@pytest.fixture
def spread(make_images):
    # Cosines with QUERY: 0.995, 0.177, 0.0. The default calibration (evaluation data)
    # puts the cut-off at 0.171 and "close" at 0.196.
    return make_images(
        [
            {"title": "close", "image_vector": unit(1, 0.1)},
            {"title": "related", "image_vector": unit(0.18, 1)},
            {"title": "distant", "image_vector": unit(0, 1)},
        ]
    )


def test_results_under_the_cut_off_are_hidden_and_not_counted(spread):
    results = image_search(text="query", vector=QUERY, mode="semantic")
    assert titles(results) == ["close", "related"]
    assert [(hit.label, round(hit.relevance, 3), round(hit.similarity, 3)) for hit in results.hits] == [
        ("close", 1.0, 0.995),
        ("related", 0.395, 0.177),
    ]
    assert (results.total, results.distant, results.nearest_only) == (2, 1, False)
    everything = image_search(text="query", vector=QUERY, mode="semantic", include_distant=True)
    assert titles(everything) == ["close", "related", "distant"] and everything.total == 3
    assert everything.hits[2].label == "distant"


def test_with_nothing_close_the_nearest_are_shown_and_said_to_be(spread):
    results = image_search(text="猫", vector=unit(0, 0, 1), mode="semantic")
    # Counted as shown: three results, all of them distant.
    assert results.nearest_only and results.total == 3 and results.distant == 3 and not results.has_next
    assert len(results.hits) == 3 and {hit.label for hit in results.hits} == {"distant"}


def test_a_version_calibrated_on_judgments_uses_its_own_cut_off(spread, version):
    version.metrics = {"relevance": {"quantiles": [0.5] * 5 + [0.55] + [0.6] * 5, "cutoff": 0.5, "source": "judgments"}}
    version.save()
    results = image_search(text="query", vector=QUERY, mode="semantic")
    assert titles(results) == ["close"] and results.distant == 2


def test_each_kind_of_vector_is_cut_at_its_own_similarity(make_images, version):
    # A description cosine of 0.29 is unrelated words; a bridge cosine of 0.29 a fitting picture.
    version.metrics = {
        "relevance": {
            "image": {"quantiles": [0.2] * 5 + [0.25] + [0.3] * 5, "cutoff": 0.2, "source": "judgments"},
            "text": {"quantiles": [0.5] * 5 + [0.6] + [0.7] * 5, "cutoff": 0.5, "source": "judgments"},
            "neighbour": {"quantiles": [0.35] * 5 + [0.4] + [0.45] * 5, "cutoff": 0.35, "source": "judgments"},
        }
    }
    version.save()
    make_images(
        [
            {"title": "bridge 0.29", "image_vector": unit(0.3, 1)},
            # Its bridge vector would be close, but it is ranked, and judged, by its description.
            {"title": "description 0.29", "image_vector": unit(0.3, 1), "text_vector": unit(0.3, 1)},
            {"title": "description 0.60", "image_vector": unit(0, 1), "text_vector": unit(0.75, 1)},
            {"title": "borrowed 0.37", "image_vector": unit(0, 1), "neighbour_vector": unit(0.4, 1)},
            {"title": "nothing", "image_vector": unit(0, 1)},
        ]
    )
    results = image_search(text="query", vector=QUERY, mode="semantic", include_distant=True)
    labels = {hit.image.title: (hit.label, round(hit.similarity, 3)) for hit in results.hits}
    assert labels == {
        "bridge 0.29": ("close", 0.287),
        "description 0.29": ("distant", 0.287),
        "description 0.60": ("close", 0.6),
        "borrowed 0.37": ("related", 0.371),
        "nothing": ("distant", 0.0),
    }
    shown = image_search(text="query", vector=QUERY, mode="semantic")
    assert sorted(titles(shown)) == ["borrowed 0.37", "bridge 0.29", "description 0.60"] and shown.distant == 2


def test_before_any_judgment_each_kind_has_its_own_default_cut_off(make_images):
    # The defaults (evaluation data): bridge 0.171, description 0.259, borrowed 0.329. One
    # cosine of 0.25 is a related picture through the bridge and unrelated words elsewhere.
    make_images(
        [
            {"title": "bridge 0.25", "image_vector": unit(0.26, 1)},
            {"title": "description 0.25", "image_vector": unit(0, 1), "text_vector": unit(0.26, 1)},
            {"title": "borrowed 0.25", "image_vector": unit(0, 1), "neighbour_vector": unit(0.26, 1)},
            {"title": "description 0.30", "image_vector": unit(0, 1), "text_vector": unit(0.32, 1)},
        ]
    )
    results = image_search(text="猫", vector=QUERY, mode="semantic")
    assert sorted(titles(results)) == ["bridge 0.25", "description 0.30"] and results.distant == 2
    assert {hit.image.title: hit.label for hit in results.hits} == {"bridge 0.25": "close", "description 0.30": "related"}


def test_a_kind_without_its_own_calibration_falls_back_to_the_default(make_images, version, settings):
    settings.GLIMPSE_RELEVANCE_DEFAULT = {
        "image": {"quantiles": [0.1] * 11, "cutoff": 0.1},
        "text": {"quantiles": [0.5] * 11, "cutoff": 0.5},
        "neighbour": {"quantiles": [0.3] * 11, "cutoff": 0.3},
    }
    version.metrics = {"relevance": {"image": {"quantiles": [0.8] * 11, "cutoff": 0.8, "source": "judgments"}}}
    version.save()
    make_images(
        [
            {"title": "bridge 0.29", "image_vector": unit(0.3, 1)},
            {"title": "description 0.60", "image_vector": unit(0, 1), "text_vector": unit(0.75, 1)},
        ]
    )
    # The image kind's own cut-off (0.8) hides the first; the text kind's default (0.5) passes the second.
    assert titles(image_search(text="query", vector=QUERY, mode="semantic")) == ["description 0.60"]


def test_a_zero_shot_version_falls_back_to_its_own_defaults(version, settings):
    settings.GLIMPSE_RELEVANCE_DEFAULT = {kind: {"quantiles": [0.1] * 11, "cutoff": 0.1} for kind in ("image", "text", "neighbour")}
    settings.GLIMPSE_RELEVANCE_DEFAULT_ZERO_SHOT = {"image": {"quantiles": [0.0] * 11, "cutoff": 0.02}}
    settings.GLIMPSE_RELEVANCE_DEFAULT_MULTILINGUAL = {kind: {"quantiles": [0.8] * 11, "cutoff": 0.8} for kind in MULTILINGUAL_KINDS}
    zero_shot = ModelVersion(number=2, kind=ModelVersion.Kind.ZERO_SHOT)
    multilingual = {kind: 0.8 for kind in MULTILINGUAL_KINDS}  # the multilingual tower's defaults, whatever the version's kind
    assert {kind: calibration.cutoff for kind, calibration in calibration_for(zero_shot).kinds.items()} == {"image": 0.02, "text": 0.1, "neighbour": 0.1} | multilingual
    assert {kind: calibration.cutoff for kind, calibration in calibration_for(version).kinds.items()} == {"image": 0.1, "text": 0.1, "neighbour": 0.1} | multilingual


def test_a_query_close_to_a_judged_one_gets_its_graded_images_at_once(spread, curator, version):
    close, related, distant = spread
    judgment_record(curator=curator, image_id=distant.id, grade=3, query_text="kitten", query_text_vector=unit(0, 0, 1))
    judgment_record(curator=curator, image_id=related.id, grade=1, query_text="kitten", query_text_vector=unit(0, 0, 1))
    # cosine(raw, kitten) = 0.958 >= 0.9: the graded images join the fusion, by grade;
    # only the relevant one (grade >= 2) counts as judged and close.
    results = image_search(text="kitten photo", vector=QUERY, raw_vector=unit(0, 0.3, 1), mode="semantic")
    assert titles(results) == ["distant", "related", "close"]
    assert [(hit.judged, hit.label) for hit in results.hits] == [(True, "close"), (False, "related"), (False, "close")]
    assert results.hits[0].score == pytest.approx(1 / 61 + 1 / 63)
    assert results.hits[1].score == pytest.approx(1 / 62 + 1 / 62)
    # A query that is not close enough gets nothing from it.
    far = image_search(text="tractor", vector=QUERY, raw_vector=unit(0, 1, 0.3), mode="semantic")
    assert titles(far) == ["close", "related"]
    assert judged_list(raw_vector=checked_vector(unit(0, 0, 1)), filters=Filters()) == JudgedImages(
        lent=(distant.id, related.id), relevant=frozenset({distant.id}), rejected={}
    )
    assert judged_list(raw_vector=checked_vector(unit(0, 0, 1)), filters=Filters(category="other")) == JudgedImages()


def test_one_curators_grade_0_hides_nothing_from_visitors(spread, curator, version):
    close, related, distant = spread
    judgment_record(curator=curator, image_id=close.id, grade=0, query_text="kitten", query_text_vector=unit(0, 0, 1))
    results = image_search(text="kitten photo", vector=QUERY, raw_vector=unit(0, 0.3, 1), mode="semantic")
    assert [(hit.image.title, hit.label, hit.hidden_by) for hit in results.hits] == [("close", "close", 0), ("related", "related", 0)]


def test_a_picture_is_hidden_from_visitors_once_two_curators_graded_it_0(spread, curator, django_user_model, version):
    close, related, distant = spread
    second = django_user_model.objects.create_user("second curator", is_staff=True)
    second.user_permissions.add(*curator.user_permissions.all())
    second = django_user_model.objects.get(id=second.id)
    judgment_record(curator=curator, image_id=close.id, grade=0, query_text="kitten", query_text_vector=unit(0, 0, 1))
    judgment_record(curator=second, image_id=close.id, grade=0, query_text="kittens", query_text_vector=unit(0, 0.1, 1))
    judgment_record(curator=curator, image_id=related.id, grade=0, query_text="kitten", query_text_vector=unit(0, 0, 1))
    judgment_record(curator=second, image_id=related.id, grade=0, query_text="kitten", query_text_vector=unit(0, 0, 1))
    judgment_record(curator=curator, image_id=related.id, grade=2, query_text="kittens", query_text_vector=unit(0, 0.1, 1))
    ask = {"text": "kitten photo", "vector": QUERY, "raw_vector": unit(0, 0.3, 1), "mode": "semantic"}
    # close: graded 0 by two curators over two close queries, higher by none: hidden from
    # visitors. related: 0 twice for one close query but 2 for another, so it stays.
    visitors = image_search(**ask)
    assert [(hit.image.title, hit.hidden_by) for hit in visitors.hits] == [("related", 0)]
    assert (visitors.total, visitors.distant) == (1, 1)  # "distant" only: the hidden one is not offered
    # Not even with the distant results shown.
    shown = image_search(**ask, include_distant=True)
    assert [(hit.image.title, hit.label, hit.hidden_by) for hit in shown.hits] == [("related", "close", 0), ("distant", "distant", 0)]
    # A curator's search keeps it where it ranks (related is lent by its grade 2), marked, with its own label.
    curators = image_search(**ask, show_hidden=True)
    assert [(hit.image.title, hit.label, hit.hidden_by) for hit in curators.hits] == [("related", "close", 0), ("close", "close", 2)]
    # One curator taking the 0 back shows it to visitors again (now lent by its grade 1 too).
    judgment_record(curator=second, image_id=close.id, grade=1, query_text="kittens", query_text_vector=unit(0, 0.1, 1))
    assert [hit.image.title for hit in image_search(**ask).hits] == ["close", "related"]
    assert titles(image_search(text="tractor", vector=QUERY, raw_vector=unit(0, 1, 0.3), mode="semantic")) == ["close", "related"]


def test_the_number_of_curators_that_hides_a_picture_is_a_setting(spread, curator, version, settings):
    settings.GLIMPSE_HIDE_AFTER_CURATORS = 1
    close, _, _ = spread
    judgment_record(curator=curator, image_id=close.id, grade=0, query_text="kitten", query_text_vector=unit(0, 0, 1))
    assert judged_list(raw_vector=checked_vector(unit(0, 0, 1)), filters=Filters()).rejected == {close.id: 1}
    assert titles(image_search(text="kitten photo", vector=QUERY, raw_vector=unit(0, 0.3, 1), mode="semantic")) == ["related"]
    # Nor is it among the nearest shown when nothing passes the cut-off.
    nearest = image_search(text="kitten photo", vector=unit(0, 0, 0, 1), raw_vector=unit(0, 0.3, 1), mode="semantic")
    assert nearest.nearest_only and sorted(titles(nearest)) == ["distant", "related"]


def test_judged_queries_get_their_vectors_from_the_embedding_job(spread, curator):
    judgment_record(curator=curator, image_id=spread[2].id, grade=2, query_text="Kitten ")
    assert JudgedQuery.objects.get().vector is None
    assert judged_queries_embed(encode=lambda texts: np.stack([unit(0, 0, 1) for _ in texts])) == 1
    assert judged_queries_embed(encode=lambda texts: 1 / 0) == 0  # nothing left to embed
    assert (JudgedQuery.objects.get().text, list(JudgedQuery.objects.get().vector[:3])) == ("Kitten", [0, 0, 1])


def test_the_cut_off_best_separates_relevant_results_from_the_rest():
    relevant = np.array([0.5] * 10 + [0.6] * 10)
    others = np.array([0.1] * 10 + [0.55] * 2)
    calibration = calibration_from_similarities(relevant, others, source="test")
    assert (calibration.cutoff, calibration.close, calibration.quantiles[0], calibration.quantiles[-1]) == (0.5, 0.55, 0.5, 0.6)
    assert calibration_from_similarities(relevant[:19], others, source="test") is None  # too few to say
    assert calibration_from_similarities(relevant, others[:0], source="test") is None
    kinds = calibrations_from_similarities({"image": (relevant, others), "text": (relevant[:19], others)}, source="test")
    assert set(kinds.kinds) == {"image"} and kinds.kinds["image"] == calibration
    assert calibrations_from_similarities({"text": (relevant[:19], others)}, source="test") is None
