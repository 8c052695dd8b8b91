"""The search indexes' pending lists: short for ordinary writes, longer for a sync's, merged when a sync ends."""

import logging

import pytest
from django.db import connection

from guildhub.discord.clients import run_async
from guildhub.discord.guilds import member_from_json
from members import pending_lists, services
from members.database_thread import DatabaseThread
from members.gateway_sync import sync_members_over_gateway
from members.models import Guild
from members.sync import run_member_sync
from syncjobs import services as jobs
from syncjobs.models import SyncJob

pytestmark = pytest.mark.postgres_only

INDEXES = ("member_trigrams_gin", "member_names_gin")


def pending_tuples() -> dict[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        found = {}
        for index in INDEXES:
            cursor.execute("SELECT pending_tuples FROM pgstatginindex(%s::regclass)", [index])
            found[index] = cursor.fetchone()[0]
    return found


def show(setting: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SHOW {setting}")
        return cursor.fetchone()[0]


def some_members(count: int) -> list:
    return [
        member_from_json({"user": {"id": str(1000 + n), "username": f"pending.{n}", "global_name": f"Pending {n}"}})
        for n in range(count)
    ]


@pytest.mark.django_db
def test_the_indexes_leave_the_limit_to_each_session():
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname, reloptions FROM pg_class WHERE relname = ANY(%s)", [list(INDEXES)])
        options = dict(cursor.fetchall())
    assert set(options) == set(INDEXES)
    assert not any("gin_pending_list_limit" in option for value in options.values() for option in value or [])


@pytest.mark.django_db
def test_django_connections_keep_the_search_limit():
    assert show("gin_pending_list_limit") == "1MB"


@pytest.mark.django_db(transaction=True)
def test_a_syncs_own_connection_gathers_more_and_merges_with_more_memory(settings):
    settings.MEMBER_SYNC_PENDING_LIST_KB = 4096
    settings.MEMBER_SYNC_WORK_MEM_KB = 32768
    thread = DatabaseThread("pending-lists-test")
    try:
        shown = thread.submit(lambda: (show("gin_pending_list_limit"), show("work_mem"))).result(10)
    finally:
        run_async(thread.close())
    assert shown == ("4MB", "32MB")
    assert show("gin_pending_list_limit") == "1MB"  # the test's own connection is untouched


@pytest.mark.django_db(transaction=True)
def test_rest_and_gateway_syncs_leave_nothing_pending(discord_settings, emulator_guild):
    guild = Guild.objects.create(id=emulator_guild.id, name="placeholder")
    job, _ = jobs.request_sync(guild=guild, trigger=SyncJob.Trigger.CLI)
    assert run_async(run_member_sync(job.pk)).status == SyncJob.Status.SUCCEEDED
    assert pending_tuples() == dict.fromkeys(INDEXES, 0)

    # The same writes outside a sync stay pending: what the check above would have seen.
    services.upsert_members(guild.id, some_members(50))
    assert all(count > 0 for count in pending_tuples().values())

    job, _ = jobs.request_sync(guild=guild, trigger=SyncJob.Trigger.CLI, strategy="gateway")
    assert run_async(sync_members_over_gateway(job.pk)).status == SyncJob.Status.SUCCEEDED
    assert pending_tuples() == dict.fromkeys(INDEXES, 0)


@pytest.mark.django_db
def test_a_role_that_does_not_own_the_indexes_leaves_them_pending():
    guild = Guild.objects.create(id=4242, name="Pending")
    services.upsert_members(guild.id, some_members(20))
    before = pending_tuples()
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE guildhub_pending_reader")
        cursor.execute("SET ROLE guildhub_pending_reader")
        try:
            merged = pending_lists.merge_pending_entries(connection)
        finally:
            cursor.execute("RESET ROLE")
    assert merged == 0
    assert pending_tuples() == before
    assert pending_lists.merge_pending_entries(connection) > 0
    assert pending_tuples() == dict.fromkeys(INDEXES, 0)


@pytest.mark.django_db(transaction=True)
def test_a_failed_merge_is_logged_not_raised(monkeypatch, caplog):
    monkeypatch.setattr(pending_lists, "_MERGE_SQL", "SELECT gin_clean_pending_list(%s::regclass)")
    with caplog.at_level(logging.WARNING, logger="members.pending_lists"):
        assert pending_lists.merge_pending_entries(connection) == 0
    assert "could not merge" in caplog.text
