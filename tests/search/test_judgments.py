import re

import pytest
from django.urls import reverse

from catalog.models import Image
from search.exceptions import InvalidJudgment, JudgmentNotAllowed, TagNotAllowed
from search.judgments import judged_text_queries, judgment_record
from search.models import QueryLog, RelevanceJudgment
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


@pytest.fixture
def tagger(curator):
    from django.contrib.auth.models import Permission

    curator.user_permissions.add(Permission.objects.get(codename="change_image"))
    return type(curator).objects.get(id=curator.id)  # fresh, so the permission cache sees it


def test_a_relevant_result_takes_the_query_as_a_tag_and_is_re_embedded(client, tagger, results, queue, django_capture_on_commit_callbacks):
    client.force_login(tagger)
    page = {"q": "Red  Apple", "mode": "keyword"}
    assert 'type="checkbox" name="tag"' in client.get(reverse("search:page"), page).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("search:judge"), {"q": "Red  Apple", "image": results[1].id, "grade": 3, "tag": "on"})
    assert response.status_code == 302
    tree = Image.objects.get(id=results[1].id)
    assert (tree.tags, tree.embedding_status) == (["red apple"], "pending")
    # The image's embedding, and the judged query's vector (search/jobs.py).
    assert sorted((job.func_name, job.args) for job in queue.get_jobs()) == [
        ("embeddings.jobs.embed_images", ([results[1].id], None)),
        ("search.jobs.embed_judged_queries", ()),
    ]
    assert list(RelevanceJudgment.objects.values_list("query_key", "image_id", "grade")) == [("red apple", results[1].id, 3)]
    # The same tag again, with a regrade: the grade changes, the tags do not, nothing is queued.
    queue.empty()
    with django_capture_on_commit_callbacks(execute=True):
        judgment_record(curator=tagger, image_id=results[1].id, grade=2, query_text="red apple", tag=True)
    assert Image.objects.get(id=results[1].id).tags == ["red apple"] and queue.count == 0
    # Without the box ticked, a grade writes nothing to the image.
    judge(client, results[0], 3)
    assert Image.objects.get(id=results[0].id).tags == []


@pytest.mark.parametrize(
    "grade, query, picture, error, message",
    [
        (1, "apple", "", InvalidJudgment, "only a relevant result \\(grade 2 or 3\\) takes the query as a tag, not one graded 1"),
        (3, "x" * 101, "", InvalidJudgment, "a tag holds up to 100 characters; this query has 101"),
        (3, "", "ab" * 32, InvalidJudgment, "only a query in words can become a tag, not a picture"),
    ],
)
def test_a_refused_tag_records_nothing(tagger, results, grade, query, picture, error, message):
    with pytest.raises(error, match=message):
        judgment_record(curator=tagger, image_id=results[0].id, grade=grade, query_text=query, query_image_hash=picture, tag=True)
    assert not RelevanceJudgment.objects.exists() and Image.objects.get(id=results[0].id).tags == []


def test_curators_who_may_not_change_images_cannot_tag(client, curator, results):
    client.force_login(curator)
    assert 'type="checkbox" name="tag"' not in client.get(reverse("search:page"), {"q": "apple", "mode": "keyword"}).content.decode()
    response = client.post(reverse("search:judge"), {"q": "apple", "image": results[0].id, "grade": 3, "tag": "on"})
    assert response.status_code == 403 and "You may not change pictures’ tags." in response.content.decode()
    with pytest.raises(TagNotAllowed, match="curator may not change images' tags"):
        judgment_record(curator=curator, image_id=results[0].id, grade=3, query_text="apple", tag=True)
    assert not RelevanceJudgment.objects.exists() and Image.objects.get(id=results[0].id).tags == []


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


def test_admin_action_tags_images_with_their_relevant_queries(admin_client, client, curator, results, make_images, queue, django_capture_on_commit_callbacks):
    extra = make_images([{"title": "Pear", "tags": ("green apple",)}])[0]
    judgments = [
        judgment_record(curator=curator, image_id=results[0].id, grade=3, query_text="Red apple"),
        judgment_record(curator=curator, image_id=results[1].id, grade=1, query_text="red apple"),  # not relevant
        judgment_record(curator=curator, image_id=extra.id, grade=2, query_text="green apple"),  # already its tag
    ]
    changelist = reverse("admin:search_relevancejudgment_changelist")
    from django.contrib.auth.models import Permission

    curator.user_permissions.add(Permission.objects.get(codename="view_relevancejudgment"))
    client.force_login(curator)  # may judge and see judgments, may not change images: no such action
    listed = client.get(changelist)
    assert listed.status_code == 200 and "regrade_3" in listed.content.decode() and "tag_with_query" not in listed.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(changelist, {"action": "tag_with_query", "_selected_action": [judgment.id for judgment in judgments]}, follow=True)
    assert (
        "1 images took their query as a new tag and were queued for embedding. 1 judgments were left alone: graded below 2, "
        "a picture query, or a query over 100 characters."
    ) in response.content.decode()
    assert [Image.objects.get(id=image.id).tags for image in (*results, extra)] == [["red apple"], [], ["green apple"]]
    assert [job.args for job in queue.get_jobs() if job.func_name == "embeddings.jobs.embed_images"] == [([results[0].id], None)]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"grade": "<script>alert(1)</script>"}, "grade: Select a valid choice. &lt;script&gt;alert(1)&lt;/script&gt; is not one of the available choices."),
        ({"grade": "4"}, "grade: Select a valid choice. 4 is not one of the available choices."),
        ({"q": "apple\x00"}, "q: Null characters are not allowed."),
        ({"q": "  "}, "q: This field is required."),
        ({"q": "x" * 201}, "q: Ensure this value has at most 200 characters (it has 201)."),
        ({"image": "<b>1</b>"}, "image: Enter a whole number."),
        ({"image": "999999"}, "image 999999 does not exist"),
    ],
)
def test_bad_judgments_from_the_page_are_an_escaped_400(client, curator, fields, message):
    # No catalog needed: the form refuses these before any image is looked up.
    client.force_login(curator)
    response = client.post(reverse("search:judge"), {"q": "apple", "image": "1", "grade": "2"} | fields)
    assert response.status_code == 400
    html = response.content.decode()
    assert f"The judgment was not recorded: {message}" in html
    assert "<script>" not in html and "<b>1" not in html
    assert RelevanceJudgment.objects.count() == 0


def concurrent_grades(curator, image, grades: list[int]) -> list[int]:
    """Post each grade from its own thread (its own client, so its own database connection), all at once."""
    import threading

    from django.db import connections
    from django.test import Client

    barrier = threading.Barrier(len(grades))
    statuses = [0] * len(grades)

    def post(index: int, grade: int) -> None:
        try:
            client = Client(raise_request_exception=False)
            client.force_login(curator)
            barrier.wait(timeout=30)
            statuses[index] = client.post(reverse("search:judge"), {"q": "apple", "image": image.id, "grade": grade}).status_code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post, args=(index, grade)) for index, grade in enumerate(grades)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return statuses


@pytest.fixture
def committed_results(transactional_db, django_db_serialized_rollback, curator, make_images):
    # Committed rows, so that every thread's own connection sees them; serialized_rollback
    # restores the migration-made version 1 for the tests that follow.
    return make_images([{"title": "Red apple", "image_vector": unit(1, 0.1)}])


def test_ten_concurrent_equal_grades_make_one_row(committed_results, curator):
    assert concurrent_grades(curator, committed_results[0], [2] * 10) == [302] * 10
    assert list(RelevanceJudgment.objects.values_list("grade", "is_current")) == [(2, True)]


def test_ten_concurrent_regrades_keep_one_current_grade_and_the_history(committed_results, curator):
    grades = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert concurrent_grades(curator, committed_results[0], grades) == [302] * 10
    rows = list(RelevanceJudgment.objects.order_by("id").values_list("grade", "is_current"))
    assert [current for _, current in rows] == [False] * (len(rows) - 1) + [True]
    # Each recorded row changed the grade before it; none was lost to an error.
    assert all(rows[index][0] != rows[index - 1][0] for index in range(1, len(rows)))
    assert 4 <= len(rows) <= 10


@pytest.fixture
def second_curator(curator, django_user_model):
    other = django_user_model.objects.create_user("second curator", password="pw", is_staff=True)
    other.user_permissions.add(*curator.user_permissions.all())
    return django_user_model.objects.get(id=other.id)


@pytest.mark.slow
def test_a_curators_grade_0_stays_visible_and_reversible_to_them(client, curator, second_curator, make_images, version):
    from search.query_vectors import query_text_vectors

    vector = query_text_vectors(text="sleeping cat", version=version).raw
    two_cats = make_images([{"title": "Two Cats", "image_vector": vector}])[0]
    page = {"q": "sleeping cat", "mode": "semantic"}

    def shown(user) -> str:
        client.logout()
        if user:
            client.force_login(user)
        return client.get(reverse("search:page"), page).content.decode()

    judgment_record(curator=curator, image_id=two_cats.id, grade=0, query_text="sleeping cat", query_text_vector=vector)
    # One curator's 0 hides nothing from visitors; that curator sees their grade.
    assert "Two Cats" in shown(None)
    html = shown(curator)
    assert 'class="chosen">0</button>' in html and '<div class="curated">graded 0 by you</div>' in html
    # A second curator's 0 hides it from visitors; both curators still see it, marked, with the buttons.
    judgment_record(curator=second_curator, image_id=two_cats.id, grade=0, query_text="sleeping cat", query_text_vector=vector)
    assert "Two Cats" not in shown(None)
    html = shown(curator)
    assert "Two Cats" in html and '<div class="curated">graded 0 by you · hidden from visitors: graded 0 by 2 curators</div>' in html
    assert html.count('form class="judge"') == 1
    # Taking the 0 back, from the page, shows it to visitors again.
    assert judge(client, two_cats, 2, q="sleeping cat").status_code == 302
    assert "Two Cats" in shown(None)


def test_curators_see_and_regrade_their_own_judgments_in_the_admin(client, curator, second_curator, results):
    mine = judgment_record(curator=curator, image_id=results[0].id, grade=0, query_text="apple")
    theirs = judgment_record(curator=second_curator, image_id=results[1].id, grade=1, query_text="apple")
    client.force_login(curator)
    listing = client.get(reverse("admin:search_relevancejudgment_changelist"))
    assert listing.status_code == 200
    assert [int(value) for value in re.findall(r'name="_selected_action" value="(\d+)"', listing.content.decode())] == [mine.id]
    assert client.get(reverse("admin:search_relevancejudgment_change", args=[theirs.id])).status_code == 302  # not theirs to see
    response = client.post(reverse("admin:search_relevancejudgment_changelist"), {"action": "regrade_2", "_selected_action": [mine.id, theirs.id]})
    assert response.status_code == 302
    assert sorted(RelevanceJudgment.objects.filter(is_current=True).values_list("curator__username", "image_id", "grade")) == [
        ("curator", results[0].id, 2),
        ("second curator", results[1].id, 1),
    ]


def test_the_results_page_a_grade_returns_to_is_not_logged_as_a_search(client, curator, results):
    client.force_login(curator)
    assert client.get("/", {"q": "apple", "mode": "keyword"}).status_code == 200
    response = judge(client, results[0], 2)
    assert response.url == "/?q=apple&mode=keyword"
    again = client.get(response.url)
    assert again.status_code == 200 and [hit.image.id for hit in again.context["results"].hits] == [results[0].id, results[1].id]
    assert judge(client, results[1], 1).status_code == 302
    client.get(response.url)
    assert QueryLog.objects.count() == 1  # the curator's own search, not the two returns
    client.get(response.url)  # a reload of their own is a search again
    assert QueryLog.objects.count() == 2
