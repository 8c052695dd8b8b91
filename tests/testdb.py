"""Point Django's default database at the backend a test run asked for (`--db`).

The settings dict is changed in place: Django's connection handler holds the same
dict, with the defaults it filled in (TEST, OPTIONS, AUTOCOMMIT, …), so both keep
agreeing. The cached connection object is dropped so the next one is built with
the new engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.db import connections

SQLITE = "django.db.backends.sqlite3"
POSTGRESQL = "django.db.backends.postgresql"


def use_sqlite_file(path: Path) -> None:
    """Keep the SQLite settings, but create the test database in a file at `path`.

    Django would use an in-memory database, which subprocesses (qcluster, the bot)
    cannot open; a file they can.
    """
    database = settings.DATABASES["default"]
    if database["ENGINE"] != SQLITE:
        raise RuntimeError(
            f"--db=sqlite, but DATABASE_URL points at {database['ENGINE']}: unset DATABASE_URL for the SQLite run "
            "(--db=postgres starts a throwaway server of its own)"
        )
    database.setdefault("TEST", {})["NAME"] = str(path)
    _forget_default_connection()


def use_postgres(*, host: str, port: int, user: str, name: str = "guildhub") -> None:
    """Switch the default database to a PostgreSQL server; Django creates test_<name> on it."""
    database = settings.DATABASES["default"]
    database.update(
        {
            "ENGINE": POSTGRESQL,
            "HOST": host,
            "PORT": str(port),
            "USER": user,
            "PASSWORD": "",
            "NAME": name,
            # The SQLite pragmas and transaction mode mean nothing to psycopg.
            "OPTIONS": {},
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": False,
        }
    )
    database.setdefault("TEST", {})["NAME"] = None
    _forget_default_connection()


def database_url(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL (django-environ syntax) that reaches the database `settings_dict` describes."""
    if settings_dict["ENGINE"] == SQLITE:
        return f"sqlite:///{settings_dict['NAME']}"
    if settings_dict["ENGINE"] == POSTGRESQL:
        credentials = quote(settings_dict["USER"], safe="")
        if settings_dict.get("PASSWORD"):
            credentials += ":" + quote(settings_dict["PASSWORD"], safe="")
        return (
            f"postgres://{credentials}@{settings_dict['HOST']}:{settings_dict['PORT']}/"
            f"{quote(settings_dict['NAME'], safe='')}"
        )
    raise ValueError(f"no DATABASE_URL form for {settings_dict['ENGINE']}")


def _forget_default_connection() -> None:
    connections["default"].close()
    del connections["default"]
