"""Whether the embedded servers of a data folder are running, read from their pid files and
sockets without starting anything (config/embedded.py starts them)."""
from dataclasses import dataclass
from pathlib import Path

import psycopg

from config.embedded import pid_is_running, redis_answers, redis_paths

# A server that does not answer within this is reported as not answering, not waited for.
ANSWER_SECONDS = 2


@dataclass(frozen=True)
class ServerStatus:
    name: str
    running: bool
    pid: int | None  # from the pid file; a dead pid here is a server that crashed
    address: str  # socket or port clients use
    folder: Path

    def describe(self) -> str:
        if self.running:
            return f"running, pid {self.pid}, {self.address}, data in {self.folder}"
        if self.pid and pid_is_running(self.pid):
            return f"not answering, pid {self.pid} holds {self.folder}; stop it or look at its log"
        if self.pid:
            return f"not running (pid {self.pid} is gone; the next command that needs it starts it again), data in {self.folder}"
        if self.folder.exists():
            return f"not running (the next command that needs it starts it), data in {self.folder}"
        return f"not created yet (the first command that needs it creates it in {self.folder})"


def postgres_status(data_dir: Path) -> ServerStatus:
    folder = data_dir / "postgres"
    # postmaster.pid: pid, data folder, start time, port, socket folder, listen address, ...
    lines = (folder / "postmaster.pid").read_text().splitlines() if (folder / "postmaster.pid").exists() else []
    pid = int(lines[0]) if lines and lines[0].strip().isdigit() else None
    port = lines[3].strip() if len(lines) > 3 else ""
    socket_dir = lines[4].strip() if len(lines) > 4 else ""
    running = False
    if pid and socket_dir and pid_is_running(pid):
        try:
            with psycopg.connect(host=socket_dir, port=port, user="postgres", dbname="postgres", connect_timeout=ANSWER_SECONDS):
                running = True
        except psycopg.Error:
            running = False
    address = f"socket {socket_dir}/.s.PGSQL.{port}" if socket_dir else "no socket"
    return ServerStatus(name="PostgreSQL", running=running, pid=pid, address=address, folder=folder)


def redis_status(data_dir: Path) -> ServerStatus:
    folder, socket, pidfile = redis_paths(data_dir)
    text = pidfile.read_text().strip() if pidfile.exists() else ""
    pid = int(text) if text.isdigit() else None
    return ServerStatus(name="Redis", running=redis_answers(socket), pid=pid, address=f"socket {socket}", folder=folder)
