"""The processes the benchmarks start and measure: servers on loopback ports, and their CPU time."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int, *, live_children: bool = False, reaped_children: bool = False) -> float:
    """CPU time (user + system) of a process, from /proc (Linux; 0 elsewhere).

    live_children: add the children running now (a web server's workers).
    reaped_children: add the children that ended (a database server's finished backends).
    """
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    children = []
    if live_children:
        with contextlib.suppress(OSError):
            children = [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    total = 0
    for process in (pid, *children):
        try:  # after the command name in parentheses: utime, stime, cutime, cstime are fields 11-14
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
        if reaped_children and process == pid:
            total += int(fields[13]) + int(fields[14])
    return total / tick


class Process:
    """A server on a free loopback port, in a process of its own, answering `ready_path` once started.

    `{port}` in `command` and in the log's path is replaced by the port.
    """

    def __init__(self, command: list[str], env: dict, log: Path, ready_path: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(str(log).format(port=self.port), "w")  # noqa: SIM115 (closed in stop)
        command = [part.format(port=self.port) for part in command]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_until_ready(ready_path)

    def _wait_until_ready(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.log.name}: the server exited with code {self.process.returncode}")
            with contextlib.suppress(OSError):
                urllib.request.urlopen(self.url + path, timeout=5).close()  # noqa: S310 (loopback)
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.log.name}: the server did not answer in time")

    def cpu_seconds(self, *, live_children: bool = False) -> float:
        return cpu_seconds(self.process.pid, live_children=live_children)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
