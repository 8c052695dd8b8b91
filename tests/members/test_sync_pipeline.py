"""The REST engine writes pages while it fetches the next: what a run leaves behind when it stops mid-way.

Whatever ends a run (a write the database refuses, a fetch that fails while a
page is being written, a cancel, a lost lease, the task being cancelled), the
checkpoint stands at the last page actually stored and exactly the pages up to
it are stored, nobody is marked departed, the database threads are gone, and
the next run resumes from that checkpoint. On PostgreSQL a run has several
writers (MEMBER_SYNC_WRITERS), so how many pages were in flight when it stopped
depends on their timing: the tests bound it by the number of writers.
"""

import asyncio
import threading
from collections.abc import Callable, Iterator

import pytest
from django.db import connection

from guildhub.discord.clients import run_async
from members.database_writers import writer_count
from members.models import Guild, Member
from members.sync import run_member_sync
from syncjobs import services as jobs
from syncjobs.models import SyncJob
from tests.emulator.test_rest import http

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = 50
MEMBERS_ROUTE = "GET /api/v10/guilds/{guild_id}/members"


@pytest.fixture
def guild(discord_settings, emulator_guild):
    return Guild.objects.create(id=emulator_guild.id, name="placeholder", sync_page_size=PAGE)


def member_ids(emulator_guild) -> list[int]:
    """The guild's members as Discord pages them: ascending user id."""
    return [int(m["user"]["id"]) for m in emulator_guild.list_members(after=0, limit=10_000)]


def after_pages(pages: int, action: Callable[[SyncJob], None]) -> Callable[[SyncJob], None]:
    """A progress callback that runs `action` once, when the run has stored `pages` pages (or more)."""
    done = []

    def progress(job: SyncJob) -> None:
        if job.processed >= pages * PAGE and not done:
            done.append(True)
            action(job)

    return progress


def in_thread(fn: Callable[[], object]) -> None:
    """Database work from inside the running sync (its event loop may not query): another thread, then closed."""

    def target() -> None:
        try:
            fn()
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()


def run(guild: Guild, **options) -> SyncJob:
    job, _ = jobs.request_sync(guild=guild, trigger=SyncJob.Trigger.CLI)
    return run_async(run_member_sync(job.pk, **options))


def saved(job: SyncJob) -> SyncJob:
    return SyncJob.objects.get(pk=job.pk)


def database_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("member-sync-")]


def pages_stored(job: SyncJob, ids: list[int], guild: Guild, *, first_sync: bool = True) -> int:
    """The whole pages stored, once checked that the checkpoint is their last member.

    On a first sync, also that the members stored are exactly those up to the checkpoint.
    """
    row = saved(job)
    assert row.processed % PAGE == 0
    assert row.checkpoint["after"] == (str(ids[row.processed - 1]) if row.processed else "0")
    if first_sync:
        stored = set(Member.objects.filter(guild=guild).values_list("user_id", flat=True))
        assert stored == set(ids[: row.processed])
    return row.processed // PAGE


def departed(guild: Guild) -> set[int]:
    return set(Member.objects.filter(guild=guild, departed_at__isnull=False).values_list("user_id", flat=True))


@pytest.fixture
def refused_member(emulator_guild) -> Iterator[Callable[[], None]]:
    """The database refuses to insert the first member of the fourth page (a trigger raises).

    Yields the function that lifts the refusal (drops the trigger).
    """
    user_id = member_ids(emulator_guild)[3 * PAGE]
    table = Member._meta.db_table
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute(
                "CREATE FUNCTION refuse_member() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'member refused by the test trigger'; END $$"
            )
            cursor.execute(
                f"CREATE TRIGGER refuse_member BEFORE INSERT ON {table} FOR EACH ROW "
                f"WHEN (NEW.user_id = {user_id}) EXECUTE FUNCTION refuse_member()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER refuse_member BEFORE INSERT ON {table} WHEN NEW.user_id = {user_id} "
                "BEGIN SELECT RAISE(ABORT, 'member refused by the test trigger'); END"
            )

    def lift() -> None:
        with connection.cursor() as cursor:
            if postgres:
                cursor.execute(f"DROP TRIGGER IF EXISTS refuse_member ON {table}")
                cursor.execute("DROP FUNCTION IF EXISTS refuse_member()")
            else:
                cursor.execute("DROP TRIGGER IF EXISTS refuse_member")

    yield lift
    lift()


def test_a_page_the_database_refuses_fails_the_run_with_the_checkpoint_at_the_last_stored_page(
    guild, emulator, emulator_guild, refused_member
):
    ids = member_ids(emulator_guild)
    failed = run(guild)
    assert failed.status == SyncJob.Status.FAILED
    assert "member refused by the test trigger" in failed.error_message
    row = saved(failed)
    # Pages 1-3 are stored with their checkpoint; page 4 was rolled back, and so was any page after it
    # another writer had written meanwhile: it waited for page 4 to commit.
    assert pages_stored(failed, ids, guild) == 3
    assert row.status == "failed" and not row.checkpoint.get("complete")
    assert database_threads() == []

    refused_member()
    pages_before = emulator.world.counters.requests[MEMBERS_ROUTE]
    resumed = run(guild)
    assert resumed.status == SyncJob.Status.SUCCEEDED, resumed.error_message
    assert resumed.checkpoint["resumed_from"] == failed.pk
    assert emulator.world.counters.requests[MEMBERS_ROUTE] - pages_before == 4  # 151 members left: 50, 50, 50, 1
    assert Member.objects.filter(guild=guild).count() == len(ids) == resumed.processed


def test_a_failed_fetch_while_a_page_is_written_still_stores_that_page(guild, emulator, emulator_guild):
    ids = member_ids(emulator_guild)

    def break_discord(job: SyncJob) -> None:
        # Page 2 is fetched already; page 3's fetch fails (every retry) while page 2 is written.
        http("PUT", f"{emulator.url}/_emulator/faults", {"error_rate": 1.0, "error_status": 503, "route": "/members"})

    failed = run(guild, progress=after_pages(1, break_discord))
    assert failed.status == SyncJob.Status.FAILED
    assert "Traceback" not in failed.error_message
    # Every page fetched before the fault is stored: one writer had page 2; more writers, more pages.
    assert 2 <= pages_stored(failed, ids, guild) <= 1 + writer_count()
    assert database_threads() == []

    http("DELETE", f"{emulator.url}/_emulator/faults")
    resumed = run(guild)
    assert resumed.status == SyncJob.Status.SUCCEEDED, resumed.error_message
    assert resumed.checkpoint["resumed_from"] == failed.pk
    assert Member.objects.filter(guild=guild).count() == len(ids)


@pytest.fixture
def leavers(guild, emulator, emulator_guild) -> set[int]:
    """A fully synced guild of which a few members have since left Discord."""
    assert run(guild).status == SyncJob.Status.SUCCEEDED
    gone = set(member_ids(emulator_guild)[10::60])
    for user_id in gone:
        emulator.call(emulator.world.remove_member, emulator_guild, user_id)
    return gone


def test_a_run_cancelled_mid_pass_marks_nobody_departed_and_the_next_run_resumes_it(guild, emulator_guild, leavers):
    ids = member_ids(emulator_guild)
    cancelled = run(guild, progress=after_pages(2, lambda job: in_thread(lambda: jobs.cancel(job))))
    assert cancelled.status == SyncJob.Status.CANCELLED
    # The pages being written when the cancel came are stored (page 3 for one writer); the one fetched
    # meanwhile is not.
    pages = pages_stored(cancelled, ids, guild, first_sync=False)
    assert 3 <= pages <= 2 + 2 * writer_count() and pages * PAGE < len(ids)
    assert departed(guild) == set()
    assert database_threads() == []

    resumed = run(guild)
    assert resumed.status == SyncJob.Status.SUCCEEDED
    assert resumed.checkpoint["resumed_from"] == cancelled.pk
    assert departed(guild) == leavers


def test_a_run_that_loses_its_lease_stops_without_writing_and_leaves_the_run_to_its_new_owner(
    guild, emulator_guild, leavers
):
    ids = member_ids(emulator_guild)

    def take_over(job: SyncJob) -> None:
        in_thread(lambda: SyncJob.objects.filter(pk=job.pk).update(lease_owner="another-worker"))

    run(guild, progress=after_pages(2, take_over))
    row = SyncJob.objects.get(guild=guild, lease_owner="another-worker")
    # Pages written after the take-over were rolled back with their checkpoints (one writer: page 3 was);
    # the run is not failed.
    assert row.status == "running" and row.checkpoint["after"] == str(ids[row.processed - 1])
    assert 2 * PAGE <= row.processed <= (1 + writer_count()) * PAGE
    assert row.error_message == ""
    assert departed(guild) == set()
    assert database_threads() == []


def test_a_cancelled_task_leaves_the_checkpoint_at_the_last_stored_page_and_no_database_thread(guild, emulator_guild):
    ids = member_ids(emulator_guild)

    def cancel_task(job: SyncJob) -> None:
        asyncio.current_task().cancel()

    job, _ = jobs.request_sync(guild=guild, trigger=SyncJob.Trigger.CLI)
    with pytest.raises(asyncio.CancelledError):
        run_async(run_member_sync(job.pk, progress=after_pages(2, cancel_task)))
    # Still running: its lease runs out and the reaper hands it on (see test_sync.py).
    assert saved(job).status == SyncJob.Status.RUNNING
    # The pages being written when the task was cancelled may land.
    assert 2 <= pages_stored(job, ids, guild) <= 2 + writer_count()
    assert database_threads() == []
