"""Run a few long-lived child processes side by side, as `manage.py demo` does.

Each child gets its own process group, so a Ctrl-C in the terminal reaches only
the supervisor, which then stops the children in order, and a child that will not
stop is killed together with whatever it forked (django-q2's worker processes). Their output is relayed
line by line with the child's name in front.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class ChildFailed(Exception):
    """A child exited, or never became ready."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[str]
    ready_pattern: re.Pattern[str] | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    ready_match: re.Match[str] | None = None

    @property
    def running(self) -> bool:
        return self.process.poll() is None


class Supervisor:
    """Starts children, relays their output through `emit`, and stops them all."""

    def __init__(self, emit: Callable[[str], None], *, cwd: Path, env: dict[str, str]) -> None:
        self.emit = emit
        self.cwd = cwd
        self.env = env
        self.children: list[Child] = []
        self._width = 8

    def start(self, name: str, argv: Sequence[str], *, ready_pattern: str | None = None) -> Child:
        """Start `argv`; when `ready_pattern` is given, `wait_ready` waits for an output line matching it."""
        process = subprocess.Popen(  # noqa: S603 - argv is built by our own commands
            list(argv),
            cwd=self.cwd,
            env={**self.env, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        child = Child(name, process, re.compile(ready_pattern) if ready_pattern else None)
        self.children.append(child)
        self._width = max(self._width, len(name))
        threading.Thread(target=self._relay, args=(child,), name=f"relay-{name}", daemon=True).start()
        return child

    def wait_ready(self, child: Child, timeout: float) -> re.Match[str]:
        """The match of the child's ready line; ChildFailed if it exits or stays silent too long."""
        deadline = time.monotonic() + timeout
        while not child.ready.wait(0.1):
            if not child.running:
                raise ChildFailed(f"{child.name} exited with code {child.process.returncode} before it was ready")
            if time.monotonic() > deadline:
                raise ChildFailed(f"{child.name} was not ready after {timeout:.0f}s")
        assert child.ready_match is not None
        return child.ready_match

    def wait_until(self, check: Callable[[], bool], *, what: str, timeout: float) -> None:
        """Poll `check` until it is true; ChildFailed if a child exits meanwhile or time runs out."""
        deadline = time.monotonic() + timeout
        while not check():
            self.raise_if_one_exited()
            if time.monotonic() > deadline:
                raise ChildFailed(f"{what} did not happen within {timeout:.0f}s")
            time.sleep(0.25)

    def watch(self, interval: float = 0.5) -> None:
        """Block until a child exits, then raise ChildFailed naming it."""
        while True:
            self.raise_if_one_exited()
            time.sleep(interval)

    def raise_if_one_exited(self) -> None:
        for child in self.children:
            if not child.running:
                raise ChildFailed(f"{child.name} exited unexpectedly with code {child.process.returncode}")

    def stop_all(self, timeout: float = 10.0) -> None:
        """SIGTERM every child, newest first; SIGKILL each process group that is not gone after `timeout`.

        SIGTERM goes to the child alone, not its group: django-q2's cluster stops its
        own workers on SIGTERM, and hangs if they are signalled behind its back.
        """
        for child in reversed(self.children):
            if child.running:
                self.emit(f"Stopping {child.name}")
                with contextlib.suppress(ProcessLookupError):
                    child.process.terminate()
        deadline = time.monotonic() + timeout
        for child in reversed(self.children):
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.emit(f"{child.name} did not stop within {timeout:.0f}s of SIGTERM: killing it")
            # Also takes down anything the child left behind in its group.
            _kill_group(child)
            child.process.wait()

    def _relay(self, child: Child) -> None:
        assert child.process.stdout is not None
        for line in child.process.stdout:
            line = line.rstrip("\n")
            self.emit(f"{child.name:>{self._width}} | {line}")
            if child.ready_pattern and not child.ready.is_set():
                match = child.ready_pattern.search(line)
                if match:
                    child.ready_match = match
                    child.ready.set()


def _kill_group(child: Child) -> None:
    # The group id is the child's pid (start_new_session); it outlives the child
    # while any process it started is still in the group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.process.pid, signal.SIGKILL)
