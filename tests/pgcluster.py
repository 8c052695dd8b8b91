"""A throwaway PostgreSQL server for one test run.

Each run (each xdist worker) gets its own cluster in a fresh directory under /tmp,
listening on 127.0.0.1 on a free port, tuned for speed rather than durability, and
removed at the end. No server needs to be running beforehand: only the server
binaries (initdb, postgres) must be installed.

Run as a script (`python3 tests/pgcluster.py`), it prints the directory of the
server binaries and exits 0, or exits 1 when there are none, so that the Makefile
and .ci/run find PostgreSQL exactly the way the tests do. It needs no third-party
package for that.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
SUPERUSER = "postgres"
# initdb and postgres refuse to run as root; as root we run them as this OS user,
# which Debian's postgresql package creates.
SERVER_OS_USER = "postgres"
SERVER_TOOLS = ("initdb", "postgres")


def find_bindir() -> Path | None:
    """The directory holding initdb and postgres: $PG_BINDIR, then PATH, then Debian's layout."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    for tool in ("pg_ctl", "initdb"):
        found = shutil.which(tool)
        if found:
            candidates.append(Path(found).resolve().parent)
    # Debian keeps the server off PATH, one directory per major version: newest first.
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_major_version, reverse=True)
    for directory in candidates:
        if all(os.access(directory / tool, os.X_OK) for tool in SERVER_TOOLS):
            return directory
    return None


def _major_version(bindir: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", bindir.parent.name)) or (0,)


class ClusterError(RuntimeError):
    """The test cluster could not be created or started."""


@dataclass
class PostgresCluster:
    """A running throwaway server; `stop()` shuts it down and deletes its files."""

    bindir: Path
    root: Path
    port: int
    process: subprocess.Popen[bytes]
    host: str = HOST
    user: str = SUPERUSER

    @classmethod
    def start(
        cls, bindir: Path | None = None, *, timeout: float = 60.0, settings: dict[str, str] | None = None
    ) -> PostgresCluster:
        """initdb a new cluster under /tmp and start it on a free loopback port, with `settings` on top of ours."""
        bindir = bindir or find_bindir()
        if bindir is None:
            raise ClusterError(
                "PostgreSQL server binaries (initdb, postgres) not found on PATH or under /usr/lib/postgresql; "
                "install Debian's postgresql package or set PG_BINDIR"
            )
        # A short path: the server's Unix socket path must fit in 107 bytes.
        root = Path(tempfile.mkdtemp(prefix="guildhub-pg-", dir="/tmp"))
        process = None
        try:
            run_as = _server_os_user()
            sockets = root / "sockets"
            sockets.mkdir()
            if run_as:
                for path in (root, sockets):
                    os.chown(path, run_as.pw_uid, run_as.pw_gid)
            _initdb(bindir, root, run_as)
            # Another process may take the free port between our probe and the server's
            # bind; a few attempts make that race harmless.
            for _attempt in range(5):
                port = _free_port()
                process = _spawn_server(bindir, root, sockets, port, run_as, settings or {})
                cluster = cls(bindir=bindir, root=root, port=port, process=process)
                if cluster._wait_until_ready(timeout):
                    return cluster
            raise ClusterError(f"PostgreSQL could not bind a free port:\n{cluster.log_tail()}")
        except BaseException:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
            shutil.rmtree(root, ignore_errors=True)
            raise

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = (self.root / "postgres.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: disconnect clients, stop), kill if it hangs, delete the files."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGINT)
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _wait_until_ready(self, timeout: float) -> bool:
        """True once the server accepts connections; False if it exited because its port was taken."""
        import psycopg  # imported here so the script mode needs no virtualenv

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = self.log_tail()
                if "could not bind" in log or "Address already in use" in log:
                    return False
                raise ClusterError(f"PostgreSQL exited with code {self.process.returncode}:\n{log}")
            try:
                psycopg.connect(self.dsn(), connect_timeout=2).close()
                return True
            except psycopg.OperationalError:
                time.sleep(0.1)
        self.process.kill()
        self.process.wait()
        raise ClusterError(f"PostgreSQL did not accept connections within {timeout:.0f}s:\n{self.log_tail()}")


def _server_os_user() -> pwd.struct_passwd | None:
    """The OS user to run the server as, or None to run it as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        raise ClusterError(
            f"running as root, but PostgreSQL refuses to run as root and there is no {SERVER_OS_USER!r} "
            "OS user to run it as; install Debian's postgresql package (it creates one) or run as a normal user"
        ) from None


def _as_user(run_as: pwd.struct_passwd | None) -> dict:
    """Popen arguments that drop root for the child, like `runuser -u postgres --` but without a wrapper process
    between us and the server, so that signals reach the postmaster itself."""
    if run_as is None:
        return {}
    return {"user": run_as.pw_uid, "group": run_as.pw_gid, "extra_groups": []}


def _initdb(bindir: Path, root: Path, run_as: pwd.struct_passwd | None) -> None:
    command = [
        str(bindir / "initdb"),
        f"--pgdata={root / 'data'}",
        f"--username={SUPERUSER}",
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C.UTF-8",
        "--no-sync",
    ]
    result = subprocess.run(
        command, cwd=root, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, **_as_user(run_as)
    )
    if result.returncode != 0:
        raise ClusterError(f"initdb failed with code {result.returncode}:\n{result.stdout}\n{result.stderr}")


def _spawn_server(
    bindir: Path, root: Path, sockets: Path, port: int, run_as: pwd.struct_passwd | None, settings: dict[str, str]
) -> subprocess.Popen[bytes]:
    # If the test run is killed before its teardown (SIGKILL, `timeout`), the kernel
    # sends the server SIGINT (fast shutdown) instead of leaving it running.
    # setpriv (util-linux) sets that and execs, so the server keeps our child's pid.
    setpriv = shutil.which("setpriv")
    command = [
        *([setpriv, "--pdeathsig", "INT", "--"] if setpriv else []),
        str(bindir / "postgres"),
        "-D",
        str(root / "data"),
        # Durability is worthless for a database deleted at the end of the run.
        "-F",
        "-c",
        "fsync=off",
        "-c",
        "synchronous_commit=off",
        "-c",
        "full_page_writes=off",
        "-k",
        str(sockets),
        "-h",
        HOST,
        "-p",
        str(port),
        *(argument for name, value in settings.items() for argument in ("-c", f"{name}={value}")),
    ]
    with open(root / "postgres.log", "ab") as log:
        return subprocess.Popen(
            command,
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C aimed at pytest must not stop the server before
            # pytest has dropped the test databases.
            start_new_session=True,
            **_as_user(run_as),
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    found = find_bindir()
    if found is None:
        sys.exit(1)
    print(found)
