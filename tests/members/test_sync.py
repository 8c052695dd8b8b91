"""The member sync engine against the emulator: what lands in the cache, and when."""

import itertools
import threading
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command

from guildhub.discord.clients import run_async
from guildhub.discord.guilds import member_from_json
from members.models import Guild, Member
from members.sync import run_member_sync
from syncjobs import services as jobs
from syncjobs.models import SyncJob
from tests.emulator.test_rest import http

pytestmark = pytest.mark.django_db(transaction=True)


def sync(guild_id: int, **options) -> SyncJob:
    guild = Guild.objects.get(pk=guild_id)
    job, _ = jobs.request_sync(guild=guild, trigger=SyncJob.Trigger.CLI, **options)
    return run_async(run_member_sync(job.pk))


def cached(guild_id: int) -> dict[int, Member]:
    return {m.user_id: m for m in Member.objects.filter(guild_id=guild_id)}


@pytest.fixture
def guild(discord_settings, emulator_guild):
    return Guild.objects.create(id=emulator_guild.id, name="placeholder")


def test_full_sync_mirrors_every_member_field_for_field(guild, emulator, emulator_guild):
    job = sync(guild.id)
    assert job.status == SyncJob.Status.SUCCEEDED, job.error_message
    expected = {int(m["user"]["id"]): member_from_json(m) for m in emulator_guild.list_members(after=0, limit=10_000)}
    rows = cached(guild.id)
    assert set(rows) == set(expected)
    for user_id, want in expected.items():
        row = rows[user_id]
        assert (row.username, row.global_name, row.nick, row.display_name) == (
            want.username,
            want.global_name,
            want.nick,
            want.display_name,
        )
        assert (row.is_bot, row.avatar, row.role_ids, row.joined_at) == (
            want.is_bot,
            want.avatar,
            list(want.role_ids),
            want.joined_at,
        )
        assert row.departed_at is None
    assert any("<script>" in (r.global_name or "") + (r.nick or "") for r in rows.values())
    assert any(r.global_name is None for r in rows.values())
    guild.refresh_from_db()
    assert guild.name == emulator_guild.name and guild.last_synced_at is not None
    assert job.created_count == len(expected) == job.processed
    assert guild.roles.filter(name="Moderator").exists()


def test_resync_rewrites_only_the_rows_that_changed(guild, emulator, emulator_guild):
    sync(guild.id)
    before = {uid: m.updated_at for uid, m in cached(guild.id).items()}
    changed = [int(m["user"]["id"]) for m in emulator_guild.list_members(after=0, limit=40)[5:8]]
    for uid in changed:
        emulator.call(emulator.world.update_member, emulator_guild, uid, {"nick": f"renamed {uid % 1000}"})
    job = sync(guild.id)
    assert job.status == SyncJob.Status.SUCCEEDED
    assert (job.updated_count, job.created_count) == (3, 0)
    after = cached(guild.id)
    assert [uid for uid in before if after[uid].updated_at != before[uid]] == changed
    assert after[changed[0]].nick == f"renamed {changed[0] % 1000}"
    assert after[changed[0]].display_name == after[changed[0]].nick


def test_members_who_left_are_marked_departed_only_after_a_complete_pass(guild, emulator, emulator_guild):
    sync(guild.id)
    gone = [int(m["user"]["id"]) for m in emulator_guild.list_members(after=0, limit=300)[::50]]
    for uid in gone:
        emulator.call(emulator.world.remove_member, emulator_guild, uid)

    # A pass cut short by its time budget marks nobody.
    guild.sync_page_size = 50
    guild.sync_time_budget = timedelta(seconds=150)
    guild.save()
    ticks = itertools.count(step=100)
    job, _ = jobs.request_sync(guild=guild, trigger=SyncJob.Trigger.CLI)
    partial = run_async(run_member_sync(job.pk, clock=lambda: next(ticks)))
    assert partial.status == SyncJob.Status.PARTIAL
    assert not Member.objects.filter(guild=guild, departed_at__isnull=False).exists()

    # The next run resumes the pass and, once complete, marks exactly the leavers.
    resumed = sync(guild.id)
    assert resumed.status == SyncJob.Status.SUCCEEDED
    assert resumed.checkpoint["resumed_from"] == partial.pk
    departed = set(Member.objects.filter(guild=guild, departed_at__isnull=False).values_list("user_id", flat=True))
    assert departed == set(gone)
    assert resumed.departed_count == len(gone)


def test_a_run_stopped_by_its_budget_resumes_from_its_checkpoint(guild, emulator):
    guild.sync_page_size = 100
    guild.sync_time_budget = timedelta(seconds=250)
    guild.save()
    ticks = itertools.count(step=100)
    job, _ = jobs.request_sync(guild=guild, trigger=SyncJob.Trigger.CLI)
    first = run_async(run_member_sync(job.pk, clock=lambda: next(ticks)))
    assert first.status == SyncJob.Status.PARTIAL
    assert first.processed == 200 and first.checkpoint["after"] != "0"
    before = emulator.world.counters.requests["GET /api/v10/guilds/{guild_id}/members"]

    second = sync(guild.id)
    assert second.status == SyncJob.Status.SUCCEEDED
    pages = emulator.world.counters.requests["GET /api/v10/guilds/{guild_id}/members"] - before
    assert pages == 2  # the remaining 101 members, not all 301 again
    assert second.processed == Member.objects.filter(guild=guild).count() == 301


def test_a_run_whose_worker_died_is_reaped_and_resumed(guild):
    guild.sync_page_size = 100
    guild.save()
    job, _ = jobs.request_sync(guild=guild, trigger=SyncJob.Trigger.SCHEDULE)
    assert jobs.claim(job.pk, "dead-worker") is not None
    # The worker dies: its lease runs out.
    SyncJob.objects.filter(pk=job.pk).update(lease_expires_at=job.created_at - timedelta(minutes=1))
    assert jobs.reap_expired_leases() == [job.pk]
    finished = run_async(run_member_sync(job.pk, owner="live-worker"))
    assert finished.status == SyncJob.Status.SUCCEEDED
    assert Member.objects.filter(guild=guild).count() == 301


def test_server_errors_are_retried_and_the_run_completes(guild, emulator):
    guild.sync_page_size = 50
    guild.save()
    http("PUT", f"{emulator.url}/_emulator/faults", {"error_rate": 0.3, "error_status": 503, "route": "/members"})
    job = sync(guild.id)
    assert job.status == SyncJob.Status.SUCCEEDED, job.error_message
    assert emulator.world.counters.server_errors > 0
    assert Member.objects.filter(guild=guild).count() == 301


def test_missing_members_intent_fails_with_an_actionable_message(guild, emulator):
    emulator.world.members_intent_enabled = False
    job = sync(guild.id)
    assert job.status == SyncJob.Status.FAILED
    assert "Server Members intent" in job.error_message
    assert "Traceback" not in job.error_message


def test_two_concurrent_requests_make_one_run(guild):
    results = []
    barrier = threading.Barrier(4)

    def request() -> None:
        barrier.wait()
        results.append(jobs.request_sync(guild=guild, trigger=SyncJob.Trigger.DASHBOARD))
        from django.db import connection

        connection.close()

    threads = [threading.Thread(target=request) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({job.pk for job, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert SyncJob.objects.filter(guild=guild).count() == 1


def test_sync_command_fetches_an_unknown_guild_and_syncs_it(discord_settings, emulator_guild, capsys):
    call_command("sync", guild=[str(emulator_guild.id)])
    out = capsys.readouterr().out
    assert "succeeded" in out and "301 members" in out
    assert Guild.objects.get(pk=emulator_guild.id).name == emulator_guild.name
    assert Member.objects.filter(guild_id=emulator_guild.id).count() == 301


def test_sync_command_refuses_unknown_and_malformed_guilds_clearly(discord_settings):
    with pytest.raises(CommandError, match="not a Discord guild id"):
        call_command("sync", guild=["12abc"])
    with pytest.raises(CommandError, match="invite the bot"):
        call_command("sync", guild=["123456789012345678"])


def test_sync_command_async_queues_for_the_cluster_and_a_second_call_joins(discord_settings, emulator_guild, capsys):
    guild = Guild.objects.create(id=emulator_guild.id, name=emulator_guild.name)
    call_command("sync", guild=[str(guild.id)], queue=True)
    call_command("sync", guild=[str(guild.id)], queue=True)
    out = capsys.readouterr().out
    assert "queued" in out and "already queued" in out
    job = SyncJob.objects.get(guild=guild)
    assert (job.status, job.trigger) == ("queued", "cli")
    from django_q.models import OrmQ

    assert OrmQ.objects.count() == 1  # one task for the cluster, not two


def test_sync_command_all_syncs_every_active_guild_and_exits_nonzero_on_failure(discord_settings, emulator):
    first, second = list(emulator.world.guilds.values())
    Guild.objects.create(id=first.id, name="one")
    Guild.objects.create(id=second.id, name="two")
    Guild.objects.create(id=123456789012345678, name="gone", is_active=False)  # skipped
    call_command("sync", all=True)
    assert Member.objects.filter(guild_id=first.id).count() == first.member_count
    assert Member.objects.filter(guild_id=second.id).count() == second.member_count

    emulator.world.members_intent_enabled = False
    with pytest.raises(SystemExit) as exit_info:
        call_command("sync", all=True)
    assert exit_info.value.code == 1


def test_hostile_member_payloads_are_stored_harmlessly(db):
    """NUL bytes, over-long names and a member twice in one page: stored, not a crash."""
    from members import services

    guild = Guild.objects.create(id=555555555555555555, name="hostile")
    raw = {
        "user": {"id": "600000000000000001", "username": "nul\x00name" + "x" * 200, "global_name": "a\x00b"},
        "nick": None,
        "roles": ["1", "1", "2"],
        "joined_at": "not a date",
    }
    page = [member_from_json(raw), member_from_json({**raw, "nick": "second copy"})]
    assert services.upsert_members(guild.id, page) == {600000000000000001}
    row = Member.objects.get(guild=guild)
    assert "\x00" not in row.username and len(row.username) == 100
    assert (row.global_name, row.nick, row.role_ids, row.joined_at) == ("ab", "second copy", ["1", "2"], None)
