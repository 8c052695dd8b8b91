"""`manage.py demo --smoke` starts the whole stack, checks it answers, and stops it."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_demo_smoke_starts_everything_and_stops_cleanly(tmp_path: Path) -> None:
    web_port, emulator_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in {"DISCORD_TOKEN", "DISCORD_API_BASE", "DEMO_PASSWORD"}},
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
    }

    result = subprocess.run(
        [
            sys.executable,
            str(settings.BASE_DIR / "manage.py"),
            "demo",
            "--smoke",
            "--web-port",
            str(web_port),
            "--emulator-port",
            str(emulator_port),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert f"GuildHub is running at http://127.0.0.1:{web_port}/" in result.stdout
    assert "admin / guildhub-demo" in result.stdout
    assert "Smoke test passed" in result.stdout
