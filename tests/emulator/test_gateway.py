"""The emulated gateway, driven by real discord.py and by a raw websocket client.

discord.py clients are AutoShardedClients, as the bot's: a plain discord.Client
connects to the hard-coded wss://gateway.discord.gg, an AutoShardedClient asks
`GET /gateway/bot` (the emulator) for the URL.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import discord
import pytest

from guildhub.discord.clients import apply_api_base, build_gateway_client, gateway_intents
from guildhub.emulator.app import EmulatorOptions
from guildhub.emulator.gateway import zstd_available
from guildhub.emulator.server import EmulatorServer
from guildhub.emulator.state import GuildSpec, World

TOKEN = "emulator-test-token"
GUILDS = 1 << 0
MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
MESSAGE_CONTENT = 1 << 15
SYNC_FLUSH = b"\x00\x00\xff\xff"
WAIT = 10.0  # seconds any single wait may take before the test fails instead of hanging


# -- discord.py side ----------------------------------------------------------


def discord_client(emulator: EmulatorServer, **options) -> discord.AutoShardedClient:
    # No shared rate limiter (it lives in the database; these tests have none).
    options.setdefault("http_trace", None)
    # The emulator sends every GUILD_CREATE at once: no need to wait discord.py's 2 s for more.
    options.setdefault("guild_ready_timeout", 0.5)
    client = build_gateway_client(discord.AutoShardedClient, **options)
    apply_api_base(emulator.api_base)  # build_gateway_client pointed it at settings' base
    return client


class Recorder:
    """Collects a client's events in queues, so a test can await the next one."""

    def __init__(self, client: discord.Client, *events: str) -> None:
        self.queues: dict[str, asyncio.Queue] = {}
        for event in events:
            queue: asyncio.Queue = asyncio.Queue()
            self.queues[event] = queue

            async def handler(*args, _queue=queue) -> None:
                _queue.put_nowait(args[0] if len(args) == 1 else args)

            handler.__name__ = f"on_{event}"
            client.event(handler)

    async def next(self, event: str):
        return await asyncio.wait_for(self.queues[event].get(), WAIT)


@asynccontextmanager
async def connected(client: discord.Client, token: str = TOKEN) -> AsyncIterator[discord.Client]:
    """Log in, connect, wait for on_ready; close on exit."""
    await client.login(token)
    runner = asyncio.create_task(client.connect())
    ready = asyncio.create_task(client.wait_until_ready())
    try:
        done, _ = await asyncio.wait({ready, runner}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
        if runner in done:
            runner.result()  # raises what stopped the client
        assert ready in done, "no on_ready in time"
        yield client
    finally:
        await client.close()
        for task in (ready, runner):
            task.cancel()
        await asyncio.gather(ready, runner, return_exceptions=True)


async def in_emulator(emulator: EmulatorServer, fn, *args, **kwargs):
    """Run fn on the emulator's loop without blocking the client's loop."""
    return await asyncio.to_thread(emulator.call, fn, *args, **kwargs)


def eventually(predicate, timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def guild_named(emulator: EmulatorServer, name: str):
    return next(g for g in emulator.world.guilds.values() if g.name == name)


# -- raw websocket side ----------------------------------------------------------


class Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"closed with {code}: {reason}")
        self.code = code


class RawGateway:
    """A bare gateway client that checks framing as it reads."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.inflate = zlib.decompressobj()  # one stream for the whole connection
        self.frames: list[bytes] = []
        self.seq: int | None = None

    async def receive(self) -> dict:
        msg = await asyncio.wait_for(self.ws.receive(), WAIT)
        if msg.type == aiohttp.WSMsgType.BINARY:
            assert msg.data.endswith(SYNC_FLUSH), "every zlib-stream message ends with a sync flush"
            self.frames.append(msg.data)
            text = self.inflate.decompress(msg.data).decode()
        elif msg.type == aiohttp.WSMsgType.TEXT:
            text = msg.data
        elif msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            raise Closed(self.ws.close_code or 0, msg.extra or "")
        else:
            raise AssertionError(f"unexpected frame {msg.type}")
        payload = json.loads(text)
        if payload.get("s") is not None:
            self.seq = payload["s"]
        return payload

    async def dispatch(self, event: str) -> dict:
        """The next dispatch of type `event`, skipping others (and heartbeat acks)."""
        while True:
            payload = await self.receive()
            if payload["op"] == 0 and payload["t"] == event:
                return payload["d"]

    async def send(self, op: int, d: object) -> None:
        await self.ws.send_str(json.dumps({"op": op, "d": d}))

    async def hello(self) -> dict:
        payload = await self.receive()
        assert payload["op"] == 10
        return payload["d"]

    async def identify(self, *, token: str = TOKEN, intents: int = GUILDS | MEMBERS, **extra) -> dict:
        await self.send(2, {"token": token, "intents": intents, "properties": {"os": "linux"}, **extra})
        return await self.dispatch("READY")

    async def closed(self) -> int:
        """Read until the server closes; the close code."""
        with pytest.raises(Closed) as closed:
            while True:
                await self.receive()
        return closed.value.code


@asynccontextmanager
async def raw_gateway(emulator: EmulatorServer, query: str = "v=10&encoding=json&compress=zlib-stream"):
    async with aiohttp.ClientSession() as session:
        url = f"{emulator.gateway.url_for(emulator.url)}?{query}"
        async with session.ws_connect(url) as ws:
            yield RawGateway(ws)


@asynccontextmanager
async def identified(emulator: EmulatorServer, **identify) -> AsyncIterator[tuple[RawGateway, dict]]:
    async with raw_gateway(emulator) as gw:
        await gw.hello()
        ready = await gw.identify(**identify)
        yield gw, ready


async def guild_creates(gw: RawGateway, count: int) -> dict[str, dict]:
    return {g["id"]: g for g in [await gw.dispatch("GUILD_CREATE") for _ in range(count)]}


@pytest.fixture
def token_emulator():
    """An emulator that accepts one bot token only."""
    world = World(seed=3, guilds=[GuildSpec(members=10, channels=1, messages=0)])
    with EmulatorServer(world, options=EmulatorOptions(token=TOKEN, heartbeat_interval_ms=1000)) as server:
        yield server


# -- discord.py end to end --------------------------------------------------------


def test_discord_py_identifies_and_gets_ready_with_every_guild(emulator):
    world = emulator.world

    async def scenario() -> None:
        async with connected(discord_client(emulator)) as client:
            assert client.user.id == world.bot_id
            assert {g.id for g in client.guilds} == set(world.guilds)
            test_guild = client.get_guild(guild_named(emulator, "Test Guild").id)
            assert test_guild.name == "Test Guild"
            assert test_guild.member_count == guild_named(emulator, "Test Guild").member_count
            assert len(test_guild.text_channels) == 3
            assert test_guild.me is not None  # the bot's own member came with GUILD_CREATE

    asyncio.run(scenario())
    assert world.counters.gateway_identifies == 1
    assert eventually(lambda: emulator.call(emulator.gateway.session_count) == 0)  # the client closed


def test_guild_chunk_brings_every_member_of_a_5000_member_guild(emulator):
    big = emulator.call(emulator.world.add_guild, GuildSpec(name="Big", members=5000, channels=1, messages=0))
    intents = gateway_intents()

    async def scenario() -> None:
        client = discord_client(emulator, member_cache_flags=discord.MemberCacheFlags.from_intents(intents))
        async with connected(client):
            guild = client.get_guild(big.id)
            assert guild.large and not guild.chunked
            members = await asyncio.wait_for(guild.chunk(), WAIT)
            assert len(members) == big.member_count == 5001  # 5000 people and the bot
            assert guild.chunked and len(guild.members) == 5001
            assert len({m.id for m in members}) == 5001

    asyncio.run(scenario())
    assert emulator.world.counters.member_chunk_requests == 1


def test_member_join_update_and_leave_reach_discord_py(emulator):
    world = emulator.world
    guild = guild_named(emulator, "Test Guild")
    intents = gateway_intents()

    async def scenario() -> None:
        client = discord_client(emulator, member_cache_flags=discord.MemberCacheFlags.from_intents(intents))
        events = Recorder(client, "member_join", "member_update", "raw_member_remove")
        async with connected(client):
            added = await in_emulator(emulator, world.add_member, guild, username="newcomer", nick="Newbie")
            uid = int(added["user"]["id"])
            joined = await events.next("member_join")
            assert (joined.id, joined.name, joined.nick, joined.guild.id) == (uid, "newcomer", "Newbie", guild.id)

            await in_emulator(emulator, world.update_member, guild, uid, {"nick": "Regular"})
            before, after = await events.next("member_update")
            assert (before.nick, after.nick) == ("Newbie", "Regular")

            await in_emulator(emulator, world.remove_member, guild, uid)
            removed = await events.next("raw_member_remove")
            assert (removed.user.id, removed.guild_id) == (uid, guild.id)
            assert client.get_guild(guild.id).get_member(uid) is None

    asyncio.run(scenario())


def test_slash_command_reaches_discord_py_and_its_reply_reaches_the_callback_route(emulator):
    guild = guild_named(emulator, "Test Guild")

    async def scenario() -> None:
        client = discord_client(emulator)
        seen: asyncio.Queue = asyncio.Queue()

        @client.event
        async def on_interaction(interaction: discord.Interaction) -> None:
            try:
                await interaction.response.send_message(f"pong {interaction.data['options'][0]['value']}")
            except Exception as exc:  # reported to the test, not lost in discord.py's logger
                await seen.put((interaction, exc))
            else:
                await seen.put((interaction, None))

        async with connected(client), aiohttp.ClientSession() as http:
            body = {"guild_id": str(guild.id), "name": "ping", "options": [{"name": "n", "type": 4, "value": 7}]}
            async with http.post(f"{emulator.url}/_emulator/interactions", json=body) as response:
                assert response.status == 201
                created = await response.json()
            assert created["delivered"] == 1
            interaction, error = await asyncio.wait_for(seen.get(), WAIT)
            assert interaction.id == int(created["id"])
            assert interaction.type is discord.InteractionType.application_command
            assert interaction.command is None and interaction.data["name"] == "ping"
            assert interaction.guild_id == guild.id
            assert interaction.user.id == guild.owner_id
            assert interaction.channel is not None
            stored = emulator.world.interactions[interaction.id].responses
            assert stored and stored[0]["type"] == 4 and stored[0]["data"]["content"] == "pong 7"
            assert error is None, f"send_message raised {error!r}"

    asyncio.run(scenario())


def test_members_intent_not_enabled_closes_4014_and_discord_py_raises_privileged_intents_required(emulator):
    emulator.call(setattr, emulator.world, "members_intent_enabled", False)

    async def scenario() -> None:
        client = discord_client(emulator)
        await client.login(TOKEN)
        try:
            with pytest.raises(discord.PrivilegedIntentsRequired):
                await asyncio.wait_for(client.connect(), WAIT)
        finally:
            await client.close()

    asyncio.run(scenario())


def test_reconnect_request_makes_discord_py_resume_and_keep_receiving_events(emulator):
    world = emulator.world
    guild = guild_named(emulator, "Test Guild")

    async def scenario() -> None:
        client = discord_client(emulator)
        events = Recorder(client, "resumed", "member_join")
        async with connected(client):
            assert await in_emulator(emulator, emulator.gateway.reconnect_all) == 1
            await events.next("resumed")
            await in_emulator(emulator, world.add_member, guild, username="after_resume")
            assert (await events.next("member_join")).name == "after_resume"

    asyncio.run(scenario())
    assert world.counters.gateway_identifies == 1
    assert world.counters.gateway_resumes == 1


def test_dropped_connection_is_resumed_without_losing_events(emulator):
    world = emulator.world
    guild = guild_named(emulator, "Test Guild")

    async def scenario() -> None:
        client = discord_client(emulator)
        events = Recorder(client, "resumed", "member_join")
        async with connected(client):
            assert await in_emulator(emulator, emulator.gateway.drop_all) == 1
            # Joins while the client is away come with the RESUME.
            await in_emulator(emulator, world.add_member, guild, username="while_away")
            await events.next("resumed")
            assert (await events.next("member_join")).name == "while_away"

    asyncio.run(scenario())
    assert world.counters.gateway_identifies == 1
    assert world.counters.gateway_resumes == 1


# -- raw protocol ----------------------------------------------------------------------


def test_zlib_stream_frames_end_with_sync_flush_and_share_one_stream(emulator):
    async def scenario() -> None:
        async with identified(emulator) as (gw, _):
            await guild_creates(gw, 2)
            assert len(gw.frames) == 4  # hello, ready, two guild creates
            assert all(frame.endswith(SYNC_FLUSH) for frame in gw.frames)
            # Only the first frame carries the zlib header: later ones need the stream.
            with pytest.raises(zlib.error):
                zlib.decompressobj().decompress(gw.frames[1])

    asyncio.run(scenario())


def test_without_compression_frames_are_json_text(emulator):
    async def scenario() -> None:
        async with raw_gateway(emulator, "v=10&encoding=json") as gw:
            hello = await gw.hello()
            assert hello["heartbeat_interval"] == 1000
            assert not gw.frames

    asyncio.run(scenario())


@pytest.mark.skipif(not zstd_available(), reason="no zstd module installed (discord.py then asks for zlib-stream)")
def test_zstd_stream_frames_decompress_with_one_stream(emulator):
    import zstandard

    async def scenario() -> None:
        async with raw_gateway(emulator, "v=10&encoding=json&compress=zstd-stream") as gw:
            stream = zstandard.ZstdDecompressor().decompressobj()  # what discord.py decompresses with

            async def receive() -> dict:
                msg = await asyncio.wait_for(gw.ws.receive(), WAIT)
                assert msg.type == aiohttp.WSMsgType.BINARY
                return json.loads(stream.decompress(msg.data))

            assert (await receive())["op"] == 10
            await gw.send(1, None)
            assert (await receive())["op"] == 11

    asyncio.run(scenario())


def test_ready_and_guild_create_carry_what_discord_sends(emulator):
    world = emulator.world
    test_guild, small = guild_named(emulator, "Test Guild"), guild_named(emulator, "GuildHub Demo 2")

    async def scenario() -> None:
        async with identified(emulator, large_threshold=250) as (gw, ready):
            assert ready["user"]["id"] == str(world.bot_id)
            assert ready["application"]["id"] == str(world.bot_id)
            assert ready["resume_gateway_url"] == emulator.gateway.url_for(emulator.url)
            assert ready["shard"] == [0, 1]
            assert sorted(ready["guilds"], key=lambda g: g["id"]) == sorted(
                ({"id": str(g), "unavailable": True} for g in world.guilds), key=lambda g: g["id"]
            )
            creates = await guild_creates(gw, 2)
            large, little = creates[str(test_guild.id)], creates[str(small.id)]
            # 301 members > large_threshold 250: only the bot's own member is sent.
            assert large["large"] is True and large["member_count"] == 301
            assert [m["user"]["id"] for m in large["members"]] == [str(world.bot_id)]
            assert little["large"] is False and len(little["members"]) == little["member_count"] == 41
            assert large["unavailable"] is False and large["joined_at"]
            assert {c["name"] for c in large["channels"]} >= {"general", "announcements", "off-topic"}

    asyncio.run(scenario())


def test_heartbeats_are_acknowledged_before_and_after_identify_and_the_server_may_ask_for_one(emulator):
    async def scenario() -> None:
        async with raw_gateway(emulator) as gw:
            await gw.hello()
            await gw.send(1, None)
            assert (await gw.receive())["op"] == 11
            await gw.identify()
            await guild_creates(gw, 2)
            await gw.send(1, gw.seq)
            assert (await gw.receive()) == {"op": 11, "d": None, "s": None, "t": None}
            assert await in_emulator(emulator, emulator.gateway.request_heartbeats) == 1
            assert (await gw.receive())["op"] == 1

    asyncio.run(scenario())


def test_request_by_user_ids_reports_the_unknown_ones_in_not_found_and_echoes_the_nonce(emulator):
    guild = guild_named(emulator, "Test Guild")
    known = [int(m["user"]["id"]) for m in emulator.call(guild.list_members, after=0, limit=3)]

    async def scenario() -> None:
        async with identified(emulator) as (gw, _):
            await guild_creates(gw, 2)
            request = {"guild_id": guild.id, "user_ids": [*known, 42], "limit": 0, "nonce": "abc123"}
            await gw.send(8, request)
            chunk = await gw.dispatch("GUILD_MEMBERS_CHUNK")
            assert sorted(int(m["user"]["id"]) for m in chunk["members"]) == sorted(known)
            assert chunk["not_found"] == ["42"]
            assert (chunk["nonce"], chunk["chunk_index"], chunk["chunk_count"]) == ("abc123", 0, 1)

    asyncio.run(scenario())


def test_full_member_list_of_2500_members_comes_in_chunks_of_at_most_1000(emulator):
    guild = emulator.call(emulator.world.add_guild, GuildSpec(name="Chunky", members=2500, channels=1, messages=0))

    async def scenario() -> None:
        async with identified(emulator) as (gw, _):
            await guild_creates(gw, 3)
            await gw.send(8, {"guild_id": str(guild.id), "query": "", "limit": 0, "nonce": "all"})
            chunks = [await gw.dispatch("GUILD_MEMBERS_CHUNK") for _ in range(3)]
            assert [c["chunk_index"] for c in chunks] == [0, 1, 2]
            assert {c["chunk_count"] for c in chunks} == {3}
            assert [len(c["members"]) for c in chunks] == [1000, 1000, 501]  # 2500 people and the bot
            assert {c["nonce"] for c in chunks} == {"all"}
            ids = [int(m["user"]["id"]) for c in chunks for m in c["members"]]
            assert len(set(ids)) == guild.member_count == 2501

    asyncio.run(scenario())


def test_member_list_streams_while_heartbeats_keep_being_answered(emulator):
    guild = emulator.call(emulator.world.add_guild, GuildSpec(name="Huge", members=30_000, channels=1, messages=0))

    async def scenario() -> None:
        async with identified(emulator) as (gw, _):
            await guild_creates(gw, 3)
            await gw.send(8, {"guild_id": str(guild.id), "query": "", "limit": 0})
            await gw.send(1, gw.seq)
            last_index = None
            while True:
                payload = await gw.receive()
                if payload["op"] == 11:
                    break
                last_index = payload["d"]["chunk_index"]
            # The ack overtook the stream: it did not wait behind 31 chunks.
            assert last_index is None or last_index < 5
            indexes = [
                (await gw.dispatch("GUILD_MEMBERS_CHUNK"))["chunk_index"] for _ in range(30 - (last_index or -1))
            ]
            assert indexes[-1] == 30

    asyncio.run(scenario())


def test_query_finds_members_by_case_insensitive_username_prefix(emulator):
    guild = guild_named(emulator, "Test Guild")
    sample = emulator.call(guild.list_members, after=0, limit=50)[10]["user"]["username"]
    prefix = sample[:3].upper()

    async def scenario() -> None:
        async with identified(emulator) as (gw, _):
            await guild_creates(gw, 2)
            await gw.send(8, {"guild_id": str(guild.id), "query": prefix, "limit": 5})
            chunk = await gw.dispatch("GUILD_MEMBERS_CHUNK")
            assert 1 <= len(chunk["members"]) <= 5
            for member in chunk["members"]:
                names = (member["user"]["username"], member["nick"] or "")
                assert any(name.casefold().startswith(prefix.casefold()) for name in names)

    asyncio.run(scenario())


def test_a_second_full_list_within_the_interval_is_rate_limited(emulator):
    emulator.call(setattr, emulator.gateway, "member_request_interval", 30.0)
    guild = guild_named(emulator, "GuildHub Demo 2")

    async def scenario() -> None:
        async with identified(emulator) as (gw, _):
            await guild_creates(gw, 2)
            await gw.send(8, {"guild_id": str(guild.id), "query": "", "limit": 0, "nonce": "first"})
            assert (await gw.dispatch("GUILD_MEMBERS_CHUNK"))["nonce"] == "first"
            await gw.send(8, {"guild_id": str(guild.id), "query": "", "limit": 0, "nonce": "second"})
            limited = await gw.dispatch("RATE_LIMITED")
            assert limited["opcode"] == 8
            assert 0 < limited["retry_after"] <= 30
            assert limited["meta"] == {"guild_id": str(guild.id), "nonce": "second"}

    asyncio.run(scenario())


def test_full_list_without_the_members_intent_goes_unanswered(emulator):
    guild = guild_named(emulator, "GuildHub Demo 2")

    async def scenario() -> None:
        async with identified(emulator, intents=GUILDS) as (gw, _):
            await guild_creates(gw, 2)
            await gw.send(8, {"guild_id": str(guild.id), "query": "", "limit": 0})
            await gw.send(1, None)
            # The ack is the next thing on the wire: no chunk came (the request task has run by then).
            await asyncio.sleep(0.2)
            assert (await gw.receive())["op"] == 11

    asyncio.run(scenario())


def test_member_events_need_the_members_intent_and_message_content_its_own(emulator):
    world = emulator.world
    guild = guild_named(emulator, "Test Guild")
    channel = next(c for c in guild.channels.values() if c.type == 0)
    author = emulator.call(guild.list_members, after=0, limit=1)[0]["user"]

    async def scenario() -> None:
        async with (
            identified(emulator, intents=GUILDS | MEMBERS | GUILD_MESSAGES) as (with_members, _),
            identified(emulator, intents=GUILDS | GUILD_MESSAGES | MESSAGE_CONTENT) as (with_content, _),
        ):
            for gw in (with_members, with_content):
                await guild_creates(gw, 2)
            await in_emulator(emulator, world.add_member, guild, username="visible_to_one")
            await in_emulator(emulator, world.post_message, channel, author=author, content="hello there")

            assert (await with_members.dispatch("GUILD_MEMBER_ADD"))["user"]["username"] == "visible_to_one"
            assert (await with_members.dispatch("MESSAGE_CREATE"))["content"] == ""  # no message content intent
            # The other session got the message, with content, and nothing before it.
            payload = await with_content.receive()
            assert (payload["t"], payload["d"]["content"]) == ("MESSAGE_CREATE", "hello there")

    asyncio.run(scenario())


def test_shards_split_guilds_by_discords_formula(emulator):
    for k in range(4):
        emulator.call(emulator.world.add_guild, GuildSpec(name=f"Shard test {k}", members=3, channels=1, messages=0))
    all_ids = set(emulator.world.guilds)

    async def scenario() -> None:
        seen = {}
        for shard_id in (0, 1):
            async with identified(emulator, shard=[shard_id, 2]) as (_, ready):
                assert ready["shard"] == [shard_id, 2]
                seen[shard_id] = {int(g["id"]) for g in ready["guilds"]}
                assert all((gid >> 22) % 2 == shard_id for gid in seen[shard_id])
        assert seen[0] | seen[1] == all_ids and not seen[0] & seen[1]

    asyncio.run(scenario())


def test_resume_replays_what_was_missed_then_sends_resumed(emulator):
    world = emulator.world
    guild = guild_named(emulator, "Test Guild")

    async def scenario() -> None:
        async with identified(emulator) as (gw, ready):
            await guild_creates(gw, 2)
            session_id, seq = ready["session_id"], gw.seq
        await in_emulator(emulator, world.add_member, guild, username="missed_one")
        async with raw_gateway(emulator) as gw:
            await gw.hello()
            await gw.send(6, {"token": TOKEN, "session_id": session_id, "seq": seq})
            replayed = await gw.receive()
            assert (replayed["t"], replayed["s"]) == ("GUILD_MEMBER_ADD", seq + 1)
            assert replayed["d"]["user"]["username"] == "missed_one"
            resumed = await gw.receive()
            assert (resumed["t"], resumed["s"]) == ("RESUMED", seq + 2)

    asyncio.run(scenario())
    assert world.counters.gateway_resumes == 1


def test_resume_of_an_unknown_session_gets_invalid_session(emulator):
    async def scenario() -> None:
        async with raw_gateway(emulator) as gw:
            await gw.hello()
            await gw.send(6, {"token": TOKEN, "session_id": "no-such-session", "seq": 3})
            assert await gw.receive() == {"op": 9, "d": False, "s": None, "t": None}

    asyncio.run(scenario())


def test_invalidated_sessions_cannot_be_resumed(emulator):
    async def scenario() -> None:
        async with identified(emulator) as (gw, ready):
            assert await in_emulator(emulator, emulator.gateway.invalidate_all, False) == 1
            while (payload := await gw.receive())["op"] != 9:  # GUILD_CREATEs come first
                pass
            assert payload["d"] is False
        async with raw_gateway(emulator) as gw:
            await gw.hello()
            await gw.send(6, {"token": TOKEN, "session_id": ready["session_id"], "seq": 1})
            assert (await gw.receive())["op"] == 9

    asyncio.run(scenario())


def test_bad_token_closes_with_4004(token_emulator):
    async def scenario() -> None:
        async with raw_gateway(token_emulator) as gw:
            await gw.hello()
            await gw.send(2, {"token": "wrong", "intents": GUILDS, "properties": {}})
            assert await gw.closed() == 4004
        async with raw_gateway(token_emulator) as gw:  # the right token, with or without "Bot "
            await gw.hello()
            assert (await gw.identify(token=f"Bot {TOKEN}"))["user"]["bot"] is True

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("messages", "code"),
    [
        pytest.param([(8, {"guild_id": "1", "query": "", "limit": 0})], 4003, id="request-before-identify"),
        pytest.param([(99, None)], 4001, id="unknown-opcode"),
        pytest.param([(2, "identify"), (2, "identify")], 4005, id="identify-twice"),
        pytest.param([(2, {"token": TOKEN, "properties": {}})], 4013, id="identify-without-intents"),
        pytest.param([(2, {"token": TOKEN, "intents": 1, "shard": [2, 2]})], 4010, id="invalid-shard"),
        pytest.param([(1, None)] * 121, 4008, id="more-than-120-commands-a-minute"),
    ],
)
def test_protocol_violations_close_with_discords_codes(emulator, messages, code):
    identify = {"token": TOKEN, "intents": GUILDS, "properties": {}}

    async def scenario() -> None:
        async with raw_gateway(emulator) as gw:
            await gw.hello()
            for op, d in messages:
                await gw.send(op, identify if d == "identify" else d)
            assert await gw.closed() == code

    asyncio.run(scenario())


def test_invalid_json_closes_with_4002(emulator):
    async def scenario() -> None:
        async with raw_gateway(emulator) as gw:
            await gw.hello()
            await gw.ws.send_str("{not json")
            assert await gw.closed() == 4002

    asyncio.run(scenario())


def test_etf_encoding_and_old_versions_are_refused(emulator):
    async def scenario() -> None:
        async with raw_gateway(emulator, "v=10&encoding=etf") as gw:
            assert await gw.closed() == 4002
        async with raw_gateway(emulator, "v=6&encoding=json") as gw:
            assert await gw.closed() == 4012

    asyncio.run(scenario())


def test_connections_identifies_and_chunk_requests_are_counted(emulator):
    guild = guild_named(emulator, "GuildHub Demo 2")

    async def scenario() -> None:
        async with identified(emulator) as (gw, _):
            await guild_creates(gw, 2)
            await gw.send(8, {"guild_id": str(guild.id), "query": "", "limit": 0})
            await gw.dispatch("GUILD_MEMBERS_CHUNK")

    asyncio.run(scenario())
    counters = emulator.world.counters
    assert (counters.gateway_connections, counters.gateway_identifies, counters.member_chunk_requests) == (1, 1, 1)
