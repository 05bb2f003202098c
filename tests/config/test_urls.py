"""Who may open what, and how the site answers odd requests: HEAD, path traversal, unknown pages."""
import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import URLPattern, get_resolver, reverse

RQ_ARGUMENTS = {
    "queue_index": "0",
    "connection_index": "0",
    "scheduler_index": "0",
    "job_id": "no-such-job",
    "result_id": "no-such-result",
    "key": "no-such-worker",
    "scheduler_name": "no-such-scheduler",
    "cron_job_name": "no/such/job",
    "token": "guess",
}


def rq_urls() -> list[str]:
    """Every URL of the dashboard, its arguments filled in."""
    (rq,) = [entry for entry in get_resolver().url_patterns if getattr(entry, "namespace", None) == "django_rq"]
    urls = []
    for pattern in rq.url_patterns:
        assert isinstance(pattern, URLPattern)
        arguments = {name: RQ_ARGUMENTS[name] for name in pattern.pattern.regex.groupindex}
        urls.append(reverse(f"django_rq:{pattern.name}", kwargs=arguments))
    return urls


@pytest.fixture
def staff(db, django_user_model):
    return django_user_model.objects.create_user("staff", password="pw", is_staff=True)


def test_the_dashboard_lists_every_view_of_django_rq():
    urls = rq_urls()
    assert len(urls) == 26 and len(set(urls)) == len(urls)
    assert "/admin/rq/queues/0/empty/" in urls and "/admin/rq/stats.json/" in urls


def test_staff_without_the_permission_cannot_open_or_act_on_the_dashboard(client, staff, queue):
    queue.enqueue("math.sqrt", 4)
    client.force_login(staff)
    for url in rq_urls():
        assert (url, client.get(url).status_code) == (url, 403)
        assert (url, client.post(url, {"action": "delete", "job_ids": [queue.job_ids[0]]}).status_code) == (url, 403)
    assert queue.count == 1  # the queue was not emptied
    assert client.get("/admin/django_rq/dashboard/").status_code == 404  # django-rq's own admin pages are off


def test_anonymous_users_are_sent_to_the_login(client, db):
    for url in rq_urls():
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/?next="), url


def test_superusers_and_staff_granted_the_permission_see_the_queues(admin_client, client, staff, queue):
    for url in ("/admin/rq/", "/admin/rq/queues/0/", "/admin/rq/queues/0/details/", "/admin/rq/workers/0/", "/admin/rq/stats.json/"):
        assert (url, admin_client.get(url).status_code) == (url, 200)
    staff.user_permissions.add(Permission.objects.get(content_type__app_label="django_rq", codename="admin"))
    client.force_login(staff)
    assert client.get("/admin/rq/").status_code == 200
    queue.enqueue("math.sqrt", 4)
    assert client.post(reverse("django_rq:clear", args=[0]), {"post": "yes"}).status_code == 302
    assert queue.count == 0


@pytest.mark.parametrize("url", ["/", "/api/search?q=apple", "/admin/login/"])
def test_head_is_allowed_wherever_get_is(client, db, url):
    get, head = client.get(url), client.head(url)
    assert head.status_code == get.status_code and head.status_code in (200, 400)
    assert head.content == b""


@pytest.mark.parametrize("url", ["/static/../..", "/static/../../config/settings.py", "/static/%2e%2e/%2e%2e/manage.py", "/media/../../manage.py", "/media/%2e%2e/x"])
def test_path_traversal_is_a_plain_400_or_404(client, db, url):
    response = client.get(url)
    assert response.status_code in (400, 404), url
    assert b"SECRET" not in response.content and b"Traceback" not in response.content


def test_static_files_are_served(client, db):
    response = client.get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"/*")


def test_error_pages_give_no_details(client, db):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    html = response.content.decode()
    assert "<h1>Not found</h1>" in html and "no/such/page" not in html and "urlpatterns" not in html

    bad = client.get("/media/../../manage.py")
    assert bad.status_code == 400 and "<h1>Bad request</h1>" in bad.content.decode()


def test_a_server_error_is_a_plain_page(db, settings):
    from django.urls import path

    def broken(request):
        raise RuntimeError("the secret detail")

    settings.ROOT_URLCONF = type("urls", (), {"urlpatterns": [path("broken", broken)]})
    client = Client(raise_request_exception=False)
    response = client.get("/broken")
    assert response.status_code == 500
    html = response.content.decode()
    assert "<h1>Something went wrong</h1>" in html and "secret detail" not in html and "RuntimeError" not in html


def test_the_dashboard_answers_404_for_queues_workers_schedulers_and_jobs_that_do_not_exist(db, django_user_model, queue):
    django_user_model.objects.create_superuser("root", password="pw")
    client = Client(raise_request_exception=False)
    client.login(username="root", password="pw")
    queue.enqueue("math.sqrt", 4)
    answers = {}
    for url in rq_urls():
        if "stats.json" in url or "metrics" in url:
            continue
        # A queue that does not exist; and in queue 0, a job or worker that does not.
        for missing in {url.replace("/0/", "/99/"), *([url] if "no-such" in url or "/actions/" in url else [])} - {"/admin/rq/"}:
            for method in (client.get, client.post):
                answers[(method.__name__, missing)] = method(missing, {"action": "delete", "job_ids": ["no-such-job"]}).status_code
    errors = {key: status for key, status in answers.items() if status >= 500}
    assert errors == {}
    for url in ("/admin/rq/queues/99/", "/admin/rq/workers/99/", "/admin/rq/schedulers/99/", "/admin/rq/queues/0/no-such-job/requeue/"):
        assert (url, answers[("get", url)], answers[("post", url)]) == (url, 404, 404)
    assert queue.count == 1
