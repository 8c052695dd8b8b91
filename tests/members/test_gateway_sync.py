"""The gateway strategy: whole guilds streamed as member chunks into the cache."""

import time

import pytest

from guildhub.discord.clients import run_async
from members.gateway_sync import sync_members_over_gateway
from members.models import Guild, Member
from syncjobs import services as jobs
from syncjobs.models import SyncJob

pytestmark = pytest.mark.django_db(transaction=True)


def gateway_sync(guild: Guild) -> SyncJob:
    job, _ = jobs.request_sync(guild=guild, trigger=SyncJob.Trigger.CLI, strategy="gateway")
    return run_async(sync_members_over_gateway(job.pk))


def test_gateway_chunks_fill_the_cache_like_rest_pages(discord_settings, emulator, emulator_guild):
    guild = Guild.objects.create(id=emulator_guild.id, name=emulator_guild.name, approximate_member_count=301)
    job = gateway_sync(guild)
    assert job.status == SyncJob.Status.SUCCEEDED, job.error_message
    assert job.processed == job.created_count == 301
    cached = set(Member.objects.filter(guild=guild).values_list("user_id", flat=True))
    assert cached == set(emulator_guild.iter_member_ids())
    assert emulator.world.counters.member_chunk_requests == 1


def test_gateway_resync_marks_leavers_departed_and_writes_only_changes(discord_settings, emulator, emulator_guild):
    guild = Guild.objects.create(id=emulator_guild.id, name=emulator_guild.name)
    gateway_sync(guild)
    members = emulator_guild.list_members(after=0, limit=20)
    leaver, renamed = int(members[3]["user"]["id"]), int(members[4]["user"]["id"])
    emulator.call(emulator.world.remove_member, emulator_guild, leaver)
    emulator.call(emulator.world.update_member, emulator_guild, renamed, {"global_name": "New Name"})
    job = gateway_sync(guild)
    assert job.status == SyncJob.Status.SUCCEEDED
    assert (job.updated_count, job.departed_count) == (1, 1)
    assert Member.objects.get(guild=guild, user_id=leaver).departed_at is not None
    assert Member.objects.get(guild=guild, user_id=renamed).global_name == "New Name"


def test_a_resync_parses_only_the_changed_members(discord_settings, monkeypatch):
    """A guild already cached: the reader hands the chunks over as sent, and their digests decide."""
    from guildhub.emulator.server import EmulatorServer
    from guildhub.emulator.state import GuildSpec, World
    from members import gateway_sync as engine
    from members import services

    monkeypatch.setattr(engine, "CHUNKS_PER_TRANSACTION", 1)
    world = World(guilds=[GuildSpec(members=3500, channels=1, messages=1)])
    with EmulatorServer(world, profile="fast") as server:
        discord_settings.DISCORD_API_BASE = server.api_base
        emulated = next(iter(world.guilds.values()))
        guild = Guild.objects.create(id=emulated.id, name=emulated.name)
        assert gateway_sync(guild).status == SyncJob.Status.SUCCEEDED
        late = emulated.list_members(after=0, limit=3500)[-3:]  # in the last chunk
        leaver, renamed = int(late[0]["user"]["id"]), int(late[1]["user"]["id"])
        server.call(world.remove_member, emulated, leaver)
        server.call(world.update_member, emulated, renamed, {"nick": "Late Rename"})
        parsed = []
        parse = services.member_from_json
        monkeypatch.setattr(services, "member_from_json", lambda data: parsed.append(data) or parse(data))
        job = gateway_sync(guild)
        present = len(server.call(emulated.list_members, after=0, limit=10_000))
    assert job.status == SyncJob.Status.SUCCEEDED, job.error_message
    assert (job.processed, job.updated_count, job.created_count, job.departed_count) == (present, 1, 0, 1)
    assert [int(m["user"]["id"]) for m in parsed] == [renamed]
    assert Member.objects.get(guild=guild, user_id=renamed).nick == "Late Rename"
    assert Member.objects.get(guild=guild, user_id=leaver).departed_at is not None
    assert Member.objects.filter(guild=guild, departed_at__isnull=True).count() == present > 3000


def test_gateway_sync_without_the_members_intent_fails_clearly(discord_settings, emulator, emulator_guild):
    emulator.world.members_intent_enabled = False
    guild = Guild.objects.create(id=emulator_guild.id, name=emulator_guild.name)
    job = gateway_sync(guild)
    assert job.status == SyncJob.Status.FAILED
    assert "Server Members intent" in job.error_message


def test_a_second_full_list_within_discords_30_seconds_fails_at_once_with_advice(discord_settings):
    from guildhub.emulator.app import EmulatorOptions
    from guildhub.emulator.server import EmulatorServer
    from guildhub.emulator.state import GuildSpec, World

    world = World(guilds=[GuildSpec(members=50, channels=1, messages=1)])
    options = EmulatorOptions(member_request_interval=30.0)
    with EmulatorServer(world, profile="fast", options=options) as server:
        discord_settings.DISCORD_API_BASE = server.api_base
        emulated = next(iter(world.guilds.values()))
        guild = Guild.objects.create(id=emulated.id, name=emulated.name)
        assert gateway_sync(guild).status == SyncJob.Status.SUCCEEDED
        started = time.monotonic()
        refused = gateway_sync(guild)
    assert refused.status == SyncJob.Status.FAILED
    assert "every 30 seconds" in refused.error_message
    assert time.monotonic() - started < 30  # not the old 600 s wait


def test_a_sync_asks_for_members_once_its_guild_arrives_not_when_discord_py_is_ready(
    discord_settings, emulator, emulator_guild, monkeypatch
):
    """discord.py's ready waits guild_ready_timeout for more guilds; a one-guild sync need not."""
    from guildhub.discord import clients

    build = clients.build_gateway_client
    monkeypatch.setattr(clients, "build_gateway_client", lambda **options: build(guild_ready_timeout=3600, **options))
    guild = Guild.objects.create(id=emulator_guild.id, name=emulator_guild.name)
    job, _ = jobs.request_sync(guild=guild, trigger=SyncJob.Trigger.CLI, strategy="gateway")

    job = run_async(sync_members_over_gateway(job.pk, connect_timeout=30))

    assert job.status == SyncJob.Status.SUCCEEDED, job.error_message
    assert job.processed == Member.objects.filter(guild=guild).count() > 0


@pytest.mark.parametrize(
    "members",
    [[{"nick": "no user object"}], [{"user": {"id": "not a snowflake"}}], "not a list of members", [None]],
    ids=["no-user", "bad-id", "not-a-list", "null-member"],
)
@pytest.mark.parametrize("resync", [False, True], ids=["first-sync", "resync"])
def test_a_chunk_that_cannot_be_read_ends_the_run_at_once_and_says_so(emulator_guild, members, resync):
    """Raised in discord.py's socket reader, the error would end the connection and leave the run
    waiting out its idle timeout; instead the run stops with what Discord sent."""
    from guildhub.discord.guilds import UnreadablePayload
    from members.gateway_sync import ChunkedMemberSync

    guild = Guild.objects.create(id=emulator_guild.id, name=emulator_guild.name)
    job, _ = jobs.request_sync(guild=guild, trigger=SyncJob.Trigger.CLI, strategy="gateway")
    run = ChunkedMemberSync(job, client=None)
    run.rows_in_reader = not resync
    chunk = {"nonce": run.nonce, "guild_id": str(guild.id), "chunk_index": 0, "chunk_count": 2, "members": members}

    assert run.on_chunk(chunk) is True
    assert isinstance(run.failure, UnreadablePayload) and "cannot read" in str(run.failure)
    assert run.done.is_set()
    assert (run.received, len(run.seen), run.pending) == (0, 0, [])  # nothing of it kept
    run_async(run.db.close())


def test_chunks_of_another_request_or_guild_are_left_to_discord_py(emulator_guild):
    from members.gateway_sync import ChunkedMemberSync

    guild = Guild.objects.create(id=emulator_guild.id, name=emulator_guild.name)
    job, _ = jobs.request_sync(guild=guild, trigger=SyncJob.Trigger.CLI, strategy="gateway")
    run = ChunkedMemberSync(job, client=None)
    assert run.on_chunk({"nonce": "other", "guild_id": str(guild.id), "members": []}) is False
    assert run.on_chunk({"nonce": run.nonce, "guild_id": "not an id", "members": []}) is False
    assert run.failure is None and not run.done.is_set()
    run_async(run.db.close())


@pytest.mark.parametrize(
    ("ids", "seen", "unseen"),
    [
        ([1, 2, 3, 5, 8], [2, 3, 8], [1, 5]),
        ([1, 2, 3], [], [1, 2, 3]),
        ([], [1, 2], []),
        ([4, 6], [1, 2, 3, 4, 4, 5, 9], [6]),  # a member in two chunks: seen twice
        ([10, 20, 30], [5, 15, 25, 35], [10, 20, 30]),
    ],
)
def test_departures_are_the_present_members_no_chunk_mentioned(ids, seen, unseen):
    from members.gateway_sync import _unseen

    assert list(_unseen(ids, seen)) == unseen
