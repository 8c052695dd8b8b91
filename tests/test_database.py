"""The test database is the backend `--db` asked for, and subprocesses can reach it."""

import ipaddress
import os
import subprocess
import sys

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection

EXPECTED_VENDOR = {"sqlite": "sqlite", "postgres": "postgresql"}


@pytest.mark.django_db
def test_backend_in_use_is_the_one_asked_for_with_db_option(request: pytest.FixtureRequest) -> None:
    assert connection.vendor == EXPECTED_VENDOR[request.config.getoption("--db")]


@pytest.mark.django_db
def test_test_database_name_carries_the_xdist_worker_suffix(request: pytest.FixtureRequest) -> None:
    worker_id = getattr(request.config, "workerinput", {}).get("workerid")
    if worker_id is None:
        pytest.skip("not running under xdist")
    assert connection.settings_dict["NAME"].endswith(f"_{worker_id}")


@pytest.mark.postgres_only
@pytest.mark.django_db
def test_postgres_server_listens_on_loopback_only() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT inet_server_addr(), current_setting('listen_addresses')")
        server_address, listen_addresses = cursor.fetchone()
    assert ipaddress.ip_address(server_address).is_loopback
    assert listen_addresses == "127.0.0.1"


def test_subprocess_given_database_url_sees_rows_the_test_committed(database_url: str) -> None:
    User.objects.create(username="visible-to-subprocess")
    env = {**os.environ, "DATABASE_URL": database_url}
    result = subprocess.run(
        [
            sys.executable,
            str(settings.BASE_DIR / "manage.py"),
            "shell",
            "--verbosity=0",
            "-c",
            "from django.contrib.auth.models import User; print(User.objects.get().username)",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "visible-to-subprocess"
