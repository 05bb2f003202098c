"""`manage.py services status|stop`: says what runs where, and never starts a server to say it."""
import os
import re
import subprocess
import sys
from pathlib import Path

from django.core.management import call_command

from config import embedded

MANAGE = str(Path(__file__).resolve().parents[2] / "manage.py")


def run(*args: str, data_dir: Path) -> str:
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    done = subprocess.run(
        [sys.executable, MANAGE, "services", *args], env={**env, "GLIMPSE_DATA_DIR": str(data_dir)}, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_status_and_stop_start_nothing(data_dir):
    lines = run("status", data_dir=data_dir).splitlines()
    assert lines == [
        f"data folder: {data_dir}",
        f"PostgreSQL:  not created yet (the first command that needs it creates it in {data_dir / 'postgres'})",
        f"Redis:       not created yet (the first command that needs it creates it in {data_dir / 'redis'})",
    ]
    assert run("stop", data_dir=data_dir) == "no embedded server was running; nothing stopped\n"
    assert not (data_dir / "postgres").exists() and not (data_dir / "redis").exists()


def test_status_names_pids_and_sockets_and_stop_says_what_it_stopped(data_dir, settings, capsys):
    embedded.embedded_database_url(data_dir)
    embedded.embedded_redis_url(data_dir)
    settings.DATA_DIR = data_dir
    postgres_pid = int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
    redis_pid = int((data_dir / "redis" / "redis.pid").read_text())
    capsys.readouterr()

    call_command("services", "status")
    status = capsys.readouterr().out
    assert f"PostgreSQL:  running, pid {postgres_pid}, socket " in status
    assert re.search(rf"\.s\.PGSQL\.\d+, data in {re.escape(str(data_dir / 'postgres'))}\n", status)
    assert f"Redis:       running, pid {redis_pid}, socket {data_dir / 'redis' / 'redis.sock'}, data in {data_dir / 'redis'}\n" in status

    call_command("services", "stop")
    assert capsys.readouterr().out == f"stopped Redis (pid {redis_pid}) and PostgreSQL (pid {postgres_pid})\n"
    call_command("services", "status")
    after = capsys.readouterr().out
    assert f"PostgreSQL:  not running (the next command that needs it starts it), data in {data_dir / 'postgres'}" in after
    assert f"Redis:       not running (the next command that needs it starts it), data in {data_dir / 'redis'}" in after
    call_command("services", "stop")
    assert capsys.readouterr().out == "no embedded server was running; nothing stopped\n"


def test_the_command_itself_imports_no_model_code():
    code = (
        "import sys, catalog.management.commands.services; "
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'torch', 'timm', 'transformers', 'embeddings'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=Path(MANAGE).parent)
    assert done.stdout == "[]\n", done.stderr
