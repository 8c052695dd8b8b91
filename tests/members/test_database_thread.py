"""The thread a sync writes through: its own connection, set up for bulk writes, closed at the end."""

import threading

import pytest
from django.db import connection

from guildhub.discord.clients import run_async
from members.database_thread import DatabaseThread

pytestmark = pytest.mark.django_db(transaction=True)


def mmap_size() -> int:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA mmap_size")
        return cursor.fetchone()[0]


def test_work_runs_in_order_on_one_thread_whose_connection_is_closed_at_the_end():
    db = DatabaseThread("test-sync")
    seen = []

    async def scenario() -> list:
        first = db.submit(lambda: seen.append((threading.current_thread().name, connection.vendor)))
        second = await db.run(lambda: (first.done(), threading.current_thread().name))
        holder = await db.run(lambda: connection)
        await db.close()
        return [second, holder.connection]

    (done_before, name), closed = run_async(scenario())
    assert done_before and seen[0][0] == name and name.startswith("test-sync")
    assert closed is None  # the thread's connection, closed


def test_on_sqlite_the_syncs_connection_reads_without_the_memory_map():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's memory map")
    assert mmap_size() > 0  # settings.py maps the file for everyone else
    db = DatabaseThread("test-sync")

    async def scenario() -> int:
        try:
            return await db.run(mmap_size)
        finally:
            await db.close()

    assert run_async(scenario()) == 0
