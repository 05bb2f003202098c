"""manage.py itself: Ctrl-C stops a command quietly."""
import signal
import subprocess
import sys
from pathlib import Path

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
