"""The portal under gunicorn with the repository's gunicorn.conf.py, in a process group of its own, for tests and
benchmarks that need real workers: start, find the workers, kill one, read what the log says about outages."""
from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """gunicorn serving wsgi:app with the repository's gunicorn.conf.py, its output in `log`."""

    def __init__(self, database_url: str, log: Path, settings: dict[str, str]):
        self.port, self.log, self.process = free_port(), log, None
        self.env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "reliability",
                    "SCHEDULER_ENABLED": "false", **settings}

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "gunicorn.conf.py"),
                 "--bind", f"127.0.0.1:{self.port}", "wsgi:app"],
                cwd=ROOT, env=self.env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + READY_SECONDS
        while not (self.answers() and self.booted() >= self.expected_workers()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.1)

    def expected_workers(self) -> int:
        return int(self.env.get("WEB_CONCURRENCY", "2"))

    def booted(self) -> int:
        return self.log.read_text().count("Booting worker")

    def answers(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", "/webhooks/github")
            return connection.getresponse().status == 405
        except OSError:
            return False
        finally:
            connection.close()

    def workers(self) -> set[int]:
        """The live worker processes: the master's children, from /proc."""
        found = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                state, parent = stat.read_text().rpartition(")")[2].split()[:2]
            except (OSError, ValueError):
                continue  # the process ended meanwhile
            if int(parent) == self.process.pid and state != "Z":
                found.add(int(stat.parent.name))
        return found

    def cpu_seconds(self) -> dict[int, float]:
        """{pid: CPU seconds used} of the live workers: whether both took a share of the load."""
        ticks = os.sysconf("SC_CLK_TCK")
        used = {}
        for pid in self.workers():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            used[pid] = (int(fields[11]) + int(fields[12])) / ticks
        return used

    def kill_worker(self) -> tuple[int, float]:
        """SIGKILL the busiest worker mid-request; (its pid, seconds until gunicorn had started another)."""
        before = self.cpu_seconds()
        victim = max(before, key=before.get)
        os.kill(victim, signal.SIGKILL)
        killed, deadline = time.monotonic(), time.monotonic() + READY_SECONDS
        while True:
            now = self.workers()
            if victim not in now and len(now) >= len(before):
                return victim, time.monotonic() - killed
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not replace worker {victim}: {now}")
            time.sleep(0.01)

    def group(self) -> dict[int, str]:
        """{pid: state} of the processes in the server's group (master and workers), from /proc."""
        found = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rpartition(")")[2].split()
            except OSError:
                continue  # the process ended meanwhile
            if int(fields[2]) == self.process.pid:
                found[int(stat.parent.name)] = fields[0]
        return found

    def kill(self) -> None:
        """SIGKILL to the whole group: no worker finishes its request or closes its connections."""
        members = self.group()
        assert len(members) >= 3, f"expected a master and 2 workers, found {members}"
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        deadline = time.monotonic() + 5
        while set(self.group().values()) - {"Z"} and time.monotonic() < deadline:  # orphaned workers: zombies
            time.sleep(0.02)
        assert not set(self.group().values()) - {"Z"}, f"still running after SIGKILL: {self.group()}"

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def outage_lines(self) -> dict[str, int]:
        """What the log says about outages: lines of each kind, the 503s the "available again" lines add up to,
        and tracebacks."""
        log = self.log.read_text()
        refused = sum(int(n) for n in re.findall(r"available again after [\d.]+ s; (\d+) requests", log))
        return {"unavailable": log.count("database unavailable"), "available": log.count("database available again"),
                "refused": refused, "tracebacks": log.count("Traceback")}
