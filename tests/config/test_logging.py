"""What the log says about refused requests: one line each; a server error keeps its traceback."""
import io
import logging

import pytest
from django.test import Client


@pytest.fixture
def console():
    """What the console handler of settings.LOGGING writes, as text."""
    (handler,) = [handler for handler in logging.getLogger().handlers if handler.name == "console"]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


def test_refused_requests_are_one_line_each(console, db, django_user_model):
    django_user_model.objects.create_user("editor", password="pw", is_staff=True)
    client = Client(raise_request_exception=False)
    client.login(username="editor", password="pw")
    assert client.get("/admin/analytics/").status_code == 403  # PermissionDenied
    assert client.get("/media/../../manage.py").status_code == 400  # SuspiciousFileOperation
    assert client.get("/no/such/page").status_code == 404
    lines = console.getvalue().splitlines()
    assert "Traceback" not in console.getvalue()
    assert lines[0] == "Forbidden (Permission denied): /admin/analytics/"
    assert lines[1].startswith("The joined path (/manage.py) is located outside of the base path component (")
    assert lines[2] == "Not Found: /no/such/page"
    assert len(lines) == 3


def test_a_server_error_keeps_its_traceback(console, db, settings):
    from django.urls import path

    def broken(request):
        raise RuntimeError("the detail")

    settings.ROOT_URLCONF = type("urls", (), {"urlpatterns": [path("broken", broken)]})
    assert Client(raise_request_exception=False).get("/broken").status_code == 500
    output = console.getvalue()
    assert output.startswith("Internal Server Error: /broken\nTraceback (most recent call last):") and "RuntimeError: the detail" in output
