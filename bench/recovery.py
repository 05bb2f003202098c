"""How long a process waits after kill -9 of each embedded server until it answers again.

    python bench/recovery.py [--rounds 5]

Runs on embedded servers of its own in a scratch data folder. Each round kills the server
with SIGKILL and times config.supervision's wait, the path a worker, a command or a web
request takes: notice the refused connection, restart the server under the folder lock,
answer a query. "reaped" is when the killed process vanished from the process table:
PostgreSQL cannot start before that, and it depends on the parent (PID 1 here).
"""
import argparse
import os
import signal
import tempfile
import threading
import time

from common import median, table

parser = argparse.ArgumentParser()
parser.add_argument("--rounds", type=int, default=5)
arguments = parser.parse_args()

os.environ["GLIMPSE_DATA_DIR"] = tempfile.mkdtemp(prefix="glimpse-recovery-")
os.environ.pop("DATABASE_URL", None)
os.environ.pop("REDIS_URL", None)
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
import django  # noqa: E402

django.setup()
import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

from config import embedded, supervision  # noqa: E402

embedded.start()


def round_trip(kill_pid: int, wait) -> tuple[float, float]:
    reaped = []

    def watch() -> None:
        while embedded.pid_exists(kill_pid):
            time.sleep(0.005)
        reaped.append(time.monotonic() - killed)

    killed = time.monotonic()
    os.kill(kill_pid, signal.SIGKILL)
    watcher = threading.Thread(target=watch)
    watcher.start()
    wait()
    back = time.monotonic() - killed
    watcher.join()
    return back, reaped[0]


client = redis.Redis.from_url(settings.REDIS_URL)
rows = []
try:
    postgres, redis_times = [], []
    for _ in range(arguments.rounds):
        # A back-end outlives its killed postmaster for a moment; time what a new connection meets.
        connection.close()
        pid = int((settings.DATA_DIR / "postgres" / "postmaster.pid").read_text().split()[0])
        postgres.append(round_trip(pid, supervision.database_wait))
        client.rpush("kept", "job")
        pid = int((settings.DATA_DIR / "redis" / "redis.pid").read_text())
        redis_times.append(round_trip(pid, lambda: supervision.redis_wait(client=client)))
    assert client.llen("kept") == arguments.rounds, "Redis lost acknowledged writes"
    for name, samples in (("PostgreSQL", postgres), ("Redis", redis_times)):
        backs = [back for back, _ in samples]
        reaps = [reap for _, reap in samples]
        rows.append([name, arguments.rounds, f"{median(backs):.2f}", f"{min(backs):.2f}", f"{max(backs):.2f}", f"{median(reaps):.2f}"])
    print(table(["server", "kills", "back after s (median)", "min", "max", "reaped after s (median)"], rows))
finally:
    connection.close()
    embedded.stop_embedded_redis(settings.DATA_DIR)
    embedded.stop_embedded_database(settings.DATA_DIR)
