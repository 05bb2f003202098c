"""A real browser (Debian's headless Chromium, driven by Playwright) against a live server."""
import shutil
from pathlib import Path

import pytest

from catalog.services import ImageInput, images_create
from embeddings.services import images_embed
from tests.images import DEMO

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TITLES = {
    "recreation__music__electric_guitar_andrea__01r": "electric guitar",
    "recreation__music__guitar_ganson": "Acoustic Guitar",
    "transportation__old_car_lumen_design_st_r": "Old car",
    "food__fruit__an_apple_01": "An Apple",
}


@pytest.fixture
def browser_page(live_server):
    # Playwright's sync API runs an event loop in this thread; database set-up and
    # teardown happen outside it (the catalog fixture is requested first).
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run `make test`, which installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync"],
        )
        page = browser.new_page()
        page.set_default_timeout(30_000)
        yield page
        browser.close()


@pytest.fixture
def catalog(transactional_db, django_db_serialized_rollback):
    # serialized_rollback restores the migration-made version 1 after the flush.
    items = []
    for stem, title in TITLES.items():
        path = Path(DEMO, "images", f"{stem}.png")
        items.append(ImageInput(content=path.read_bytes(), title=title, name=stem))
    report = images_create(items=items)
    assert len(report.created) == len(TITLES), report.invalid
    images_embed(image_ids=[image.id for image in report.created])
    return report.created


def test_search_open_more_like_this_and_upload(catalog, live_server, browser_page):
    page = browser_page
    page.goto(live_server.url)
    # Something to start from: the newest additions, each a working thumbnail.
    recent = page.locator(".recent .card .title").all_inner_texts()
    assert recent == list(reversed(TITLES.values()))
    assert page.evaluate("(img) => img.naturalWidth", page.locator(".recent .card img").first.element_handle()) > 0
    page.get_by_label("Search", exact=True).fill("guitar")
    page.get_by_label("Search", exact=True).press("Enter")
    page.wait_for_selector(".card")
    titles = page.locator(".card .title").all_inner_texts()
    assert set(titles[:2]) == {"electric guitar", "Acoustic Guitar"}
    thumbnail = page.locator(".card img").first
    assert "/media/thumbnails/" in thumbnail.get_attribute("src")
    assert page.evaluate("(img) => img.naturalWidth", thumbnail.element_handle()) > 0

    page.locator(".card a.thumb").first.click()
    page.wait_for_selector("h1")
    assert page.locator("h1").inner_text() in {"electric guitar", "Acoustic Guitar"}
    opened = page.locator("h1").inner_text()
    page.get_by_role("link", name="← back to the results").click()
    page.wait_for_selector(".card")
    assert page.locator(".card .title").all_inner_texts() == titles
    assert page.get_by_label("Search", exact=True).input_value() == "guitar"
    page.locator(".card a.thumb").first.click()
    page.get_by_role("link", name="More like this").click()
    page.wait_for_selector(".card")
    similar = page.locator(".card .title").all_inner_texts()
    assert opened not in similar and len(similar) == len(TITLES) - 1
    query_picture = page.locator(".query-picture")
    assert opened in query_picture.inner_text()
    assert page.evaluate("(img) => img.naturalWidth", query_picture.locator("img").element_handle()) > 0

    page.goto(live_server.url)
    page.get_by_label("Picture to search by").set_input_files(str(Path(DEMO, "images", "transportation__old_car_lumen_design_st_r.png")))
    page.get_by_role("button", name="Find similar").click()
    page.wait_for_selector(".card")
    assert page.locator(".card .title").first.inner_text() == "Old car"
    assert "semantic" in page.locator("p.meta").first.inner_text()
    preview = page.locator(".query-picture img")
    assert preview.get_attribute("src").startswith("data:image/webp;base64,")
    assert page.evaluate("(img) => img.naturalWidth", preview.element_handle()) > 0


@pytest.fixture
def curator_account(catalog, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("curator", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="add_relevancejudgment"))
    return user


def in_another_thread(query):
    """Database reads from the test: Playwright's event loop runs in this thread, where Django refuses them."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    def read():
        try:
            return query()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(read).result()


def test_a_curator_judges_with_the_keyboard_without_the_page_reloading(curator_account, live_server, browser_page):
    from search.models import RelevanceJudgment

    page = browser_page
    page.goto(f"{live_server.url}/admin/login/?next=/")
    page.get_by_label("Username").fill("curator")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/?q=guitar")
    page.wait_for_selector(".grid.judging .card")
    page.evaluate("window.stillTheSamePage = true")
    titles = page.locator(".card .title").all_inner_texts()
    cards = page.locator(".grid.judging .card")
    ids = [int(cards.nth(number).get_attribute("data-image-id")) for number in range(cards.count())]
    assert len(ids) == 3  # the fourth, the apple, is a distant result and hidden
    # The instructions come before the results, not below the last one.
    instructions = page.locator("p.instructions")
    assert "j / k" in instructions.inner_text()
    assert instructions.bounding_box()["y"] < cards.first.bounding_box()["y"]

    def recorded(number: int) -> str:
        status = cards.nth(number).locator(".recorded")
        page.wait_for_function("(element) => element.textContent && !element.textContent.startsWith('saving')", arg=status.element_handle())
        return status.inner_text()

    def chosen(number: int) -> list[str]:
        return cards.nth(number).locator("form.judge button.chosen").all_inner_texts()

    # The first result has the focus from the start: grade it, move on, grade, move back, change the grade.
    assert page.evaluate("document.activeElement.dataset.imageId") == str(ids[0])
    page.keyboard.press("2")
    assert recorded(0) == "2 recorded" and chosen(0) == ["2"]
    page.keyboard.press("j")
    page.keyboard.press("0")
    assert recorded(1) == "0 recorded" and chosen(1) == ["0"]
    page.keyboard.press("ArrowRight")
    page.keyboard.press("k")
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("document.activeElement.dataset.imageId") == str(ids[0])
    page.keyboard.press("3")
    assert recorded(0) == "3 recorded" and chosen(0) == ["3"]
    # A click on a grade button is sent the same way.
    cards.nth(2).locator("form.judge button[value='1']").click()
    assert recorded(2) == "1 recorded" and chosen(2) == ["1"]

    # A grade the server refuses says why on the card, and the grade recorded before stays shown.
    page.evaluate("(card) => card.querySelector('input[name=image]').value = '999999'", cards.nth(2).element_handle())
    page.keyboard.press("2")
    assert recorded(2) == "not recorded: image 999999 does not exist" and chosen(2) == ["1"]

    assert page.evaluate("window.stillTheSamePage") is True
    assert page.locator(".card .title").all_inner_texts() == titles
    current = in_another_thread(
        lambda: dict(RelevanceJudgment.objects.filter(is_current=True, query_text="guitar").values_list("image_id", "grade"))
    )
    assert current == {ids[0]: 3, ids[1]: 0, ids[2]: 1}


# Two categories, each more than a page at two results a page (the `small_pages` fixture).
CATEGORIZED = {
    "recreation__music__bass_guitar_a.j._ashton_": ("Bass guitar", "music"),
    "recreation__music__electric_guitar_andrea__01r": ("electric guitar", "music"),
    "recreation__music__guitar_ganson": ("Acoustic Guitar", "music"),
    "recreation__music__cello_ganson": ("Cello", "music"),
    "food__fruit__an_apple_01": ("An Apple", "fruit"),
    "food__fruit__banana_mateya_01": ("Banana", "fruit"),
    "food__fruit__strawberry_01": ("Strawberry", "fruit"),
}


@pytest.fixture
def categorized_catalog(transactional_db, django_db_serialized_rollback):
    items = [
        ImageInput(content=Path(DEMO, "images", f"{stem}.png").read_bytes(), title=title, category=category, name=stem)
        for stem, (title, category) in CATEGORIZED.items()
    ]
    report = images_create(items=items)
    assert len(report.created) == len(CATEGORIZED), report.invalid
    images_embed(image_ids=[image.id for image in report.created])
    return report.created


@pytest.fixture
def small_pages(settings):
    settings.GLIMPSE_SEARCH_PAGE_SIZE = 2  # the live server runs in this process: it reads the same settings


def test_a_picture_search_pages_with_its_picture_and_filters(categorized_catalog, small_pages, live_server, browser_page):
    page = browser_page
    page.goto(live_server.url)
    page.get_by_text("Filters").click()
    page.get_by_label("Category").select_option("music")
    page.get_by_label("Picture to search by").set_input_files(str(Path(DEMO, "images", "recreation__music__guitar_jarno_vasamaa1.png")))
    page.get_by_role("button", name="Find similar").click()
    page.wait_for_selector(".card")
    first = page.locator(".card .title").all_inner_texts()
    assert len(first) == 2
    assert page.locator("p.meta").first.inner_text().startswith("4 results · semantic")
    preview = page.locator(".query-picture img").get_attribute("src")
    assert preview.startswith("data:image/webp;base64,")

    page.get_by_role("link", name="next →").click()
    page.wait_for_selector(".card")
    assert "page=2" in page.url and "category=music" in page.url and "picture=" in page.url
    second = page.locator(".card .title").all_inner_texts()
    assert len(second) == 2 and not set(first) & set(second)
    assert set(first + second) == {"Bass guitar", "electric guitar", "Acoustic Guitar", "Cello"}  # the filter held
    assert page.locator("p.meta").first.inner_text().startswith("4 results · semantic")
    assert page.locator(".query-picture img").get_attribute("src") == preview  # the same picture
    assert page.get_by_label("Category").input_value() == "music"
    assert page.get_by_role("link", name="← previous").is_visible()
    assert page.get_by_role("link", name="next →").count() == 0


def test_a_category_alone_browses_newest_first(categorized_catalog, small_pages, live_server, browser_page):
    page = browser_page
    page.goto(live_server.url)
    page.get_by_text("Filters").click()
    page.get_by_label("Category").select_option("fruit")
    page.get_by_role("button", name="Search", exact=True).click()
    page.wait_for_selector(".card")
    assert page.get_by_label("Search", exact=True).input_value() == ""
    assert page.locator("p.meta").first.inner_text().startswith("3 results · newest")
    assert page.locator(".card .title").all_inner_texts() == ["Strawberry", "Banana"]  # added last, shown first
    page.get_by_role("link", name="next →").click()
    page.wait_for_selector(".card")
    assert page.locator(".card .title").all_inner_texts() == ["An Apple"]
    assert page.get_by_label("Category").input_value() == "fruit"
