"""SQL that only one database backend runs, for the migrations of this app.

Not a migration: Django skips modules of a migrations package whose names start
with "_". The migrations import these rather than each keep a copy.
"""

from collections.abc import Callable, Sequence


def run_for_vendor(statements: dict[str, Sequence[str]]) -> Callable:
    """A RunPython function running `statements[vendor]` on the backend it migrates, nothing elsewhere."""

    def run(apps, schema_editor) -> None:
        for sql in statements.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)

    return run


def run_on_postgres(statements: Sequence[str]) -> Callable:
    return run_for_vendor({"postgresql": statements})
