"""The web server `make demo` and production run (gunicorn with config/gunicorn.py), for real."""
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connection

WORKERS, THREADS = 1, 2


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(db):
    port = free_port()
    environment = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings",
        GLIMPSE_TEST_DATABASE=connection.settings_dict["NAME"],
        GLIMPSE_TEST_MEDIA=str(settings.MEDIA_ROOT),
        GLIMPSE_WEB_WORKERS=str(WORKERS),
        GLIMPSE_WEB_THREADS=str(THREADS),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "--bind", f"127.0.0.1:{port}", "config.wsgi"],
        cwd=settings.BASE_DIR, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, process.stderr.read().decode()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "gunicorn did not listen within 90 s"
            time.sleep(0.2)
    yield port
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0


def fetch(port: int, method: str, path: str) -> tuple[int, bytes]:
    """One raw request: http.client sends the path as given, `..` included."""
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        client.request(method, path)
        response = client.getresponse()
        return response.status, response.read()
    finally:
        client.close()


def test_head_static_files_and_traversal(server):
    assert fetch(server, "HEAD", "/") == (200, b"")
    assert fetch(server, "HEAD", "/api/search?q=apple&mode=fuzzy") == (422, b"")
    status, body = fetch(server, "GET", "/static/admin/css/base.css")
    assert status == 200 and body.startswith(b"/*")
    for path in ("/static/../..", "/static/../../config/settings.py", "/static/..%2f..%2fmanage.py", "/media/../../manage.py"):
        status, body = fetch(server, "GET", path)
        assert status in (400, 404), (path, status)
        assert b"Traceback" not in body and b"SECRET_KEY" not in body


def test_connections_stay_within_workers_times_threads(server):
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda _: fetch(server, "GET", "/")[0], range(200)))
    assert statuses == [200] * 200
    (held,) = connection.cursor().execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [connection.settings_dict["NAME"]]
    ).fetchone()
    assert 1 <= held <= WORKERS * THREADS


@pytest.mark.slow
def test_each_worker_loads_the_text_encoders_before_its_first_request(db, tmp_path):
    port, log = free_port(), tmp_path / "gunicorn.log"
    environment = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings",
        GLIMPSE_TEST_DATABASE=connection.settings_dict["NAME"],
        GLIMPSE_TEST_MEDIA=str(settings.MEDIA_ROOT),
        GLIMPSE_WEB_WORKERS="2",
        GLIMPSE_WEB_THREADS="1",
    )
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.py", "--bind", f"127.0.0.1:{port}", "config.wsgi"],
            cwd=settings.BASE_DIR, env=environment, stdout=subprocess.DEVNULL, stderr=output,
        )
    try:
        deadline = time.monotonic() + 180
        while log.read_text(encoding="utf-8").count("text encoders ready") < 2:
            assert process.poll() is None, log.read_text(encoding="utf-8")
            assert time.monotonic() < deadline, log.read_text(encoding="utf-8")
            time.sleep(0.5)
        assert fetch(port, "GET", "/")[0] == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    assert "not loaded" not in log.read_text(encoding="utf-8")
