"""What a process does when PostgreSQL or Redis stops answering.

Whichever process notices first (a web request, a worker, a command) restarts a dead
embedded server; config.embedded' folder lock makes processes that notice together start
one server, not two. Servers named by DATABASE_URL / REDIS_URL belong to someone else:
they are only waited for, with growing pauses.
"""
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import InterfaceError, OperationalError, connection

from config import embedded
from config.embedded import say

FIRST_PAUSE = 0.1
LONGEST_PAUSE = 10.0
DATABASE_ERRORS = (OperationalError, InterfaceError)
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)

T = TypeVar("T")


def database_unreachable(error: BaseException) -> bool:
    """True when `error` means the server went away, not that one statement failed.

    Connection failures carry no SQLSTATE; a server shutting down or restarting answers
    class 57P; a broken link is class 08. A deadlock or a cancelled query is neither.
    """
    cause = error.__cause__ or error
    if isinstance(cause, (psycopg.InterfaceError, InterfaceError)):
        return True
    if isinstance(cause, psycopg.OperationalError):
        return cause.sqlstate is None or cause.sqlstate.startswith(("08", "57P"))
    return False


def first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def database_revive() -> None:
    """Start the embedded PostgreSQL again if it died; nothing for an external server."""
    if not settings.GLIMPSE_EMBEDDED_DATABASE:
        return
    try:
        embedded.embedded_database_url(settings.DATA_DIR)
    except (subprocess.SubprocessError, psycopg.Error, ImproperlyConfigured) as error:
        # Back-ends of the killed server can hold its shared memory for a moment; the next try gets it.
        say(f"PostgreSQL did not start yet ({first_line(error)}); trying again")


def redis_revive() -> bool:
    """Start the embedded Redis again if it died; True when it answers now (False for an external one)."""
    if not settings.GLIMPSE_EMBEDDED_REDIS:
        return False
    try:
        embedded.embedded_redis_url(settings.DATA_DIR)
    except (subprocess.SubprocessError, ImproperlyConfigured) as error:
        say(f"Redis did not start yet ({first_line(error)}); trying again")
        return False
    return True


def database_wait() -> bool:
    """Block until the default database answers; True when it was down and had to be waited for."""

    def probe():
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    # A connection that lost its server never works again; closing it makes the next try open a new one.
    return wait_until_answering("the database", probe=probe, errors=DATABASE_ERRORS, revive=database_revive, reset=connection.close)


def redis_wait(*, client: redis.Redis) -> bool:
    """Block until Redis answers `client`; True when it was down and had to be waited for."""
    return wait_until_answering("Redis", probe=client.ping, errors=REDIS_ERRORS, revive=redis_revive)


def wait_until_answering(
    what: str, *, probe: Callable[[], object], errors: tuple, revive: Callable[[], object], reset: Callable[[], None] = lambda: None
) -> bool:
    """Call `probe` until it stops raising `errors`, reviving the server between pauses that double up to LONGEST_PAUSE."""
    pause = FIRST_PAUSE
    down_since = None
    while True:
        try:
            probe()
        except errors as error:
            reset()
            if down_since is None:
                down_since = time.monotonic()
                say(f"{what} does not answer ({first_line(error)}); waiting for it")
            revive()
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)
            continue
        if down_since is not None:
            say(f"{what} answers again after {time.monotonic() - down_since:.1f} s")
        return down_since is not None


def database_retrying(action: Callable[[], T]) -> T:
    """Run `action`, one transaction, again once the database is back if it went away during it.

    The transaction was rolled back, or, if the server died just as it committed, the
    second run finds its rows already there: nothing is lost or written twice.
    """
    while True:
        try:
            return action()
        except DATABASE_ERRORS as error:
            if not database_unreachable(error):
                raise
            say(f"lost the database ({first_line(error)}); trying again once it answers")
            database_wait()
