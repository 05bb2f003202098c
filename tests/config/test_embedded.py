"""The embedded servers, in a scratch data folder of their own."""
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest
import redis

from config import embedded


def postmaster_pid(data_dir) -> int:
    return int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])


def wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while embedded.pid_is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_redis_starts_once_and_recovers_from_a_killed_run(data_dir, capsys):
    url = embedded.embedded_redis_url(data_dir)
    assert embedded.embedded_redis_url(data_dir) == url  # a second start attaches
    client = redis.Redis.from_url(url)
    client.set("kept", "1")
    client.save()
    pid = int((data_dir / "redis" / "redis.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    assert embedded.embedded_redis_url(data_dir) == url
    assert f"Redis pid {pid} is gone" in capsys.readouterr().err
    assert redis.Redis.from_url(url).get("kept") == b"1"


def redis_pid(data_dir) -> int:
    return int((data_dir / "redis" / "redis.pid").read_text())


def test_redis_keeps_what_it_acknowledged_through_a_kill(data_dir, capsys):
    """The queue lives in the append-only file: no snapshot is needed to survive kill -9."""
    client = redis.Redis.from_url(embedded.embedded_redis_url(data_dir))
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    assert client.config_get("save") == {"save": "60 1"}
    assert client.config_get("appendfsync") == {"appendfsync": "always"}
    client.rpush("queue", "job-1", "job-2")
    pid = redis_pid(data_dir)
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    client = redis.Redis.from_url(embedded.embedded_redis_url(data_dir))
    assert f"Redis pid {pid} is gone" in capsys.readouterr().err
    assert client.lrange("queue", 0, -1) == [b"job-1", b"job-2"]


def test_a_redis_folder_with_only_a_snapshot_keeps_its_data_and_turns_aof_on(data_dir):
    """Redis 6 with AOF on reads only the AOF; an older folder must not start empty."""
    client = redis.Redis.from_url(embedded.embedded_redis_url(data_dir))
    client.set("kept", "1")
    client.shutdown(save=True)
    (data_dir / "redis" / "appendonly.aof").unlink()
    client = redis.Redis.from_url(embedded.embedded_redis_url(data_dir))
    assert client.get("kept") == b"1"
    assert client.config_get("appendonly") == {"appendonly": "yes"}
    pid = redis_pid(data_dir)
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    assert redis.Redis.from_url(embedded.embedded_redis_url(data_dir)).get("kept") == b"1"


def test_postgres_starts_once_and_recovers_from_a_killed_run(data_dir, capsys):
    url = embedded.embedded_database_url(data_dir)
    assert "creating an embedded PostgreSQL" in capsys.readouterr().err
    assert embedded.embedded_database_url(data_dir) == url
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE kept (n int)")
        connection.execute("INSERT INTO kept VALUES (7)")
        assert connection.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    pid = postmaster_pid(data_dir)
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    # The process that started it, as a supervising web or worker process does.
    assert embedded.embedded_database_url(data_dir) == url
    assert f"PostgreSQL pid {pid} is gone" in capsys.readouterr().err
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT n FROM kept").fetchone() == (7,)
    pid = postmaster_pid(data_dir)
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    # A new process, as after a crash.
    restarted = subprocess.run(
        [sys.executable, "-c", f"from pathlib import Path; from config import embedded; print(embedded.embedded_database_url(Path({str(data_dir)!r})))"],
        capture_output=True, text=True, timeout=120,
    )
    assert restarted.stdout.strip() == url, restarted.stderr
    assert f"PostgreSQL pid {pid} is gone" in restarted.stderr
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT n FROM kept").fetchone() == (7,)


GIB = 1024**3


def test_settings_are_sized_from_memory_and_cores():
    assert embedded.server_settings_tuned(memory=24 * GIB, cpus=2) == {
        "shared_buffers": "6144MB",
        "effective_cache_size": "18432MB",
        "maintenance_work_mem": "3072MB",
        "max_parallel_maintenance_workers": "1",
        "work_mem": "61MB",
    }
    large = embedded.server_settings_tuned(memory=256 * GIB, cpus=64, shared_memory=64 * 1024**2)
    assert (large["shared_buffers"], large["maintenance_work_mem"], large["max_parallel_maintenance_workers"], large["work_mem"]) == (
        "8192MB", "64MB", "7", "64MB"
    )  # capped; parallel builds keep their graph in the 64 MB /dev/shm that Docker gives by default
    assert embedded.server_settings_tuned(memory=GIB // 2, cpus=1)["shared_buffers"] == "128MB"


@pytest.mark.django_db
def test_the_running_test_server_has_the_computed_settings():
    from django.db import connection

    wanted = embedded.server_settings()
    with connection.cursor() as cursor:
        for name in ("shared_buffers", "effective_cache_size", "maintenance_work_mem", "work_mem"):
            cursor.execute("SELECT pg_size_bytes(current_setting(%s)) = pg_size_bytes(%s)", [name, wanted[name]])
            assert cursor.fetchone() == (True,), name
        cursor.execute("SHOW max_parallel_maintenance_workers")
        assert cursor.fetchone() == (wanted["max_parallel_maintenance_workers"],)


def shown(url: str, *names: str) -> tuple[str, ...]:
    with psycopg.connect(url) as connection:
        return tuple(connection.execute(f"SHOW {name}").fetchone()[0] for name in names)


def test_overrides_apply_to_an_existing_folder_with_a_restart_only_when_needed(data_dir, capsys):
    url = embedded.embedded_database_url(data_dir, overrides={"work_mem": "8MB"})
    assert shown(url, "work_mem") == ("8MB",)
    pid = postmaster_pid(data_dir)
    embedded.embedded_database_url(data_dir, overrides={"work_mem": "16MB"})
    assert shown(url, "work_mem") == ("16MB",)
    assert postmaster_pid(data_dir) == pid  # a reload sufficed
    capsys.readouterr()
    embedded.embedded_database_url(data_dir, overrides={"work_mem": "16MB", "shared_buffers": "256MB"})
    assert "to apply shared_buffers" in capsys.readouterr().err
    assert shown(url, "work_mem", "shared_buffers") == ("16MB", "256MB")
    assert postmaster_pid(data_dir) != pid


def test_bad_overrides_fail_with_the_setting_named(data_dir):
    with pytest.raises(embedded.ImproperlyConfigured, match="not name=value"):
        embedded.server_settings_from_text("shared_buffers=2GB,work_mem")
    assert embedded.server_settings_from_text(" shared_buffers=2GB , work_mem=8MB ") == {"shared_buffers": "2GB", "work_mem": "8MB"}
    with pytest.raises(embedded.ImproperlyConfigured, match="shared_buffers='lots'"):
        embedded.embedded_database_url(data_dir, overrides={"shared_buffers": "lots"})
    with pytest.raises(embedded.ImproperlyConfigured, match="no_such_setting"):
        embedded.embedded_database_url(data_dir, overrides={"no_such_setting": "1"})


def test_prefetch_asks_for_the_files_of_hnsw_indexes(data_dir):
    url = embedded.embedded_database_url(data_dir)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION vector")
        connection.execute("CREATE TABLE items (embedding vector(3))")
        connection.execute("INSERT INTO items SELECT ARRAY[i, 1, 1]::vector FROM generate_series(1, 100) i")
        connection.execute("CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_cosine_ops)")
        index_file = connection.execute("SELECT pg_relation_filepath('items_hnsw')").fetchone()[0]
        assert embedded.indexes_prefetch(connection) == [data_dir / "postgres" / index_file]
