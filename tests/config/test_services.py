"""The embedded servers, in a scratch data folder of their own."""
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest
import redis

from config import services


@pytest.fixture
def data_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("svc")
    yield folder
    services.stop_embedded_redis(folder)
    if (folder / "postgres" / "postmaster.pid").exists():
        services.stop_embedded_database(folder)


def wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while services.pid_is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_redis_starts_once_and_recovers_from_a_killed_run(data_dir, capsys):
    url = services.embedded_redis_url(data_dir)
    assert services.embedded_redis_url(data_dir) == url  # a second start attaches
    client = redis.Redis.from_url(url)
    client.set("kept", "1")
    client.save()
    pid = int((data_dir / "redis" / "redis.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    assert services.embedded_redis_url(data_dir) == url
    assert f"Redis pid {pid} from an earlier run is gone" in capsys.readouterr().err
    assert redis.Redis.from_url(url).get("kept") == b"1"


def test_postgres_starts_once_and_recovers_from_a_killed_run(data_dir, capsys):
    url = services.embedded_database_url(data_dir)
    assert "creating an embedded PostgreSQL" in capsys.readouterr().err
    assert services.embedded_database_url(data_dir) == url
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE kept (n int)")
        connection.execute("INSERT INTO kept VALUES (7)")
        assert connection.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    pid = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    # A new process, as after a crash (this one remembers the server it started).
    restarted = subprocess.run(
        [sys.executable, "-c", f"from pathlib import Path; from config import services; print(services.embedded_database_url(Path({str(data_dir)!r})))"],
        capture_output=True, text=True, timeout=120,
    )
    assert restarted.stdout.strip() == url, restarted.stderr
    assert f"PostgreSQL pid {pid} from an earlier run is gone" in restarted.stderr
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT n FROM kept").fetchone() == (7,)
