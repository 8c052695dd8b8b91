"""The gateway bot against the emulator: chunked sync on connect, live member events, slash commands."""

import asyncio
import time

import pytest
from asgiref.sync import sync_to_async

from guildhub.bot.client import GuildHubBot
from guildhub.discord.clients import build_gateway_client, run_async
from members.models import Guild, Member
from syncjobs.models import SyncJob
from tests.emulator.test_rest import http

pytestmark = pytest.mark.django_db(transaction=True)


async def eventually(check, *, timeout: float = 10.0, interval: float = 0.05):
    """Await until the synchronous `check()` (run off the loop) returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = await sync_to_async(check)()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check.__name__}")
        await asyncio.sleep(interval)


async def with_bot(scenario):
    bot = build_gateway_client(GuildHubBot)
    runner = asyncio.create_task(bot.start("test-token"))
    try:
        await asyncio.wait_for(bot.wait_until_ready(), 20)
        return await scenario(bot)
    finally:
        await bot.close()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


def test_bot_streams_every_guild_into_the_cache_on_connect(discord_settings, emulator):
    world = emulator.world

    async def scenario(bot):
        def all_synced():
            done = SyncJob.objects.filter(status="succeeded", strategy="gateway", trigger="bot")
            return done.count() == len(world.guilds)

        await eventually(all_synced, timeout=20)

    run_async(with_bot(scenario))
    for guild in world.guilds.values():
        stored = Guild.objects.get(pk=guild.id)
        assert stored.name == guild.name and stored.is_active
        assert Member.objects.filter(guild=stored).count() == guild.member_count


def test_live_member_events_update_the_cache(discord_settings, emulator, emulator_guild):
    world = emulator.world
    members = emulator_guild.list_members(after=0, limit=10)
    renamed, leaver = int(members[2]["user"]["id"]), int(members[3]["user"]["id"])

    async def scenario(bot):
        await eventually(lambda: SyncJob.objects.filter(guild_id=emulator_guild.id, status="succeeded").exists())
        joined = await asyncio.to_thread(emulator.call, world.add_member, emulator_guild, username="fresh_face")
        await asyncio.to_thread(emulator.call, world.update_member, emulator_guild, renamed, {"nick": "Live Nick"})
        await asyncio.to_thread(emulator.call, world.remove_member, emulator_guild, leaver)
        # How fast is measured in bench/bot_events.py; here only that they arrive.
        await eventually(lambda: Member.objects.filter(guild_id=emulator_guild.id, username="fresh_face").exists())
        await eventually(lambda: Member.objects.filter(user_id=renamed, nick="Live Nick").exists())
        await eventually(lambda: Member.objects.filter(user_id=leaver, departed_at__isnull=False).exists())
        return joined

    joined = run_async(with_bot(scenario))
    fresh = Member.objects.get(user_id=int(joined["user"]["id"]))
    assert fresh.display_name == "fresh_face" and fresh.departed_at is None


def test_leaving_a_guild_marks_it_inactive(discord_settings, emulator, emulator_guild):
    async def scenario(bot):
        await eventually(lambda: Guild.objects.filter(pk=emulator_guild.id, is_active=True).exists())
        guild = bot.get_guild(emulator_guild.id)
        await bot.on_guild_remove(guild)  # what discord.py calls on GUILD_DELETE

    run_async(with_bot(scenario))
    assert not Guild.objects.get(pk=emulator_guild.id).is_active


def test_sync_slash_command_queues_a_run_and_answers_ephemerally(discord_settings, emulator, emulator_guild):
    async def scenario(bot):
        await eventually(lambda: SyncJob.objects.filter(guild_id=emulator_guild.id, status="succeeded").exists())
        status, _, created = await asyncio.to_thread(
            http,
            "POST",
            f"{emulator.url}/_emulator/interactions",
            {"guild_id": str(emulator_guild.id), "name": "guildhub", "options": [{"name": "sync", "type": 1}]},
        )
        assert status == 201 and created["delivered"] >= 1

        def answered():
            _, _, interaction = http("GET", f"{emulator.url}/_emulator/interactions/{created['id']}")
            return interaction["responses"]

        return await eventually(answered)

    responses = run_async(with_bot(scenario))
    assert responses[0]["type"] == 4
    assert "queued" in responses[0]["data"]["content"]
    assert responses[0]["data"]["flags"] & 64  # ephemeral
    job = SyncJob.objects.filter(guild_id=emulator_guild.id, trigger="bot", status="queued").get()
    assert job.strategy == "rest"
    assert emulator.world.commands[None][0]["name"] == "guildhub"


def test_bot_reidentifies_at_the_gateway_discord_gave_after_an_invalid_session(discord_settings, emulator):
    world = emulator.world
    guild = next(iter(world.guilds.values()))

    async def scenario(bot):
        await eventually(lambda: world.counters.gateway_identifies == 1)
        await asyncio.to_thread(http, "POST", f"{emulator.url}/_emulator/gateway/invalidate", {"resumable": False})
        await eventually(lambda: world.counters.gateway_identifies == 2, timeout=20)
        await asyncio.to_thread(emulator.call, world.add_member, guild, username="after_reidentify")
        await eventually(lambda: Member.objects.filter(username="after_reidentify").exists(), timeout=5)

    run_async(with_bot(scenario))


def test_the_bot_records_a_heartbeat_per_shard_for_healthz(discord_settings, emulator):
    from guildhub.models import BotHeartbeat

    BotHeartbeat.objects.create(shard_id=7, guild_count=1)  # a shard from before a reshard

    async def scenario(bot):
        await eventually(lambda: BotHeartbeat.objects.filter(shard_id=0, guild_count=2).exists())
        await eventually(lambda: not BotHeartbeat.objects.filter(shard_id=7).exists())

    run_async(with_bot(scenario))


def test_member_events_the_bot_cannot_read_are_logged_and_skipped(discord_settings, caplog):
    """Parsed in discord.py's socket reader, where an exception would end the connection."""
    bot = build_gateway_client(GuildHubBot)
    spawned = []
    bot.spawn = lambda *args, **kwargs: spawned.append(args)
    hostile = [{"guild_id": "1"}, {"guild_id": "not an id", "user": {"id": "1"}}, {"guild_id": "1", "user": None}, {}]
    for data in hostile:
        assert bot.on_raw_member_upsert(data) is False
        assert bot.on_raw_member_removal(data) is False
    assert spawned == []
    assert caplog.text.count("cannot read") == 2 * len(hostile)
