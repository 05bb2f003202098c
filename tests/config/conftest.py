"""Killing the embedded servers that the test run itself uses (its database is test_glimpse
on the same PostgreSQL), and leaving them running for the tests that follow."""
import os
import signal
import time

import pytest
from django.conf import settings
from django.db import connection

from config import embedded


def wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while embedded.pid_is_running(pid):
        assert time.monotonic() < deadline, f"pid {pid} outlived kill -9 by 10 s"
        time.sleep(0.02)


def kill_postgres() -> int:
    """kill -9 the postmaster, as a crash would; returns its pid."""
    pid = int((settings.DATA_DIR / "postgres" / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    return pid


def kill_redis() -> int:
    pid = int((settings.DATA_DIR / "redis" / "redis.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_until_gone(pid)
    return pid


def postgres_is_running() -> bool:
    pid = int((settings.DATA_DIR / "postgres" / "postmaster.pid").read_text().split()[0])
    return embedded.pid_is_running(pid)


@pytest.fixture
def outage():
    """For tests that kill a server (marked django_db(transaction=True, serialized_rollback=True),
    so that the flush after them leaves the database as later tests expect): afterwards both
    servers run again and this process's broken connection is dropped, before the flush."""
    yield
    connection.close()
    embedded.embedded_database_url(settings.DATA_DIR)
    embedded.embedded_redis_url(settings.DATA_DIR)


def wait_for(condition, *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.02)
