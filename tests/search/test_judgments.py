import pytest
from django.urls import reverse

from search.exceptions import InvalidJudgment, JudgmentNotAllowed
from search.judgments import judged_text_queries, judgment_record
from search.models import RelevanceJudgment
from tests.conftest import unit


@pytest.fixture
def results(make_images):
    return make_images(
        [
            {"title": "Red apple", "image_vector": unit(1, 0.1)},
            {"title": "Apple tree", "image_vector": unit(1, 0.5)},
        ]
    )


def judge(client, image, grade, q="apple"):
    return client.post(reverse("search:judge"), {"q": q, "image": image.id, "grade": grade, "next": f"/?q={q}&mode=keyword"})


def test_changing_a_grade_keeps_history_and_one_current_row(client, curator, results):
    client.force_login(curator)
    assert judge(client, results[0], 3).status_code == 302
    assert judge(client, results[0], 3).status_code == 302  # unchanged: no new row
    assert judge(client, results[0], 1).status_code == 302
    rows = list(RelevanceJudgment.objects.order_by("id").values_list("grade", "is_current", "query_key", "version__number"))
    assert rows == [(3, False, "apple", 1), (1, True, "apple", 1)]
    assert judged_text_queries() == {"apple": {results[0].id: 1.0}}


def test_grades_of_several_curators_are_averaged(curator, django_user_model, results):
    other = django_user_model.objects.create_superuser("chief", password="pw")
    judgment_record(curator=curator, image_id=results[0].id, grade=3, query_text="Apple ")
    judgment_record(curator=other, image_id=results[0].id, grade=2, query_text="apple")
    assert judged_text_queries() == {"apple": {results[0].id: 2.5}}


def test_visitors_and_anonymous_users_cannot_judge(client, visitor, results):
    response = judge(client, results[0], 3)
    assert response.status_code == 302 and "/login/" in response["Location"]
    client.force_login(visitor)
    assert judge(client, results[0], 3).status_code == 403
    with pytest.raises(JudgmentNotAllowed):
        judgment_record(curator=visitor, image_id=results[0].id, grade=3, query_text="apple")
    assert RelevanceJudgment.objects.count() == 0


@pytest.mark.parametrize(
    "grade, image, query, message",
    [
        (4, None, "apple", "grade must be 0, 1, 2 or 3, not 4"),
        (2, 999999, "apple", "image 999999 does not exist"),
        (2, None, "   ", "a judgment needs the query it answers"),
    ],
)
def test_bad_judgments_are_refused(curator, results, grade, image, query, message):
    with pytest.raises(InvalidJudgment, match=message):
        judgment_record(curator=curator, image_id=image or results[0].id, grade=grade, query_text=query)
    assert RelevanceJudgment.objects.count() == 0


def test_a_bad_grade_from_the_page_is_a_400(client, curator, results):
    client.force_login(curator)
    assert client.post(reverse("search:judge"), {"q": "apple", "image": results[0].id, "grade": "x"}).status_code == 400


def test_controls_show_for_curators_only_with_their_grade(client, curator, visitor, results):
    page = {"q": "apple", "mode": "keyword"}
    assert "form class=\"judge\"" not in client.get(reverse("search:page"), page).content.decode()
    client.force_login(visitor)
    assert "form class=\"judge\"" not in client.get(reverse("search:page"), page).content.decode()
    client.force_login(curator)
    judge(client, results[1], 2)
    html = client.get(reverse("search:page"), page).content.decode()
    assert html.count('form class="judge"') == 2
    assert 'class="chosen">2</button>' in html


def test_the_next_url_must_stay_on_this_site(client, curator, results):
    client.force_login(curator)
    response = client.post(reverse("search:judge"), {"q": "apple", "image": results[0].id, "grade": 2, "next": "https://evil.example/"})
    assert response["Location"] == reverse("search:page")


def test_admin_regrade_action_keeps_history(admin_client, results, curator):
    judgment = judgment_record(curator=curator, image_id=results[0].id, grade=1, query_text="apple")
    response = admin_client.post(
        reverse("admin:search_relevancejudgment_changelist"), {"action": "regrade_3", "_selected_action": [judgment.id]}
    )
    assert response.status_code == 302
    assert sorted(RelevanceJudgment.objects.values_list("curator__username", "grade", "is_current")) == [
        ("admin", 3, True),
        ("curator", 1, True),
    ]
