"""manage.py itself: Ctrl-C stops a command quietly, help starts no server, and a bad
setting is one line on stderr."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

MANAGE = str(Path(__file__).resolve().parents[2] / "manage.py")


def test_ctrl_c_stops_a_command_without_a_traceback():
    waiting = "import time; print('waiting', flush=True); time.sleep(120)"
    command = subprocess.Popen(
        [sys.executable, MANAGE, "shell", "--verbosity", "0", "-c", waiting],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )
    try:
        assert command.stdout.readline() == "waiting\n"
        command.send_signal(signal.SIGINT)
        _, errors = command.communicate(timeout=60)
    finally:
        command.kill()
    assert command.returncode == 130
    assert "Traceback" not in errors and "KeyboardInterrupt" not in errors


def fresh_environment(data_dir: Path) -> dict[str, str]:
    """The real settings on an empty data folder, with no external servers named."""
    base = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    return base | {"GLIMPSE_DATA_DIR": str(data_dir)}


@pytest.mark.parametrize(
    "arguments",
    [["evaluate_retrieval", "--help"], ["embed_worker", "-h"], ["help"], ["help", "import_images"], ["services", "status"], []],
    ids=["--help", "-h", "help", "help of a command", "services status", "no command"],
)
def test_help_and_looking_at_the_servers_start_none(tmp_path, arguments):
    done = subprocess.run(
        [sys.executable, MANAGE, *arguments], env=fresh_environment(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "postgres").exists() and not (tmp_path / "redis").exists()
    assert "glimpse:" not in done.stderr  # no "creating an embedded PostgreSQL" or the like


def test_importing_the_settings_starts_nothing(tmp_path):
    code = "import django; django.setup(); from django.conf import settings; print(settings.DATABASES['default']['HOST'])"
    environment = fresh_environment(tmp_path) | {"DJANGO_SETTINGS_MODULE": "config.settings"}
    done = subprocess.run([sys.executable, "-c", code], env=environment, cwd=Path(MANAGE).parent, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{tmp_path / 'postgres'}\n"  # where it will listen
    assert sorted(path.name for path in tmp_path.iterdir()) == ["secret_key"]


def test_a_bad_setting_is_one_line_on_stderr(tmp_path):
    environment = fresh_environment(tmp_path) | {"GLIMPSE_INFERENCE_PRECISION": "fp8"}
    done = subprocess.run([sys.executable, MANAGE, "check"], env=environment, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (1, "glimpse: GLIMPSE_INFERENCE_PRECISION='fp8': use f32 or bf16\n")
