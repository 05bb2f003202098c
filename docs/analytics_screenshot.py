"""Make docs/analytics.png: the admin's analytics page over the demo catalog.

    python docs/analytics_screenshot.py [--out docs/analytics.png]

On a throwaway database: imports and embeds the demo catalog, asks the JSON API a
fortnight's worth of queries (dated back over 14 days), has a simulated curator judge
some of them (3 when the query word is in the title, 1 when in the tags), trains and
backfills a version from those judgments, refreshes the materialised views, and has
Debian's Chromium photograph /admin/analytics/ as a staff user.
"""
import argparse
import io
import random
import sys
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from common import import_folder, throwaway_database  # noqa: E402

WORDS = ["apple", "cat", "guitar", "car", "dog", "bird", "flower", "tree", "house", "boat", "airplane", "bicycle", "computer",
         "telephone", "book", "clock", "sun", "star", "heart", "pizza", "banana", "orange", "fish", "music", "flag", "map",
         "red apple", "black cat", "old car", "zebra crossing", "quantum chromodynamics"]
MAX_BYTES = 300_000
MAX_HEIGHT = 2400  # the plots and the first lists


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs/analytics.png")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    options = parser.parse_args()
    with throwaway_database():
        import django_rq
        from django.contrib.auth import get_user_model
        from django.contrib.staticfiles.handlers import StaticFilesHandler
        from django.test import Client
        from django.test.testcases import LiveServerThread
        from django.utils import timezone

        from catalog.models import Image
        from embeddings.services import TRAINING_QUEUE, images_embed
        from search.analytics import analytics_refresh
        from search.judgments import judgment_record
        from search.models import QueryLog
        from search.training import training_run

        ids = import_folder(ROOT / "catalog/fixtures/openclipart-demo")
        for start in range(0, len(ids), 32):
            images_embed(image_ids=ids[start : start + 32])
        print(f"embedded {len(ids)} images", flush=True)
        rng = random.Random(7)
        client = Client(HTTP_HOST="127.0.0.1")  # an allowed host
        asked = [word for word in WORDS for _ in range(1 + int(8 / (1 + WORDS.index(word) % 9)))]
        rng.shuffle(asked)
        for word in asked:
            client.get("/api/search", {"q": word})
        now = timezone.now()
        for log in QueryLog.objects.all():
            QueryLog.objects.filter(id=log.id).update(created_at=now - timedelta(days=rng.randrange(14), minutes=rng.randrange(600)))
        print(f"asked {len(asked)} queries", flush=True)
        curator = get_user_model().objects.create_user("curator", password="curator", is_staff=True, is_superuser=True)
        images = {image.id: image for image in Image.objects.all()}
        for word in WORDS[:22]:
            for hit in client.get("/api/search", {"q": word, "limit": 10}).json()["results"]:
                image = images[hit["id"]]
                grade = 3 if word in image.title.lower() else 1 if any(word in tag for tag in image.tags) else 0
                judgment_record(curator=curator, image_id=image.id, grade=grade, query_text=word)
        version = training_run(seed=0, margin=-1.0)  # released whatever it scores: the page needs two versions
        django_rq.get_worker(TRAINING_QUEUE).work(burst=True)
        print(f"trained and released v{version.number}", flush=True)
        analytics_refresh()

        server = LiveServerThread("127.0.0.1", StaticFilesHandler, port=0)
        server.daemon = True
        server.start()
        server.is_ready.wait()
        base = f"http://127.0.0.1:{server.port}"
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=options.chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{base}/admin/login/?next=/admin/analytics/")
            page.fill("#id_username", "curator")
            page.fill("#id_password", "curator")
            page.click("input[type=submit]")
            page.wait_for_selector("#search-days svg")
            shot = page.screenshot(full_page=True)
            browser.close()
        server.terminate()
        picture_write(shot, options.out)  # before the teardown, which has nothing to add


def picture_write(shot: bytes, out: Path) -> None:
    from PIL import Image

    picture = Image.open(io.BytesIO(shot)).convert("RGB")
    picture = picture.crop((0, 0, picture.width, min(picture.height, MAX_HEIGHT)))
    for colours in (128, 64, 32):
        buffer = io.BytesIO()
        picture.quantize(colors=colours).save(buffer, "PNG", optimize=True)
        if buffer.tell() <= MAX_BYTES:
            break
    out.write_bytes(buffer.getvalue())
    print(f"{out}: {picture.width}×{picture.height}, {buffer.tell() / 1000:.0f} kB")


if __name__ == "__main__":
    main()
