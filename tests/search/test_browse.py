"""Browsing by filters alone: a category, a tag or some days, with no words, lists what
they let through, newest first, on the site and in the API. Such a request used to be
refused ("Type something to search for"), and a reversed date range found nothing."""
import re
from datetime import datetime, timezone

import pytest
from django.urls import reverse

from catalog.models import Image
from search.models import QueryLog

API = "/api/search"


@pytest.fixture
def catalog(make_images):
    images = make_images(
        [
            {"title": "Red apple", "category": "food/fruit", "tags": ("apple", "fruit")},
            {"title": "Cake", "category": "food", "tags": ("cake",)},
            {"title": "Guitar", "category": "music", "tags": ("instrument",)},
            {"title": "Green apple", "category": "food/fruit", "tags": ("apple", "fruit")},
            {"title": "Stop sign", "category": "signs_and_symbols/signs_and_symbols", "tags": ("sign",)},
        ]
    )
    for image, day in zip(images, (1, 2, 3, 4, 5)):
        Image.objects.filter(id=image.id).update(created_at=datetime(2024, 3, day, 12, tzinfo=timezone.utc))
    return images


def titles(body: dict) -> list[str]:
    return [result["title"] for result in body["results"]]


def page_titles(page: str) -> list[str]:
    return re.findall(r'<div class="title" title="[^"]*">([^<]*)</div>', page)


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"category": "food"}, ["Green apple", "Cake", "Red apple"]),  # "food" holds "food/fruit"
        ({"category": "food/fruit"}, ["Green apple", "Red apple"]),
        ({"tag": "fruit"}, ["Green apple", "Red apple"]),
        ({"tag": "apple, fruit", "category": "food"}, ["Green apple", "Red apple"]),
        ({"created_from": "2024-03-02", "created_to": "2024-03-03"}, ["Guitar", "Cake"]),
        ({"created_from": "2024-03-04"}, ["Stop sign", "Green apple"]),
        ({"created_to": "2024-03-01"}, ["Red apple"]),
        ({"tag": "nothing-has-this"}, []),
    ],
)
def test_filters_alone_list_what_they_let_through_newest_first(client, catalog, params, expected):
    body = client.get(API, params).json()
    assert (titles(body), body["mode"], body["total"], body["query"]) == (expected, "newest", len(expected), "")
    page = client.get(reverse("search:page"), params)
    assert page.status_code == 200
    assert page_titles(page.content.decode()) == expected
    assert not QueryLog.objects.exists()  # browsing is no search to analyse


def test_browsing_pages_like_a_search(client, catalog):
    first = client.get(API, {"category": "food", "limit": 2}).json()
    second = client.get(API, {"category": "food", "limit": 2, "page": 2}).json()
    assert (titles(first), first["has_next"]) == (["Green apple", "Cake"], True)
    assert (titles(second), second["has_next"]) == (["Red apple"], False)


def test_a_reversed_date_range_is_a_clear_message_not_zero_results(client, catalog):
    message = "the dates are the wrong way round: from 2024-03-05 is after to 2024-03-01; swap them"
    for params in ({"created_from": "2024-03-05", "created_to": "2024-03-01"}, {"q": "apple", "created_from": "2024-03-05", "created_to": "2024-03-01"}):
        response = client.get(API, params)
        assert response.status_code == 400
        assert response.json() == {"error": {"code": "invalid_query", "message": message, "field": None}}
        page = client.get(reverse("search:page"), params)
        assert page.status_code == 400 and page.context["error"] == message
    assert not QueryLog.objects.exists()


def test_a_pictures_tags_link_to_the_tag_filter(client, catalog):
    page = client.get(reverse("search:image", args=[catalog[0].id])).content.decode()
    assert re.findall(r'<a class="chip" href="([^"]+)">', page) == ["/?tag=apple", "/?tag=fruit"]
    browsed = client.get("/?tag=apple").content.decode()
    assert page_titles(browsed) == ["Green apple", "Red apple"]


def test_the_category_menu_reads_as_nested_names(client, catalog):
    page = client.get(reverse("search:page")).content.decode()
    menu = re.search(r'<select name="category"[^>]*>(.*?)</select>', page, re.S).group(1)
    options = re.findall(r'<option value="([^"]*)" ?(?:selected)?>([^<]*)</option>', menu)
    assert options == [
        ("", "any category"),
        ("food", "food"),
        ("food/fruit", "&nbsp;&nbsp;&nbsp;› fruit"),
        ("music", "music"),
        ("signs_and_symbols", "signs and symbols"),
        ("signs_and_symbols/signs_and_symbols", "&nbsp;&nbsp;&nbsp;› other"),
    ]
    chips = re.findall(r'<a class="chip" href="(\?category=[^"]+)">', page)
    assert chips == ["?category=food", "?category=music", "?category=signs_and_symbols"]
    chosen = client.get(reverse("search:page"), {"category": "food/fruit"}).content.decode()
    assert '<option value="food/fruit" selected>' in chosen
