import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from catalog.models import Image
from tests.images import image_bytes


def test_admin_upload_goes_through_validation(admin_client, django_capture_on_commit_callbacks, queue):
    url = reverse("admin:catalog_image_add")
    form = {"title": "Red square", "description": "", "tags": "red,square", "category": "shapes", "source": "", "license": "CC0"}
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, {**form, "upload": SimpleUploadedFile("r.png", image_bytes())})
    assert response.status_code == 302
    image = Image.objects.get()
    assert (image.title, image.tags, image.embedding_status) == ("Red square", ["red", "square"], "pending")
    assert [job.args for job in queue.get_jobs()] == [([image.id], None)]

    duplicate = admin_client.post(url, {**form, "upload": SimpleUploadedFile("again.png", image_bytes())})
    assert f"the same file is already in the catalog as image {image.id}" in duplicate.content.decode()
    broken = admin_client.post(url, {**form, "upload": SimpleUploadedFile("x.png", b"not a picture")})
    assert "not an image: the content is in no known image format" in broken.content.decode()
    assert Image.objects.count() == 1


def test_admin_list_detail_and_re_embed(admin_client, django_capture_on_commit_callbacks, queue, make_images):
    image = make_images([{"title": "Blue", "category": "shapes"}])[0]
    listing = admin_client.get(reverse("admin:catalog_image_changelist"), {"embedding_status__exact": "pending"})
    assert listing.status_code == 200 and "Blue" in listing.content.decode()
    assert admin_client.get(reverse("admin:catalog_image_change", args=[image.id])).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:catalog_image_changelist"), {"action": "re_embed", "_selected_action": [image.id]})
    assert [job.args for job in queue.get_jobs()] == [([image.id], None)]


@pytest.mark.parametrize("page", ["admin:embeddings_modelversion_changelist", "admin:search_querylog_changelist", "admin:search_relevancejudgment_changelist"])
def test_admin_pages_render(admin_client, page):
    assert admin_client.get(reverse(page)).status_code == 200


def test_model_version_detail_renders(admin_client, version):
    assert admin_client.get(reverse("admin:embeddings_modelversion_change", args=[version.id])).status_code == 200


def test_the_admin_search_finds_images_by_tag_and_by_the_words_read_in_them(admin_client, make_images):
    frog, sign, plain = make_images(
        [
            {"title": "Pond life", "tags": ("Tree Frog", "green")},
            {"title": "Road corner"},
            {"title": "Frogless", "description": "a heron"},
        ]
    )
    Image.objects.filter(id=sign.id).update(picture_text="NO PARKING except frogs")

    def found(query: str) -> list[int]:
        response = admin_client.get(reverse("admin:catalog_image_changelist"), {"q": query})
        assert response.status_code == 200
        return sorted(image.id for image in response.context["cl"].result_list)

    assert found("tree frog") == [frog.id]  # both words in one tag
    assert found("frog") == sorted([frog.id, sign.id, plain.id])  # a tag, the words read, a title
    assert found("GREEN") == [frog.id]
    assert found("parking") == [sign.id]
    assert found('"tree frog" green') == [frog.id]
    assert found("heron") == [plain.id]
    assert found("toad") == []
