"""GLIMPSE_TEXT_SEARCH_LANGUAGE on the real database: migrate maps the configuration
`glimpse` like the one the setting names and stores every search document again, once."""
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from catalog.text_search import text_search_language_apply
from search.selectors import image_search


def migrate() -> str:
    output = StringIO()
    call_command("migrate", stdout=output)
    return output.getvalue()


def found(text: str) -> list[str]:
    return [hit.image.title for hit in image_search(text=text, mode="keyword").hits]


def test_switching_to_german_stems_german_words_and_back(make_images, settings):
    make_images([{"title": "Häuser am See"}, {"title": "Red apples"}, {"title": "黑猫"}])
    assert found("Haus") == []  # english leaves "häuser" as it is

    settings.GLIMPSE_TEXT_SEARCH_LANGUAGE = "german"
    assert "Storing the search documents in german: 0 of 3\nStoring the search documents in german: 3 of 3\n" in migrate()
    assert found("Haus") == ["Häuser am See"]  # both stem to "haus"
    assert found("猫") == ["黑猫"]
    assert "Storing" not in migrate()  # nothing left to do

    settings.GLIMPSE_TEXT_SEARCH_LANGUAGE = "english"
    assert "Storing the search documents in english: 3 of 3\n" in migrate()
    assert found("Haus") == []
    assert found("apple") == ["Red apples"]


def test_documents_are_stored_again_batch_by_batch(make_images, settings):
    make_images([{"title": "apples"}, {"title": "apple"}, {"title": "pear"}])
    settings.GLIMPSE_TEXT_SEARCH_LANGUAGE = "simple"
    seen = []
    assert text_search_language_apply(progress=lambda done, total: seen.append((done, total)), batch_size=2)
    assert seen == [(0, 3), (2, 3), (3, 3)]
    assert found("apples") == ["apples"]  # simple stems nothing
    assert not text_search_language_apply(progress=lambda done, total: seen.append((done, total)))
    assert len(seen) == 3


def test_an_unknown_language_is_refused_with_the_known_ones(db, settings):
    settings.GLIMPSE_TEXT_SEARCH_LANGUAGE = "klingon"
    message = r"GLIMPSE_TEXT_SEARCH_LANGUAGE='klingon': PostgreSQL has no such text search configuration; use one of arabic, .*german, .*simple, "
    with pytest.raises(ImproperlyConfigured, match=message):
        migrate()
