import pytest

from catalog.exceptions import DuplicateImage, InvalidImage
from catalog.models import Image
from catalog.services import ImageInput, image_create, images_create, images_request_embedding
from tests.images import image_bytes


@pytest.mark.django_db
def test_image_create_stores_file_thumbnail_and_fields():
    image = image_create(
        content=image_bytes(size=(600, 300)),
        title="  Red apple ",
        description="A shiny apple",
        tags=["Fruit", "red_apple", "fruit", " "],
        category="food/fruits",
        source="test",
        license="public-domain",
    )
    image.refresh_from_db()
    assert (image.title, image.tags, image.width, image.height) == ("Red apple", ["fruit", "red apple"], 600, 300)
    assert image.embedding_status == Image.EmbeddingStatus.PENDING
    assert image.file.name == f"images/{image.content_hash[:2]}/{image.content_hash}.png"
    with image.thumbnail.open("rb") as handle:
        assert handle.read(4) == b"RIFF"  # WEBP
    assert image.text == "Red apple. A shiny apple. fruit, red apple"


@pytest.mark.django_db
def test_a_duplicate_is_refused_and_nothing_is_added():
    first = image_create(content=image_bytes())
    with pytest.raises(DuplicateImage, match=f"already in the catalog as image {first.id}"):
        image_create(content=image_bytes(), title="again")
    assert Image.objects.count() == 1


@pytest.mark.django_db
def test_a_batch_keeps_good_files_and_reports_bad_ones():
    report = images_create(
        items=[
            ImageInput(content=image_bytes(color=(1, 2, 3)), name="good.png"),
            ImageInput(content=b"garbage", name="bad.png"),
            ImageInput(content=image_bytes(color=(1, 2, 3)), name="same-again.png"),
        ]
    )
    assert [image.id for image in report.created] == list(Image.objects.values_list("id", flat=True))
    assert [(item.name, reason) for item, reason in report.invalid] == [
        ("bad.png", "not an image: the content is in no known image format")
    ]
    assert [(item.name, existing) for item, existing in report.duplicates] == [("same-again.png", report.created[0].id)]


@pytest.mark.django_db
def test_invalid_single_image_raises_with_the_reason():
    with pytest.raises(InvalidImage, match="the file is empty"):
        image_create(content=b"")
    assert Image.objects.count() == 0


@pytest.mark.django_db
def test_embedding_is_queued_once_per_batch_after_commit(queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        report = images_create(items=[ImageInput(content=image_bytes(color=(index, 0, 0))) for index in range(6)])
    jobs = queue.get_jobs()
    ids = [image.id for image in report.created]
    # GLIMPSE_EMBED_BATCH_SIZE is 4 in the test settings.
    assert [job.args for job in jobs] == [(ids[:4], None), (ids[4:], None)]


@pytest.mark.django_db
def test_re_embedding_marks_pending_and_queues(queue, django_capture_on_commit_callbacks):
    image = image_create(content=image_bytes())
    Image.objects.filter(id=image.id).update(embedding_status="failed", embedding_error="boom")
    with django_capture_on_commit_callbacks(execute=True):
        assert images_request_embedding(image_ids=[image.id]) == 1
    image.refresh_from_db()
    assert (image.embedding_status, image.embedding_error) == ("pending", "")
    assert [job.args for job in queue.get_jobs()] == [([image.id], None)]


@pytest.mark.django_db
def test_with_redis_down_ingest_still_succeeds_and_the_image_stays_pending(settings, django_capture_on_commit_callbacks, caplog):
    settings.RQ_QUEUES = {name: {"URL": "unix:///nonexistent/redis.sock?db=0"} for name in ("embeddings", "training")}
    with django_capture_on_commit_callbacks(execute=True):
        image = image_create(content=image_bytes())
    assert Image.objects.get(id=image.id).embedding_status == "pending"
    assert "could not queue 1 images for embedding" in caplog.text and "the sweeper will retry" in caplog.text
