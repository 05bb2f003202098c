"""The site's pages around the results: the home page, the query picture, the way back."""
import base64
import hashlib
import io
import re

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image as PILImage

from embeddings.models import FEATURE_DIMENSIONS
from search.models import QueryLog
from search.previews import PREVIEW_SIZE, upload_preview
from search.query_pictures import query_picture_keep, query_picture_preview_keep
from tests.conftest import unit
from tests.images import image_bytes


@pytest.fixture
def catalog(make_images):
    return make_images(
        [
            {"title": "Red apple", "category": "food/fruit", "tags": ("apple", "fruit", "red"), "image_vector": unit(1, 0.1)},
            {"title": "Green apple", "category": "food/fruit", "tags": ("apple", "fruit", "hash(0x1)"), "image_vector": unit(1, 0.3)},
            {"title": "Cake", "category": "food", "tags": ("cake", "foods"), "image_vector": unit(1, 1)},
            {"title": "Guitar", "category": "music", "tags": ("instrument",), "image_vector": unit(0, 1)},
            {"title": "Drum", "category": "music", "tags": ("instrument", "music"), "image_vector": unit(0, 1, 1)},
        ]
    )


def test_the_home_page_offers_examples_categories_and_recent_additions(client, catalog):
    page = client.get(reverse("search:page")).content.decode()
    recent = re.findall(r'<div class="card" data-image-id="(\d+)">', page)
    assert recent == [str(image.id) for image in reversed(catalog)]  # newest first
    categories = re.findall(r'<a class="chip" href="\?category=(\w+)">(\w+) <span class="count">(\d+)</span>', page)
    assert categories == [("food", "food", "3"), ("music", "music", "2")]
    # Tags on two images or more, words only, not a category's own name.
    examples = re.findall(r'<div class="chips examples">(.*?)</div>', page)[0]
    assert re.findall(r">(\w+)</a>", examples) == ["apple", "fruit", "instrument"]


def test_an_empty_catalog_says_how_to_fill_it(client, db):
    page = client.get(reverse("search:page")).content.decode()
    assert "The catalog is empty" in page and 'class="chips examples"' not in page


def test_more_like_this_shows_the_query_picture(client, catalog):
    red = catalog[0]
    page = client.get(reverse("search:page"), {"like": red.id}).content.decode()
    picture = re.search(r'<div class="query-picture">(.*?)</div>', page).group(1)
    assert red.thumbnail.url in picture
    assert f'More like <a href="{reverse("search:image", args=[red.id])}">Red apple</a>' in picture


def test_results_link_to_images_that_link_back(client, catalog):
    params = {"like": catalog[0].id, "category": "food"}
    page = client.get(reverse("search:page"), params).content.decode()
    link = re.search(r'<a class="thumb" href="([^"]+)">', page).group(1).replace("&amp;", "&")
    assert link == f"{reverse('search:image', args=[catalog[1].id])}?back=like%3D{catalog[0].id}%26category%3Dfood"
    detail = client.get(link).content.decode()
    assert f'<a href="/?like={catalog[0].id}&amp;category=food">← back to the results</a>' in detail


@pytest.mark.parametrize(
    "back",
    [
        "",  # opened directly
        "//evil.example/?q=a",  # not a query string of a search: no q, like or picture
        "q=" + "a" * 300,  # not a valid search (query too long)
        "q=a&" + "x" * 3000,  # longer than any results page's query string
    ],
)
def test_the_way_back_defaults_to_the_home_page(client, catalog, back):
    detail = client.get(reverse("search:image", args=[catalog[0].id]), {"back": back}).content.decode()
    assert '<a href="/">← new search</a>' in detail


def test_the_way_back_keeps_only_search_parameters(client, catalog):
    back = "q=apple&next=https://evil.example/&mode=keyword&page=2"
    detail = client.get(reverse("search:image", args=[catalog[0].id]), {"back": back}).content.decode()
    assert '<a href="/?q=apple&amp;mode=keyword&amp;page=2">← back to the results</a>' in detail


def test_an_uploads_preview_is_a_small_thumbnail_not_the_upload(db):
    content = image_bytes(color=(10, 120, 200), size=(3000, 1500), format="PNG")
    url = upload_preview(upload=SimpleUploadedFile("big.png", content))
    assert url.startswith("data:image/webp;base64,")
    preview = base64.b64decode(url.removeprefix("data:image/webp;base64,"))
    assert len(preview) < 4096 < len(content)
    with PILImage.open(io.BytesIO(preview)) as image:
        assert image.size == (PREVIEW_SIZE, PREVIEW_SIZE // 2)
        assert image.convert("RGB").getpixel((5, 5)) == pytest.approx((10, 120, 200), abs=4)
    assert upload_preview(upload=SimpleUploadedFile("x.png", b"not an image")) == ""


def test_pages_declare_the_sites_language_and_fonts_that_draw_cjk(client, make_images, settings):
    image = make_images([{"title": "白い猫"}])[0]
    assert client.get(reverse("search:page")).content.decode().startswith('<!doctype html>\n<html lang="en-us">')
    settings.LANGUAGE_CODE = "ja"
    page = client.get(reverse("search:image", args=[image.id])).content.decode()
    assert page.startswith('<!doctype html>\n<html lang="ja">') and "白い猫" in page
    assert 'body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", var(--cjk), sans-serif;' in page
    assert re.search(r':root \{ --cjk:"Hiragino Sans", [^}]*"PingFang SC", [^}]*"Malgun Gothic"', page)
    assert client.get("/no/such/page").content.decode().startswith('<!doctype html>\n<html lang="ja">')


def features(*weights: float) -> np.ndarray:
    vector = np.zeros(FEATURE_DIMENSIONS, dtype=np.float32)
    vector[: len(weights)] = weights
    return vector / np.linalg.norm(vector)


@pytest.fixture
def pictured(make_images):
    """Three pictures with CNN features, two of them food."""
    return make_images(
        [
            {"title": "Red apple", "category": "food", "image_vector": unit(1, 0.1), "feature_vector": features(1, 0.1)},
            {"title": "Green apple", "category": "food", "image_vector": unit(1, 0.3), "feature_vector": features(1, 0.3)},
            {"title": "Guitar", "category": "music", "image_vector": unit(0, 1), "feature_vector": features(0, 1)},
        ]
    )


def page_links(page: str) -> dict[str, str]:
    return {label: href.replace("&amp;", "&") for href, label in re.findall(r'<a class="button quiet" href="([^"]+)">(← previous|next →)</a>', page)}


def test_a_picture_search_pages_by_the_uploads_key_and_keeps_its_filters(client, pictured, version):
    key = "ab" * 32
    query_picture_keep(key=key, version_id=version.id, features=features(1, 0.05))
    query_picture_preview_keep(key=key, preview="data:image/webp;base64,AAAA")
    first = client.get(reverse("search:page"), {"picture": key, "category": "food", "limit": 1})
    assert first.status_code == 200
    html = first.content.decode()
    assert re.findall(r'<div class="title" title="([^"]+)">', html) == ["Red apple"]
    assert page_links(html) == {"next →": f"?category=food&limit=1&picture={key}&page=2"}
    assert '<img src="data:image/webp;base64,AAAA" alt="your picture">' in html
    second = client.get("/" + page_links(html)["next →"]).content.decode()
    assert re.findall(r'<div class="title" title="([^"]+)">', second) == ["Green apple"]
    assert page_links(second) == {"← previous": f"?category=food&limit=1&picture={key}&page=1"}
    assert list(QueryLog.objects.order_by("id").values_list("kind", "image_hash", "offset")) == [("image", key, 0), ("image", key, 1)]
    api = client.get("/api/search", {"picture": key, "category": "food", "limit": 1, "page": 2}).json()
    assert ([hit["title"] for hit in api["results"]], api["picture"], api["has_next"]) == (["Green apple"], key, False)


def test_a_picture_no_longer_kept_or_misspelt_is_a_clear_400(client, pictured):
    gone = client.get(reverse("search:page"), {"picture": "cd" * 32, "page": 2})
    assert (gone.status_code, gone.context["error"]) == (400, "the picture you searched by is kept for 1 hour only; upload it again")
    bad = client.get(reverse("search:page"), {"picture": "../etc"})
    assert (bad.status_code, bad.context["error"]) == (400, "picture: not a picture of an earlier search; upload it again")
    both = client.post(reverse("search:page"), {"picture": "cd" * 32, "image": SimpleUploadedFile("q.png", image_bytes())})
    assert (both.status_code, both.context["error"]) == (400, "upload a picture or name an earlier upload (picture), not both at once")
    assert not QueryLog.objects.exists()


def test_the_search_form_posts_a_picture_with_its_words_and_filters(client, db):
    html = client.get(reverse("search:page")).content.decode()
    form = re.search(r'<form class="search" method="get".*?</form>', html, re.S).group(0)
    assert 'name="q"' in form and 'name="category"' in form and 'type="file" name="image"' in form
    assert 'formmethod="post" formenctype="multipart/form-data">Find similar</button>' in form
    assert html.count("<form") == 1


@pytest.mark.slow
def test_an_uploads_next_page_needs_no_second_upload(client, pictured):
    content = image_bytes(size=(64, 64))
    first = client.post(reverse("search:page"), {"image": SimpleUploadedFile("q.png", content), "category": "food", "limit": 1})
    assert first.status_code == 200
    key = hashlib.sha256(content).hexdigest()
    html = first.content.decode()
    assert page_links(html) == {"next →": f"?category=food&limit=1&picture={key}&page=2"}
    second = client.get("/" + page_links(html)["next →"])
    assert second.status_code == 200
    shown = [re.findall(r'<div class="title" title="([^"]+)">', page.content.decode())[0] for page in (first, second)]
    assert sorted(shown) == ["Green apple", "Red apple"]
    assert 'alt="your picture"' in second.content.decode()


def test_every_page_has_an_icon(client, db):
    for url in ("/", "/no/such/page"):
        assert '<link rel="icon" href="/static/search/favicon.svg" type="image/svg+xml">' in client.get(url).content.decode()
    redirect = client.get("/favicon.ico")
    assert (redirect.status_code, redirect["Location"]) == (301, "/static/search/favicon.svg")
    icon = client.get("/static/search/favicon.svg")
    assert icon.status_code == 200 and icon["Content-Type"] == "image/svg+xml"
    assert b"".join(icon.streaming_content).startswith(b'<svg xmlns="http://www.w3.org/2000/svg"')
