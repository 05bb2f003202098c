import re

import pytest
from django.urls import reverse

from search.models import QueryLog
from tests.conftest import unit
from tests.images import banner_png, image_bytes
from tests.memory import MB, peak_memory
from tests.timeouts import timeout  # noqa: F401

API = "/api/search"


@pytest.fixture
def catalog(make_images):
    return make_images(
        [
            {"title": "Red apple", "category": "food", "tags": ("fruit",), "image_vector": unit(1, 0.1)},
            {"title": "Green apple", "category": "food", "image_vector": unit(1, 0.3)},
            {"title": "Guitar", "category": "music", "image_vector": unit(0, 1)},
        ]
    )


def test_keyword_search_through_the_api(client, catalog):
    response = client.get(API, {"q": "apple", "mode": "keyword", "limit": 5})
    assert response.status_code == 200
    body = response.json()
    # Equal full-text rank: ties go to the older image.
    assert [result["title"] for result in body["results"]] == ["Red apple", "Green apple"]
    assert (body["mode"], body["version"], body["total"], body["offset"]) == ("keyword", 1, 2, 0)
    assert body["results"][0]["thumbnail"].startswith("http://testserver/media/thumbnails/")


def test_more_like_this_reuses_the_stored_vector_and_logs(client, catalog):
    red = catalog[0]
    body = client.get(API, {"like": red.id}).json()
    assert [result["title"] for result in body["results"]] == ["Green apple", "Guitar"]
    log = QueryLog.objects.get()
    assert (log.kind, log.similar_to_id, log.mode, log.result_ids) == ("similar", red.id, "semantic", [catalog[1].id, catalog[2].id])
    assert log.latency_ms > 0 and log.version.number == 1


def test_filters_and_pages_through_the_api(client, catalog):
    first = client.get(API, {"like": catalog[2].id, "category": "food", "limit": 1}).json()
    second = client.get(API, {"like": catalog[2].id, "category": "food", "limit": 1, "page": 2}).json()
    assert [first["results"][0]["title"], second["results"][0]["title"]] == ["Green apple", "Red apple"]
    assert QueryLog.objects.filter(filters={"category": "food"}).count() == 2


@pytest.mark.parametrize(
    "params, message",
    [
        ({"q": "   "}, "Type something to search for, upload a picture, or pick “more like this”."),
        ({"q": "x" * 201}, "q: Ensure this value has at most 200 characters (it has 201)."),
        ({"q": "a", "mode": "fuzzy"}, "mode: Select a valid choice. fuzzy is not one of the available choices."),
        ({"q": "a", "limit": "many"}, "limit: Enter a whole number."),
        ({"q": "a", "limit": 1000}, "limit: Ensure this value is less than or equal to 100."),
        ({"q": "a", "created_from": "yesterday"}, "created_from: Enter a valid date."),
    ],
)
def test_bad_requests_get_a_clear_400(client, catalog, params, message):
    # The API's answers to the same requests: tests/search/test_api.py.
    page = client.get(reverse("search:page"), params)
    assert page.status_code == 400
    assert page.context["error"] == message


def test_the_page_without_a_query_is_an_empty_search_box(client, db):
    response = client.get(reverse("search:page"))
    assert response.status_code == 200
    assert b'name="q"' in response.content and b"result" not in response.content


def test_the_page_renders_results_with_scores_and_links(client, catalog):
    response = client.get(reverse("search:page"), {"q": "apple", "mode": "keyword"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "2 results · keyword · model v1" in html
    assert html.index("Red apple") < html.index("Green apple")
    assert f"?like={catalog[0].id}" in html and reverse("search:image", args=[catalog[0].id]) in html


def test_the_detail_page(client, catalog):
    response = client.get(reverse("search:image", args=[catalog[0].id]))
    assert response.status_code == 200 and b"More like this" in response.content
    assert client.get(reverse("search:image", args=[999999])).status_code == 404


@pytest.mark.slow
def test_text_and_picture_queries_use_the_real_encoders(client, catalog):
    body = client.get(API, {"q": "apple", "mode": "hybrid"}).json()
    assert {result["title"] for result in body["results"][:2]} == {"Red apple", "Green apple"}
    assert QueryLog.objects.get(kind="text").nearest_only is body["nearest_only"]  # what the analytics count
    upload = client.post(API, {"image": _upload()})
    assert upload.status_code == 200 and upload.json()["mode"] == "semantic"
    assert QueryLog.objects.filter(kind="image").get().image_hash


def _upload():
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("query.png", image_bytes(size=(64, 64)), content_type="image/png")


@pytest.fixture(scope="module")
def banner() -> bytes:
    return banner_png()


@pytest.mark.usefixtures("timeout")
def test_a_tiny_upload_of_absurd_shape_is_refused_before_decoding(client, db, banner):
    from django.core.files.uploadedfile import SimpleUploadedFile

    with peak_memory() as peak:
        response = client.post(API, {"image": SimpleUploadedFile("banner.png", banner)})
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "the uploaded picture cannot be used: the image is 65000×700, an aspect ratio of 92.9:1; the limit is 32:1"
    )
    assert peak.growth < 32 * MB, peak.growth


@pytest.mark.slow
@pytest.mark.usefixtures("timeout")
def test_an_allowed_long_upload_is_searched_in_bounded_memory(client, catalog, banner, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.GLIMPSE_MAX_ASPECT_RATIO = 100
    assert client.post(API, {"image": _upload()}).status_code == 200  # loads the encoders
    with peak_memory() as ordinary:
        client.post(API, {"image": SimpleUploadedFile("small.png", image_bytes(size=(300, 200)))})
    with peak_memory() as long:
        response = client.post(API, {"image": SimpleUploadedFile("banner.png", banner)})
    assert response.status_code == 200 and response.json()["mode"] == "semantic"
    # Over an ordinary picture: 4 bytes a pixel while decoding (182 MB), then a 1,031 × 11
    # working copy; the inference runtime's own arenas vary by ~16 MB from run to run.
    assert long.growth - ordinary.growth < 4 * 65_000 * 700 + 64 * MB, (long.growth, ordinary.growth)


def test_red_apple_in_keyword_mode_finds_the_apples_with_a_readable_relevance(client, catalog):
    body = client.get(API, {"q": "red apple", "mode": "keyword"}).json()
    assert [(result["title"], result["match"], result["relevance"]) for result in body["results"]] == [
        ("Red apple", "close", 1.0),
        ("Green apple", "related", 0.5),
    ]
    assert (body["total"], body["distant"], body["nearest_only"]) == (2, 0, False)


def test_a_category_finds_its_subcategories_through_the_api(client, make_images):
    make_images([{"title": "tabby", "category": "animals/housecats", "image_vector": unit(1, 0.1)}, {"title": "x", "category": "animalsfoo"}])
    body = client.get(API, {"q": "tabby", "mode": "keyword", "category": "animals/"}).json()
    assert [result["title"] for result in body["results"]] == ["tabby"]
    page = client.get(reverse("search:page"), {"q": "tabby", "mode": "keyword"}).content.decode()
    assert '<option value="animals" >animals</option>' in page
    assert '<option value="animals/housecats" >&nbsp;&nbsp;&nbsp;› housecats</option>' in page


@pytest.mark.slow
def test_a_query_with_no_close_match_says_so(client, catalog):
    # The hand-made vectors share almost nothing with a real query vector.
    body = client.get(API, {"q": "the weather tomorrow", "mode": "semantic"}).json()
    assert (body["total"], body["distant"], body["nearest_only"], len(body["results"])) == (3, 3, True, 3)
    assert {result["match"] for result in body["results"]} == {"distant"}
    page = client.get(reverse("search:page"), {"q": "the weather tomorrow", "mode": "semantic"}).content.decode()
    assert "No close matches; showing the nearest." in page and "<p class=\"meta\">3 results · semantic" in page


def test_a_page_past_the_last_says_where_the_results_end(client, catalog):
    page = client.get(reverse("search:page"), {"q": "apple", "mode": "keyword", "limit": 1, "page": 4})
    html = page.content.decode()
    assert page.status_code == 200 and "2 results · keyword" in html and "Nothing matched" not in html
    assert 'Page 4 is past the last: the 2 results end on <a href="?q=apple&amp;mode=keyword&amp;limit=1&amp;page=2">page 2</a>.' in html


def test_cards_show_a_match_label_and_no_unexplained_percentage(client, catalog):
    html = client.get(reverse("search:page"), {"q": "red apple", "mode": "keyword"}).content.decode()
    assert re.findall(r'<span class="match (\w+)">([^<]*)</span>', html) == [("close", "close"), ("related", "related")]
    assert " %" not in html
