"""Run a few long-lived commands side by side and start again any that dies (`make demo`).

    python -m config.supervisor web='gunicorn …' worker='manage.py embed_worker' …

A child that ends, whatever the reason (kill -9, an error, an exit), is started again
after a pause that doubles with each quick death, from FIRST_PAUSE up to LONGEST_PAUSE,
and falls back to FIRST_PAUSE once a child has run for STABLE_AFTER seconds; the others
keep running. Ctrl-C or a TERM stops them all (TERM, then KILL after STOP_GRACE) and
ends the supervisor with status 0. Deliberately free of Django: it only runs commands.
"""
import argparse
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

FIRST_PAUSE = 1.0
LONGEST_PAUSE = 60.0
STABLE_AFTER = 60.0
STOP_GRACE = 25.0  # above gunicorn's graceful_timeout (20 s)
POLL = 0.1


def say(message: str) -> None:
    print(f"supervisor: {message}", file=sys.stderr, flush=True)


@dataclass
class Child:
    name: str
    command: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_at: float = 0.0
    pause: float = field(default=FIRST_PAUSE)

    def start(self) -> bool:
        """False when the command cannot be run at all (it is tried again like a dead child)."""
        self.started_at = time.monotonic()
        try:
            # A group of its own: Ctrl-C reaches the supervisor alone, which then sends each child
            # one TERM (rq's worker takes a second signal as "stop now, mid-job").
            self.process = subprocess.Popen(self.command, process_group=0)
        except OSError as error:
            say(f"cannot run {self.name} ({error.strerror}: {self.command[0]})")
            return False
        say(f"started {self.name} (pid {self.process.pid})")
        return True


def how_it_ended(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


class Supervisor:
    def __init__(self, children: list[Child], *, first_pause: float, longest_pause: float, stable_after: float):
        self.children = children
        self.first_pause = first_pause
        self.longest_pause = longest_pause
        self.stable_after = stable_after
        self.stopping = False

    def request_stop(self, signum, frame) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        for child in self.children:
            child.pause = self.first_pause
            if not child.start():
                self.schedule_restart(child, time.monotonic(), "could not start")
        while not self.stopping:
            now = time.monotonic()
            for child in self.children:
                if child.process is None:
                    if now >= child.restart_at and not child.start():
                        self.schedule_restart(child, now, "could not start")
                elif child.process.poll() is not None:
                    ended = f"(pid {child.process.pid}) {how_it_ended(child.process.returncode)} after {now - child.started_at:.1f} s"
                    self.schedule_restart(child, now, ended)
            time.sleep(POLL)
        self.stop_all()
        return 0

    def schedule_restart(self, child: Child, now: float, ended: str) -> None:
        if now - child.started_at >= self.stable_after:
            child.pause = self.first_pause
        say(f"{child.name} {ended}; restarting it in {child.pause:.1f} s")
        child.process = None
        child.restart_at = now + child.pause
        child.pause = min(child.pause * 2, self.longest_pause)

    def stop_all(self) -> None:
        running = [child for child in self.children if child.process is not None and child.process.poll() is None]
        say(f"stopping {', '.join(child.name for child in running) or 'nothing'}")
        for child in running:
            child.process.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for child in running:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{child.name} (pid {child.process.pid}) ignored TERM for {STOP_GRACE:.0f} s; killing it")
                child.process.kill()
                child.process.wait()


def named_command(text: str) -> Child:
    name, equals, command = text.partition("=")
    if not equals or not name or not command.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=COMMAND, got {text!r}")
    try:
        return Child(name=name, command=shlex.split(command))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{name}: {error}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.supervisor", description=__doc__.split("\n\n")[0])
    parser.add_argument("children", nargs="+", type=named_command, metavar="NAME=COMMAND")
    parser.add_argument("--first-pause", type=float, default=FIRST_PAUSE, help="seconds before the first restart")
    parser.add_argument("--longest-pause", type=float, default=LONGEST_PAUSE, help="the pause doubles up to this")
    parser.add_argument(
        "--stable-after", type=float, default=STABLE_AFTER, help="a child that ran this long restarts after the first pause again"
    )
    arguments = parser.parse_args(argv)
    names = [child.name for child in arguments.children]
    if len(set(names)) != len(names):
        parser.error(f"each child needs its own name, got {', '.join(names)}")
    supervisor = Supervisor(
        arguments.children,
        first_pause=arguments.first_pause,
        longest_pause=arguments.longest_pause,
        stable_after=arguments.stable_after,
    )
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
