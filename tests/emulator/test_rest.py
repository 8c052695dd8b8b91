"""The emulator's REST routes, driven by real discord.py and by raw HTTP."""

import asyncio
import json
import urllib.error
import urllib.request

import discord
import pytest

from guildhub.discord.clients import rest_client
from guildhub.emulator.state import GuildSpec, World


def http(method: str, url: str, body: object = None, token: str | None = "Bot test") -> tuple[int, dict, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", token)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            payload = json.loads(raw)
        except json.JSONDecodeError:
            payload = raw.decode()
        return error.code, dict(error.headers), payload


def first_guild(emulator):
    return next(iter(emulator.world.guilds.values()))


def test_json_responses_carry_discords_exact_content_type(emulator):
    status, headers, _ = http("GET", f"{emulator.api_base}/users/@me")
    assert status == 200
    assert headers["Content-Type"] == "application/json"


def test_missing_or_wrong_token_gets_401():
    with_token = World(guilds=[GuildSpec(members=5)])
    from guildhub.emulator.app import EmulatorOptions
    from guildhub.emulator.server import EmulatorServer

    with EmulatorServer(with_token, options=EmulatorOptions(token="right")) as server:
        assert http("GET", f"{server.api_base}/users/@me", token=None)[0] == 401
        status, _, body = http("GET", f"{server.api_base}/users/@me", token="Bot wrong")
        assert (status, body) == (401, {"message": "401: Unauthorized", "code": 0})
        assert http("GET", f"{server.api_base}/users/@me", token="Bot right")[0] == 200


def test_discord_py_logs_in_and_pages_through_every_member_of_a_50k_guild():
    world = World(guilds=[GuildSpec(members=50_000, channels=1, messages=10)])
    from guildhub.emulator.server import EmulatorServer

    with EmulatorServer(world, profile="fast") as server:
        guild_id = next(iter(world.guilds))

        async def fetch_all() -> tuple[str, list[int], int | None]:
            async with rest_client(token="any", api_base=server.api_base, shared_limits=False) as client:
                guild = await client.fetch_guild(guild_id, with_counts=True)
                ids = [member.id async for member in guild.fetch_members(limit=None)]
                return str(client.user), ids, guild.approximate_member_count

        user, ids, approximate = asyncio.run(fetch_all())
        assert user.startswith("GuildHub Emulator")
        assert len(ids) == len(set(ids)) == 50_001  # the bot is a member too
        assert approximate == 50_001
        assert sorted(ids) == sorted(world.guilds[guild_id].iter_member_ids())
        # 51 pages of at most 1000; no 429 once discord.py learnt the bucket.
        assert world.counters.requests["GET /api/v10/guilds/{guild_id}/members"] == 51
        assert world.counters.rate_limited == 0


def test_list_members_defaults_to_one_member_and_rejects_limits_outside_1_to_1000(emulator):
    guild = first_guild(emulator)
    status, _, body = http("GET", f"{emulator.api_base}/guilds/{guild.id}/members")
    assert status == 200 and len(body) == 1
    status, _, body = http("GET", f"{emulator.api_base}/guilds/{guild.id}/members?limit=1001")
    assert status == 400
    assert body["code"] == 50035
    assert body["errors"]["limit"]["_errors"][0]["code"] == "NUMBER_TYPE_MAX"


def test_list_members_is_ascending_after_the_cursor(emulator):
    guild = first_guild(emulator)
    _, _, page = http("GET", f"{emulator.api_base}/guilds/{guild.id}/members?limit=100")
    ids = [int(m["user"]["id"]) for m in page]
    assert ids == sorted(ids)
    _, _, after = http("GET", f"{emulator.api_base}/guilds/{guild.id}/members?limit=5&after={ids[49]}")
    assert [int(m["user"]["id"]) for m in after] == ids[50:55]


def test_members_intent_off_gives_missing_access(emulator):
    emulator.world.members_intent_enabled = False
    guild = first_guild(emulator)
    status, _, body = http("GET", f"{emulator.api_base}/guilds/{guild.id}/members?limit=10")
    assert (status, body["code"]) == (403, 50001)


def test_unknown_and_malformed_ids_get_discords_errors(emulator):
    assert http("GET", f"{emulator.api_base}/guilds/1234")[2] == {"message": "Unknown Guild", "code": 10004}
    assert http("GET", f"{emulator.api_base}/channels/1234/messages")[2]["code"] == 10003
    guild = first_guild(emulator)
    assert http("GET", f"{emulator.api_base}/guilds/{guild.id}/members/1234")[2]["code"] == 10007
    status, _, body = http("GET", f"{emulator.api_base}/guilds/not-a-number")
    assert status == 400 and body["errors"]["guild_id"]["_errors"][0]["code"] == "NUMBER_TYPE_COERCE"
    status, _, body = http("GET", f"{emulator.api_base}/no/such/route")
    assert (status, body) == (404, {"message": "404: Not Found", "code": 0})


def test_search_is_a_case_insensitive_prefix_on_username_and_nick(emulator):
    guild = first_guild(emulator)
    member = guild.list_members(after=0, limit=30)[17]
    prefix = member["user"]["username"][:4].upper()
    _, _, found = http("GET", f"{emulator.api_base}/guilds/{guild.id}/members/search?query={prefix}&limit=1000")
    assert member["user"]["id"] in {m["user"]["id"] for m in found}
    for m in found:
        names = [m["user"]["username"].casefold(), (m["nick"] or "").casefold()]
        assert any(name.startswith(prefix.casefold()) for name in names)


def test_history_pages_newest_first_with_before_after_and_around(emulator):
    guild = first_guild(emulator)
    channel = next(c for c in guild.channels.values() if c.type == 0 and c.message_count >= 250)
    base = f"{emulator.api_base}/channels/{channel.id}/messages"
    _, _, newest = http("GET", base)
    assert len(newest) == 50
    ids = [int(m["id"]) for m in newest]
    assert ids == sorted(ids, reverse=True)
    _, _, older = http("GET", f"{base}?limit=100&before={ids[-1]}")
    assert len(older) == 100 and int(older[0]["id"]) < ids[-1]
    _, _, oldest = http("GET", f"{base}?limit=10&after=0")
    oldest_ids = [int(m["id"]) for m in oldest]
    assert oldest_ids == sorted(oldest_ids, reverse=True)  # the 10 oldest, still newest first
    _, _, around = http("GET", f"{base}?limit=5&around={ids[10]}")
    assert str(ids[10]) in {m["id"] for m in around} and len(around) == 5
    assert http("GET", f"{base}?limit=101")[0] == 400


def test_discord_py_reads_a_channels_whole_history_oldest_first(emulator):
    guild = first_guild(emulator)
    channel = next(c for c in guild.channels.values() if c.type == 0)

    async def read() -> list[int]:
        async with rest_client(token="any", api_base=emulator.api_base, shared_limits=False) as client:
            text_channel = await client.fetch_channel(channel.id)
            return [m.id async for m in text_channel.history(limit=None, oldest_first=True)]

    ids = asyncio.run(read())
    assert len(ids) == channel.message_count
    assert ids == sorted(ids)


def test_role_changes_respect_the_bots_role_hierarchy_and_keep_the_audit_reason(emulator):
    guild = first_guild(emulator)
    below = next(r for r in guild.roles if r["name"] == "Moderator")
    member = next(m for m in guild.list_members(after=0, limit=50) if below["id"] not in m["roles"])
    uid = int(member["user"]["id"])
    above = next(r for r in guild.roles if r["name"] == "Owner")

    async def change() -> int:
        async with rest_client(token="any", api_base=emulator.api_base, shared_limits=False) as client:
            dguild = await client.fetch_guild(guild.id)
            dmember = await dguild.fetch_member(uid)
            await dmember.add_roles(discord.Object(int(below["id"])), reason="sync: rule Moderators")
            with pytest.raises(discord.Forbidden) as denied:
                await dmember.add_roles(discord.Object(int(above["id"])))
            return denied.value.code

    assert asyncio.run(change()) == 50013
    assert below["id"] in emulator.call(guild.member, uid)["roles"]
    assert emulator.world.audit_log[-1]["reason"] == "sync: rule Moderators"


def test_patch_member_sets_nick_and_whole_role_list(emulator):
    guild = first_guild(emulator)
    uid = guild.list_members(after=0, limit=3)[2]["user"]["id"]
    role = next(r for r in guild.roles if r["name"] == "Helper")
    status, _, body = http(
        "PATCH", f"{emulator.api_base}/guilds/{guild.id}/members/{uid}", {"nick": "Renamed", "roles": [role["id"]]}
    )
    assert status == 200
    assert (body["nick"], body["roles"]) == ("Renamed", [role["id"]])
    status, _, body = http("PATCH", f"{emulator.api_base}/guilds/{guild.id}/members/{uid}", {"roles": ["x"]})
    assert status == 400 and body["code"] == 50035


def test_slash_commands_register_through_discord_py(emulator):
    async def register() -> list[str]:
        async with rest_client(token="any", api_base=emulator.api_base, shared_limits=False) as client:
            tree = discord.app_commands.CommandTree(client)

            @tree.command(name="sync", description="Sync members now")
            async def sync(interaction: discord.Interaction) -> None:  # pragma: no cover - never invoked
                pass

            commands = await tree.sync()
            return [c.name for c in commands]

    assert asyncio.run(register()) == ["sync"]
    assert emulator.world.commands[None][0]["name"] == "sync"
