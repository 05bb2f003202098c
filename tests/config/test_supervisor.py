"""`make demo` runs web, worker and scheduler under config.supervisor: a kill -9 of one used
to end all three (the shell's EXIT trap stopped the others and nothing restarted)."""
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from rq.cron import CronScheduler

from embeddings.worker import OutageProofWorker
from tests.config.conftest import wait_for


def sleeper(pids: Path) -> str:
    """A child that notes its pid in `pids` and runs until stopped."""
    script = f"import os, time; open({str(pids)!r}, 'a').write(f'{{os.getpid()}}\\n'); time.sleep(600)"
    return f"{sys.executable} -c {script!r}"


def pids_in(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


class Supervised:
    """python -m config.supervisor with `children`; its stderr is collected line by line."""

    def __init__(self, *arguments: str, env: dict | None = None):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "config.supervisor", *arguments],
            cwd=settings.BASE_DIR, stderr=subprocess.PIPE, text=True, env=env,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stderr), daemon=True)
        self.reader.start()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        returncode = self.process.wait(timeout=30)
        self.reader.join(timeout=5)
        return returncode


def test_a_killed_child_comes_back_while_the_others_keep_running(tmp_path):
    web, worker = tmp_path / "web", tmp_path / "worker"
    supervisor = Supervised("--first-pause", "0.2", f"web={sleeper(web)}", f"worker={sleeper(worker)}")
    try:
        wait_for(lambda: len(pids_in(web)) == 1 and len(pids_in(worker)) == 1, seconds=30, what="both children started")
        [first_worker] = pids_in(worker)
        os.kill(first_worker, signal.SIGKILL)
        wait_for(lambda: len(pids_in(worker)) == 2, seconds=30, what="the worker was started again")
        assert pids_in(worker)[1] != first_worker
        assert len(pids_in(web)) == 1
        os.kill(pids_in(web)[0], 0)  # the web server never stopped
        assert supervisor.process.poll() is None
    finally:
        returncode = supervisor.stop()
    assert returncode == 0
    for pid in pids_in(web) + pids_in(worker)[1:]:
        assert not _running(pid), f"child {pid} outlived the supervisor's stop"
    log = "".join(supervisor.lines)
    assert f"worker (pid {first_worker}) was killed by SIGKILL" in log, log
    assert "restarting it in 0.2 s" in log, log
    assert "Traceback" not in log, log


def child_environment() -> dict:
    """What a child needs to use this test run's database, Redis database and media."""
    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="tests.settings",
        GLIMPSE_TEST_DATABASE=connection.settings_dict["NAME"],
        GLIMPSE_TEST_MEDIA=str(settings.MEDIA_ROOT),
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_killed_embed_worker_is_back_and_finishes_the_job_it_was_running(queue, tmp_path):
    """The issue's case: kill -9 of embed_worker under `make demo`. The supervisor starts it
    again, and the new worker runs the job the dead one left behind (rq would have failed
    it as abandoned when its timeout passed)."""
    web = tmp_path / "web"
    supervisor = Supervised(
        "--first-pause", "0.2", f"web={sleeper(web)}", f"worker={sys.executable} manage.py embed_worker --no-sweep",
        env=child_environment(),
    )
    try:
        job = queue.enqueue(time.sleep, 5, job_timeout=3600)
        wait_for(lambda: job.get_status(refresh=True) == "started", seconds=240, what="the worker took the job")
        [first] = OutageProofWorker.all(connection=queue.connection)
        os.kill(first.pid, signal.SIGKILL)
        wait_for(lambda: job.get_status(refresh=True) == "finished", seconds=240, what="the restarted worker finished the job")
        assert len(pids_in(web)) == 1 and supervisor.process.poll() is None
    finally:
        assert supervisor.stop() == 0
    assert queue.failed_job_registry.count == 0
    assert job.id not in queue.started_job_registry.get_job_ids(cleanup=False)
    log = "".join(supervisor.lines)
    assert f"worker (pid {first.pid}) was killed by SIGKILL" in log, log
    assert f"job {job.id} goes back to the queue: worker {first.name} died while running it" in log, log


@pytest.mark.django_db
def test_the_real_scheduler_is_back_after_a_kill_9_while_the_web_keeps_running(queue, tmp_path):
    web = tmp_path / "web"
    supervisor = Supervised(
        "--first-pause", "0.2", f"web={sleeper(web)}",
        f"scheduler={sys.executable} manage.py scheduler tests/config/cron_every_second.py", env=child_environment(),
    )
    try:
        wait_for(lambda: len(CronScheduler.all(queue.connection)) == 1, seconds=60, what="the scheduler registered itself")
        [first] = CronScheduler.all(queue.connection)
        os.kill(first.pid, signal.SIGKILL)
        wait_for(
            lambda: [scheduler.pid for scheduler in CronScheduler.all(queue.connection) if scheduler.pid != first.pid],
            seconds=60, what="a new scheduler registered itself",
        )
        assert len(pids_in(web)) == 1 and supervisor.process.poll() is None
    finally:
        assert supervisor.stop() == 0
    log = "".join(supervisor.lines)
    assert f"scheduler (pid {first.pid}) was killed by SIGKILL" in log, log
    assert "Traceback" not in log, log


def test_a_child_that_keeps_dying_is_restarted_after_pauses_that_double(tmp_path):
    starts = tmp_path / "starts"
    dies_at_once = f"{sys.executable} -c \"open({str(starts)!r}, 'a').write('x\\n'); raise SystemExit(3)\""
    supervisor = Supervised(
        "--first-pause", "0.1", "--longest-pause", "0.4", f"web={sleeper(tmp_path / 'web')}", f"worker={dies_at_once}"
    )
    try:
        wait_for(lambda: len(announced_pauses(supervisor.lines)) >= 5, seconds=60, what="five restarts")
    finally:
        assert supervisor.stop() == 0
    pauses = announced_pauses(supervisor.lines)[:5]
    assert pauses == ["0.1", "0.2", "0.4", "0.4", "0.4"], supervisor.lines
    assert "worker (pid" in "".join(supervisor.lines) and "exited with status 3" in "".join(supervisor.lines)
    assert len(pids_in(tmp_path / "web")) == 1


def test_a_command_that_cannot_run_is_retried_not_fatal(tmp_path):
    supervisor = Supervised("--first-pause", "0.1", f"web={sleeper(tmp_path / 'web')}", "worker=/nonexistent/glimpse-worker")
    try:
        wait_for(lambda: len(announced_pauses(supervisor.lines)) >= 2, seconds=30, what="two tries")
        assert supervisor.process.poll() is None
    finally:
        assert supervisor.stop() == 0
    assert "cannot run worker (No such file or directory: /nonexistent/glimpse-worker)" in "".join(supervisor.lines)


def test_a_malformed_child_is_a_one_line_error():
    result = subprocess.run(
        [sys.executable, "-m", "config.supervisor", "no-equals-sign"], cwd=settings.BASE_DIR, capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "expected NAME=COMMAND, got 'no-equals-sign'" in result.stderr
    assert "Traceback" not in result.stderr


def test_make_demo_runs_its_three_processes_under_the_supervisor():
    demo = (Path(settings.BASE_DIR) / "Makefile").read_text(encoding="utf-8").split("\ndemo:")[1].split("\n\n")[0]
    assert "-m config.supervisor" in demo
    assert all(name in demo for name in ("web=", "worker=", "scheduler="))


def announced_pauses(lines: list[str]) -> list[str]:
    """The restart pauses the supervisor announced, in order."""
    return re.findall(r"restarting it in ([0-9.]+) s", "".join(list(lines)))


def _running(pid: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        time.sleep(0.05)
    return True
