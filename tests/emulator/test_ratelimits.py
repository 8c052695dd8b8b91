"""Rate limits as Discord applies them: buckets, the global limit, faults."""

import asyncio
import time

import pytest

from guildhub.discord.clients import rest_client
from guildhub.emulator.ratelimits import PROFILES, BucketRule, RateLimiter
from guildhub.emulator.server import EmulatorServer
from guildhub.emulator.state import GuildSpec, World
from tests.emulator.test_rest import first_guild, http


def long_windows(emulator, **buckets: str) -> None:
    """Bucket windows long enough that a busy machine cannot outlast them mid-test."""
    http("PUT", f"{emulator.url}/_emulator/settings", {"profile": "fast", "buckets": buckets})


def test_a_burst_beyond_a_bucket_gets_429_with_discords_headers_and_body(emulator):
    long_windows(emulator, messages="5/30")
    guild = first_guild(emulator)
    channel = next(c for c in guild.channels.values() if c.type == 0)
    url = f"{emulator.api_base}/channels/{channel.id}/messages?limit=1"
    answers = [http("GET", url) for _ in range(6)]  # the messages bucket holds 5
    statuses = [status for status, _, _ in answers]
    assert statuses[:5] == [200] * 5 and statuses[5] == 429
    _, ok_headers, _ = answers[0]
    assert ok_headers["X-RateLimit-Limit"] == "5"
    assert ok_headers["X-RateLimit-Remaining"] == "4"
    assert float(ok_headers["X-RateLimit-Reset-After"]) > 0
    assert float(ok_headers["X-RateLimit-Reset"]) > time.time() - 1
    _, headers, body = answers[5]
    assert headers["X-RateLimit-Remaining"] == "0"
    assert headers["X-RateLimit-Scope"] == "user"
    assert headers["X-RateLimit-Bucket"] == ok_headers["X-RateLimit-Bucket"]
    assert "Retry-After" in headers
    assert body["global"] is False and 0 < body["retry_after"] <= 30
    assert emulator.world.counters.rate_limited == 1


def test_buckets_are_per_major_parameter(emulator):
    long_windows(emulator, messages="5/30")
    guild = first_guild(emulator)
    first, second = [c for c in guild.channels.values() if c.type == 0][:2]
    for _ in range(5):
        http("GET", f"{emulator.api_base}/channels/{first.id}/messages?limit=1")
    assert http("GET", f"{emulator.api_base}/channels/{first.id}/messages?limit=1")[0] == 429
    status, headers, _ = http("GET", f"{emulator.api_base}/channels/{second.id}/messages?limit=1")
    assert status == 200 and headers["X-RateLimit-Remaining"] == "4"


def test_role_changes_of_one_guild_share_one_bucket(emulator):
    long_windows(emulator, member_roles="10/30")
    guild = first_guild(emulator)
    role = next(r for r in guild.roles if r["name"] == "Helper")
    members = guild.list_members(after=0, limit=12)
    statuses = [
        http("PUT", f"{emulator.api_base}/guilds/{guild.id}/members/{m['user']['id']}/roles/{role['id']}")[0]
        for m in members[:11]
    ]
    assert statuses[:10] == [204] * 10 and statuses[10] == 429


def test_global_limit_answers_global_429():
    limiter = RateLimiter(PROFILES["discord"])
    decisions = [limiter.check(token="t", bucket=f"b{i}", major="") for i in range(51)]
    assert all(d.allowed for d in decisions[:50])
    assert not decisions[50].allowed and decisions[50].is_global
    assert decisions[50].headers["X-RateLimit-Global"] == "true"
    assert decisions[50].headers["X-RateLimit-Scope"] == "global"


def test_bucket_resets_after_its_window():
    now = [100.0]
    limiter = RateLimiter(PROFILES["discord"].with_buckets({"x": BucketRule(2, 5.0)}), clock=lambda: now[0])
    assert [limiter.check(token="t", bucket="x", major="1").allowed for _ in range(3)] == [True, True, False]
    now[0] += 5.0
    assert limiter.check(token="t", bucket="x", major="1").allowed


def test_too_many_invalid_requests_get_a_temporary_ban():
    world = World(guilds=[GuildSpec(members=3)])
    profile = PROFILES["fast"]
    from dataclasses import replace

    with EmulatorServer(world, profile=replace(profile, invalid_limit=5)) as server:
        for _ in range(5):
            assert http("GET", f"{server.api_base}/users/@me", token=None)[0] == 401
        status, headers, body = http("GET", f"{server.api_base}/users/@me")
        assert status == 429 and "Via" not in headers and "rate limited" in body


def test_discord_py_finishes_a_long_paging_run_with_no_429_in_the_discord_profile():
    # 21 pages against a 10-per-second bucket: discord.py must wait on the headers.
    world = World(guilds=[GuildSpec(members=20_500, channels=0)])
    profile = PROFILES["discord"].with_buckets({"members_list": BucketRule(10, 1.0)})
    with EmulatorServer(world, profile=profile) as server:
        guild_id = next(iter(world.guilds))

        async def page() -> int:
            async with rest_client(token="any", api_base=server.api_base, shared_limits=False) as client:
                guild = await client.fetch_guild(guild_id)
                return len([m async for m in guild.fetch_members(limit=None)])

        started = time.monotonic()
        assert asyncio.run(page()) == 20_501
        assert world.counters.rate_limited == 0
        assert time.monotonic() - started >= 2.0  # it really waited for two resets


def test_5xx_faults_are_injected_and_cleared_through_the_control_api(emulator):
    status, _, faults = http("PUT", f"{emulator.url}/_emulator/faults", {"error_rate": 1.0, "error_status": 503})
    assert status == 200 and faults["error_rate"] == 1.0
    assert http("GET", f"{emulator.api_base}/users/@me")[0] == 503
    http("DELETE", f"{emulator.url}/_emulator/faults")
    assert http("GET", f"{emulator.api_base}/users/@me")[0] == 200
    assert emulator.world.counters.server_errors == 1


def test_a_429_storm_is_survived_by_discord_py(emulator):
    http("PUT", f"{emulator.url}/_emulator/faults", {"storm_seconds": 0.5, "storm_retry_after": 0.2})
    guild = first_guild(emulator)

    async def fetch() -> str:
        async with rest_client(token="any", api_base=emulator.api_base, shared_limits=False) as client:
            return (await client.fetch_guild(guild.id)).name

    assert asyncio.run(fetch()) == guild.name
    assert emulator.world.counters.rate_limited >= 1


@pytest.mark.parametrize("bad", [{"error_rate": 2}, {"storm_scope": "everyone"}, {"nonsense": 1}])
def test_bad_fault_settings_are_refused_clearly(emulator, bad):
    status, _, body = http("PUT", f"{emulator.url}/_emulator/faults", bad)
    assert status == 400 and body["error"]
