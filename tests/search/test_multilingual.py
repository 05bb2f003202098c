"""Search in any language: the English tower's lists weighed by how English the query is,
the multilingual tower's lists for every query, on hand-made vectors and on real towers,
and the new-version path that gives an existing catalog the tower."""
import json
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from catalog.models import Image
from catalog.services import ImageInput, images_create
from embeddings.indexes import index_name
from embeddings.models import ImageEmbedding, ModelVersion
from embeddings.services import images_embed
from search.judgments import judgment_record
from search.multilingual import multilingual_release, multilingual_version_create
from search.selectors import Filters, fused_ranking, image_search, judged_list
from tests.conftest import unit
from tests.images import DEMO
from tests.timeouts import timeout  # noqa: F401

ENGLISH_QUERY, MULTILINGUAL_QUERY = unit(1, 0), unit(0, 0, 1)


@pytest.fixture
def two_spaces(make_images):
    """Three described pictures whose words agree in neither space: the English tower puts
    "english first" nearest the English query, the multilingual tower "multilingual first"
    nearest the multilingual one."""
    return make_images(
        [
            {"title": "english first", "image_vector": unit(1), "text_vector": unit(1, 0.1),
             "multilingual_image_vector": unit(0, 1), "multilingual_text_vector": unit(0, 0, 0.2, 1)},
            {"title": "multilingual first", "image_vector": unit(1), "text_vector": unit(1, 1),
             "multilingual_image_vector": unit(0, 1), "multilingual_text_vector": unit(0, 0, 1, 0.1)},
            {"title": "neither", "image_vector": unit(1), "text_vector": unit(0, 1),
             "multilingual_image_vector": unit(0, 1), "multilingual_text_vector": unit(0, 1)},
        ]
    )


def ranked_titles(**query) -> list[str]:
    version = ModelVersion.objects.get(number=1)
    title = dict(Image.objects.values_list("id", "title"))
    return [title[image_id] for image_id, _ in fused_ranking(mode="semantic", text="", version=version, filters=Filters(), **query)]


def test_a_new_catalogs_first_version_speaks_every_language(db):
    version = ModelVersion.objects.get(number=1)
    assert version.multilingual_text_model == settings.GLIMPSE_MULTILINGUAL_TEXT_MODEL == "intfloat/multilingual-e5-small"
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'embeddings_imageembedding'")
        indexes = {row[0] for row in cursor.fetchall()}
    assert {index_name("multilingual_text_vector", version), index_name("multilingual_bare_vector", version)} <= indexes


def test_a_query_the_english_tower_cannot_read_ranks_by_the_multilingual_lists_alone(two_spaces):
    assert ranked_titles(vector=None, multilingual=MULTILINGUAL_QUERY, english=0.0) == ["multilingual first", "english first", "neither"]


def test_an_english_query_ranks_by_both_towers_lists(two_spaces):
    # Each picture is first in one tower's list and second in the other's: equal weights tie
    # them (the older first); weighing the English lists down hands the lead to the other.
    both = fused_ranking(mode="semantic", text="", version=ModelVersion.objects.get(number=1), filters=Filters(),
                         vector=ENGLISH_QUERY, multilingual=MULTILINGUAL_QUERY, english=1.0)
    scores = [round(score, 9) for _, score in both]
    assert scores[0] == scores[1] == round(1 / 61 + 1 / 62, 9)
    assert ranked_titles(vector=ENGLISH_QUERY, multilingual=MULTILINGUAL_QUERY, english=0.5)[0] == "multilingual first"
    assert ranked_titles(vector=ENGLISH_QUERY, multilingual=None, english=1.0) == ["english first", "multilingual first", "neither"]


def test_a_version_without_the_tower_ignores_a_multilingual_vector(two_spaces):
    ModelVersion.objects.filter(number=1).update(multilingual_text_model="")
    assert ranked_titles(vector=None, multilingual=MULTILINGUAL_QUERY, english=0.0) == []


def test_near_identical_judged_queries_are_found_through_the_multilingual_tower(make_images, curator):
    from search.models import JudgedQuery

    (image,) = make_images([{"title": "一只猫", "image_vector": unit(1)}])
    judgment_record(curator=curator, image_id=image.id, grade=3, query_text="猫", query_text_vector=unit(1))
    JudgedQuery.objects.update(multilingual_vector=unit(0, 1))
    assert judged_list(raw_vector=unit(0.2, 1), filters=Filters(), multilingual=True).lent == (image.id,)  # cosine 0.98
    assert judged_list(raw_vector=unit(0.5, 1), filters=Filters(), multilingual=True).lent == ()  # 0.89: another query


def demo_rows(*, categories: tuple[str, ...], per_category: int) -> list[dict]:
    rows = [json.loads(line) for line in Path(DEMO, "data.jsonl").read_text(encoding="utf-8").splitlines()]
    chosen = []
    for category in categories:
        chosen += [row for row in rows if row["category"].startswith(category)][:per_category]
    return chosen


def embedded_demo(categories: tuple[str, ...], per_category: int = 4) -> dict[int, str]:
    """Demo drawings with their English titles, embedded by the real towers: {id: category}."""
    rows = demo_rows(categories=categories, per_category=per_category)
    items = [
        ImageInput(content=Path(DEMO, row["file"]).read_bytes(), title=row["title"], description=row["description"], tags=row["tags"], category=row["category"])
        for row in rows
    ]
    created = images_create(items=items).created
    images_embed(image_ids=[image.id for image in created])
    return {image.id: image.category for image in created}


CATEGORIES = ("animals/housecats", "animals/dogs", "recreation/music", "food/fruit")


@pytest.mark.slow
def test_queries_in_other_languages_find_pictures_described_in_english(db, timeout):
    category_of = embedded_demo(CATEGORIES)
    for query, expected in {"猫": "animals/housecats", "Katze": "animals/housecats", "кошка": "animals/housecats",
                            "狗": "animals/dogs", "Hund": "animals/dogs", "a dog": "animals/dogs", "吉他": "recreation/music", "Gitarre": "recreation/music"}.items():
        results = image_search(text=query, include_distant=True, limit=3)
        assert [category_of[hit.image_id] for hit in results.hits][:1] == [expected], query


def english_only_catalog(categories: tuple[str, ...]) -> dict[int, str]:
    """A catalog embedded before the multilingual tower existed."""
    ModelVersion.objects.filter(number=1).update(multilingual_text_model="")
    return embedded_demo(categories, per_category=3)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)  # indexes are made outside a transaction, as in production
def test_an_existing_catalog_gets_the_tower_as_a_new_released_version(curator, timeout):
    category_of = english_only_catalog(CATEGORIES)
    assert not ImageEmbedding.objects.filter(multilingual_image_vector__isnull=False).exists()
    cat = next(image_id for image_id, category in category_of.items() if "housecats" in category)
    judgment_record(curator=curator, image_id=cat, grade=3, query_text="a cat")
    version = multilingual_version_create(queue=False)
    assert (version.number, version.state, version.multilingual_text_model) == (2, "backfilling", settings.GLIMPSE_MULTILINGUAL_TEXT_MODEL)

    released = multilingual_release(version=version)

    assert released.state == "active" and "released: judged nDCG@10" in released.notes and "on 1 queries" in released.notes
    base_rows = ImageEmbedding.objects.filter(version__number=1)
    assert not base_rows.filter(multilingual_image_vector__isnull=True).exists()  # the base rows keep the tower's vectors
    assert not ImageEmbedding.objects.filter(version=released, multilingual_text_vector__isnull=True).exists()  # every picture has a title
    top = image_search(text="猫", include_distant=True, limit=1)
    assert top.version == released and category_of[top.hits[0].image_id] == "animals/housecats"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_command_refuses_a_version_that_has_the_tower_and_releases_one_that_lacks_it(capsys, timeout):
    with pytest.raises(Exception, match="v1 already has the multilingual tower intfloat/multilingual-e5-small"):
        call_command("multilingual_version")
    english_only_catalog(("food",))
    call_command("multilingual_version", "--here")
    assert capsys.readouterr().out == "v2 is active: v1 with the multilingual text tower intfloat/multilingual-e5-small; released: no judged query to compare on\n"
    vectors = np.array(list(ImageEmbedding.objects.values_list("multilingual_image_vector", flat=True)), dtype=float)
    assert len(vectors) == 2 * 3 and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-3)  # v1's rows and v2's


@pytest.mark.slow
def test_evaluate_judgments_ranks_a_query_in_another_language_as_search_does(curator, capsys, timeout):
    category_of = embedded_demo(("animals/housecats", "food/fruit"), per_category=3)
    cat = next(image_id for image_id, category in category_of.items() if "housecats" in category)
    judgment_record(curator=curator, image_id=cat, grade=3, query_text="Katze")
    call_command("evaluate_judgments", "--json")
    report = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert report["queries"] == 1 and report["nDCG@10"] > 0.6, report  # the cat is found by the multilingual tower


@pytest.mark.slow
def test_single_queries_get_the_same_vectors_as_batches(db):
    from embeddings import encoders

    texts = ["a red apple", "猫"]
    assert np.allclose(encoders.query_encoder().encode(texts), encoders.text_encoder().encode(texts), atol=1e-4)
    assert np.allclose(encoders.multilingual_query_encoder().encode(texts), encoders.multilingual_encoder().encode(texts), atol=1e-4)


def test_evaluate_judgments_names_a_missing_version_and_says_when_nothing_is_judged(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="there is no version 7"):
        call_command("evaluate_judgments", "--model-version", "7")
    with pytest.raises(CommandError, match="there are no judged text queries yet"):
        call_command("evaluate_judgments")
