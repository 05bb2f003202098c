"""The "Curators" group the migrations make: what a member may and may not do."""
import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from embeddings.models import ModelVersion
from search.models import RelevanceJudgment
from tests.conftest import unit


@pytest.fixture
def member(db, django_user_model):
    user = django_user_model.objects.create_user("member", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Curators"))
    return django_user_model.objects.get(id=user.id)


def test_the_group_holds_exactly_the_curators_permissions(db):
    permissions = Group.objects.get(name="Curators").permissions.values_list("content_type__app_label", "codename")
    assert sorted(permissions) == [
        ("catalog", "change_image"), ("catalog", "view_image"), ("embeddings", "view_modelversion"), ("search", "add_relevancejudgment"),
    ]


def test_a_member_judges_tags_sees_their_judgments_and_views_versions(client, member, make_images, version):
    image = make_images([{"title": "apple", "image_vector": unit(1)}])[0]
    client.force_login(member)
    judged = client.post(reverse("search:judge"), {"q": "red apple", "image": image.id, "grade": 3, "tag": "on", "next": "/"})
    assert judged.status_code == 302
    assert list(RelevanceJudgment.objects.values_list("curator__username", "grade")) == [("member", 3)]
    assert client.get(reverse("admin:search_relevancejudgment_changelist")).status_code == 200
    assert client.get(reverse("admin:catalog_image_change", args=[image.id])).status_code == 200
    versions = client.get(reverse("admin:embeddings_modelversion_changelist"))
    assert versions.status_code == 200 and 'value="release"' not in versions.content.decode()
    assert client.get(reverse("admin:embeddings_modelversion_change", args=[version.id])).status_code == 200
    assert client.post(reverse("admin:embeddings_modelversion_train")).status_code == 403
    assert ModelVersion.objects.get(id=version.id).state == "active"
