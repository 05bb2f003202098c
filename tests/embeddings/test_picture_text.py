"""The words in pictures: read by the real reader, stored as the picture's own, searched by
keyword, by a part, with a misread character and by meaning, corrected and dismissed by
curators. The pictures in tests/pictures are drawn text (their README says how)."""
from pathlib import Path

import django_rq
import pytest
from django.test import override_settings
from rq import SimpleWorker

from catalog.models import Image
from catalog.services import ImageInput, images_create
from embeddings.jobs import embed_images
from embeddings.models import ModelVersion, PictureTextVector
from embeddings.picture_text import (
    READING_QUEUE,
    picture_text_correct,
    picture_text_dismiss,
    pictures_read,
    queued_reading_ids,
    reading_sweep,
)
from embeddings.services import images_embed
from search.selectors import Filters, fused_ranking, image_search

PICTURES = Path(__file__).parent.parent / "pictures"
State = Image.PictureTextState


def pictures(*names: str) -> dict[str, Image]:
    report = images_create(items=[ImageInput(content=(PICTURES / f"{name}.png").read_bytes(), name=name) for name in names])
    return {name: Image.objects.get(id=image_id) for name, image_id in report.ids_by_name.items()}


def found(text: str, *, mode: str = "keyword") -> list[str]:
    """The titles ranked for `text` (keyword mode: full text and the words' parts only)."""
    ranking = image_search(text=text, mode=mode, include_distant=True, limit=10)
    return [hit.image.title for hit in ranking.hits]


@pytest.fixture
def read_catalog(db):
    """The five drawn pictures, embedded and read by the real models, titled by their file."""
    images = pictures("sale", "plate", "dollar", "hotel", "exit-zh")
    for name, image in images.items():
        Image.objects.filter(id=image.id).update(title=f"picture {name}")
    images_embed(image_ids=[image.id for image in images.values()])
    report = pictures_read(image_ids=[image.id for image in images.values()])
    assert not report.failed
    return {name: Image.objects.get(id=image.id) for name, image in images.items()}


@pytest.mark.slow
def test_the_text_in_a_picture_is_read_and_stored_as_its_own(read_catalog):
    texts = {name: image.picture_text for name, image in read_catalog.items()}
    assert texts == {"sale": "SALE", "plate": "RE16 TGK", "dollar": "$", "hotel": "HOTEL", "exit-zh": "出口"}
    plate = read_catalog["plate"]
    assert plate.picture_text_state == State.READ and plate.picture_text_error == "" and plate.description == ""
    assert plate.picture_text_reader.startswith("rapidocr-3.10.0 PP-OCRv6_det_small PP-OCRv6_rec_small")
    [line] = plate.picture_text_lines
    assert line["text"] == "RE16 TGK" and line["confidence"] >= 0.95
    xs, ys = [x for x, _ in line["box"]], [y for _, y in line["box"]]
    assert 0 <= min(xs) < max(xs) <= 320 and 0 <= min(ys) < max(ys) <= 160  # in the stored picture's pixels
    assert read_catalog["dollar"].picture_glyphs == "dollar sign dollar"
    assert PictureTextVector.objects.count() == 5


@pytest.mark.slow
def test_read_words_are_found_by_keyword_part_misread_glyph_name_and_meaning(read_catalog):
    assert found("sale")[:1] == ["picture sale"]
    assert found("RE16")[:1] == found("tgk")[:1] == found("RE1")[:1] == ["picture plate"]  # a part of what was read
    assert found("hotal")[:1] == found("hotels")[:1] == ["picture hotel"]  # one character misread, or one more
    assert found("dollar sign")[:1] == found("dollar")[:1] == ["picture dollar"]
    assert found("出口")[:1] == ["picture exit-zh"]  # Chinese by Chinese words
    assert found("exit", mode="semantic")[:1] == ["picture exit-zh"]  # by meaning, across languages
    assert found("ho") == []  # two letters are no part to go by
    assert found("sale -sale") == []


@pytest.mark.slow
def test_a_curators_correction_stays_through_a_new_reading_and_a_dismissal_hides_the_text(read_catalog):
    sale = picture_text_correct(image=read_catalog["sale"], text="  SALE 5% off \n\n")
    assert (sale.picture_text, sale.picture_text_state, sale.picture_glyphs) == ("SALE 5% off", State.CORRECTED, "percent sign percent")
    pictures_read(image_ids=[sale.id])
    sale.refresh_from_db()
    assert (sale.picture_text, sale.picture_text_state) == ("SALE 5% off", State.CORRECTED)
    assert [line["text"] for line in sale.picture_text_lines] == ["SALE"]  # the reader's lines, beside the correction
    assert found("off")[:1] == ["picture sale"]

    picture_text_dismiss(image=read_catalog["plate"])
    pictures_read(image_ids=[read_catalog["plate"].id])
    plate = Image.objects.get(id=read_catalog["plate"].id)
    assert (plate.picture_text, plate.picture_text_state) == ("", State.DISMISSED)
    assert found("RE16") == [] and not PictureTextVector.objects.filter(image=plate).exists()


@pytest.mark.slow
def test_a_picture_that_breaks_the_reader_fails_alone_and_keeps_its_vectors(db):
    images = pictures("sale", "plate")
    images_embed(image_ids=[image.id for image in images.values()])
    broken = images["plate"]
    Path(broken.file.path).write_bytes(b"not a picture any more")

    report = pictures_read(image_ids=[image.id for image in images.values()])

    assert report.read == {images["sale"].id: "SALE"}
    assert report.failed[broken.id].startswith("cannot decode the stored file:")
    broken.refresh_from_db()
    assert broken.picture_text_state == State.FAILED and broken.embedding_status == Image.EmbeddingStatus.READY
    with override_settings(GLIMPSE_READING_SECONDS=1e-6):
        report = pictures_read(image_ids=[images["sale"].id])
    assert report.failed[images["sale"].id].startswith("reading took over 1e-06 s (1 text box found")


@pytest.mark.django_db
def test_words_and_parts_are_found_in_stored_picture_text(make_images):
    from embeddings.reading import glyph_words

    made = make_images([{"title": "one"}, {"title": "two"}, {"title": "three"}, {"title": "four"}])
    for image, text in zip(made, ["RE16 TGK", "H0TEL RIVIERA", "Q", "$ 5"]):
        Image.objects.filter(id=image.id).update(picture_text=text, picture_glyphs=glyph_words(text), picture_text_state=State.READ)

    def titles(text: str) -> list[str]:
        title = dict(Image.objects.values_list("id", "title"))
        ranking = fused_ranking(mode="keyword", vector=None, text=text, version=ModelVersion.objects.get(number=1), filters=Filters())
        return [title[image_id] for image_id, _ in ranking]

    assert titles("re16") == titles("RE16TGK"[:5]) == ["one"]
    assert titles("hotel") == titles("rivier") == ["two"]  # 0 read for O; a prefix
    assert titles("the letter q") == ["three"]
    assert titles("dollar") == titles("number 5") == ["four"]
    assert titles("5") == ["four"] and titles("hostels") == []  # two edits away
    assert titles("riviera") == titles("RIVIERA") == ["two"]
    assert titles("one") == ["one"]  # the title as before


@pytest.mark.slow
@pytest.mark.django_db
def test_an_embedding_job_queues_its_pictures_for_reading_and_the_sweep_finds_the_rest(queue):
    reading = django_rq.get_queue(READING_QUEUE)
    images = pictures("sale", "dollar")
    ids = sorted(image.id for image in images.values())
    embed_images(ids)
    assert queued_reading_ids() == set(ids)
    reading.empty()
    assert reading_sweep() == 2 and reading_sweep() == 0  # a second sweep finds them queued
    SimpleWorker([reading], connection=reading.connection).work(burst=True)
    assert dict(Image.objects.filter(id__in=ids).values_list("picture_text", "picture_text_state")) == {"SALE": State.READ, "$": State.READ}
    with override_settings(GLIMPSE_READING=False):
        Image.objects.update(picture_text_state=State.PENDING)
        assert reading_sweep() == 0


@pytest.mark.slow
def test_curators_correct_and_dismiss_the_words_in_the_admin_and_visitors_see_them(admin_client, client, make_images):
    from django.urls import reverse

    (image,) = make_images([{"title": "shop front", "tags": ("shop",)}])
    Image.objects.filter(id=image.id).update(picture_text="SA1E", picture_text_state=State.READ, picture_text_lines=[
        {"text": "SA1E", "confidence": 0.91, "box": [[1, 1], [9, 1], [9, 5], [1, 5]]}
    ])
    change = reverse("admin:catalog_image_change", args=[image.id])
    page = admin_client.get(change).content.decode()
    assert "Words in the picture" in page and "SA1E <small>(confidence 0.91)</small>" in page
    form = {"title": "shop front", "description": "", "tags": "shop", "category": "", "source": "", "license": "", "picture_text": "SALE"}
    assert admin_client.post(change, form).status_code == 302
    image.refresh_from_db()
    assert (image.picture_text, image.picture_text_state) == ("SALE", State.CORRECTED)
    assert PictureTextVector.objects.filter(image=image).exists()
    detail = client.get(reverse("search:image", args=[image.id])).content.decode()
    assert "Words in the picture (corrected by a curator):</span> <q>SALE</q>" in detail

    admin_client.post(reverse("admin:catalog_image_changelist"), {"action": "dismiss_picture_text", "_selected_action": [image.id]})
    image.refresh_from_db()
    assert (image.picture_text, image.picture_text_state) == ("", State.DISMISSED)
    assert not PictureTextVector.objects.filter(image=image).exists()
    assert "Words in the picture" not in client.get(reverse("search:image", args=[image.id])).content.decode()


def test_read_pictures_says_when_reading_is_off_or_nothing_waits(db, capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with override_settings(GLIMPSE_READING=False), pytest.raises(CommandError, match="GLIMPSE_READING is 0: set it to 1"):
        call_command("read_pictures")
    call_command("read_pictures")
    assert capsys.readouterr().out == "the text of all 0 embedded pictures is read; nothing to do\n"
