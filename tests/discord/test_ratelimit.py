"""The rate-limit budget every process using one bot token shares."""

import asyncio
import threading
import time
from dataclasses import replace

import pytest
from django.db import connections

from guildhub.discord.clients import rest_client, run_async
from guildhub.discord.ratelimit import DatabaseStore, RedisStore, SharedRateLimiter, bucket_key
from guildhub.emulator.ratelimits import PROFILES
from guildhub.emulator.server import EmulatorServer
from guildhub.emulator.state import GuildSpec, World

pytestmark = pytest.mark.django_db(transaction=True)


def test_bucket_keys_keep_the_major_parameter_and_fold_the_others():
    assert bucket_key("GET", "/api/v10/guilds/123456789012345678/members") == "GET guilds/123456789012345678/members"
    assert (
        bucket_key("PUT", "/api/v10/guilds/123456789012345678/members/223456789012345678/roles/323456789012345678")
        == "PUT guilds/123456789012345678/members/{id}/roles/{id}"
    )
    assert bucket_key("GET", "/api/v10/channels/423456789012345678/messages") == (
        "GET channels/423456789012345678/messages"
    )


@pytest.fixture(params=["database", "redis"])
def store(request):
    if request.param == "database":
        return DatabaseStore()
    redis_store = RedisStore(request.getfixturevalue("redis_url"))
    redis_store.redis.flushdb()
    return redis_store


def test_a_sliding_window_gives_out_its_limit_then_says_how_long_to_wait(store):
    now = time.time()
    assert [store.take("k", 3, 1.0, now) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = store.take("k", 3, 1.0, now + 0.25)
    assert 0 < wait <= 0.75 + 1e-9
    # Sliding, not fixed: the three slots free up one second after each was taken.
    assert store.take("k", 3, 1.0, now + 1.0 + 1e-6) == 0.0
    assert store.take("k", 3, 1.0, now + 1.0 + 2e-6) == 0.0
    assert store.take("k", 3, 1.0, now + 1.0 + 3e-6) == 0.0
    assert store.take("k", 3, 1.0, now + 1.5) > 0


def test_a_block_seen_by_one_process_holds_every_other(store):
    now = time.time()
    store.block("bucket", now + 20)
    assert store.blocked_for("bucket", now + 19) == pytest.approx(1.0)
    assert store.blocked_for("bucket", now + 21) == 0.0
    store.block("bucket", now + 5)  # an earlier block never shortens a later one
    assert store.blocked_for("bucket", now + 19) == pytest.approx(1.0)


def test_headers_with_nothing_remaining_block_the_bucket_for_every_limiter():
    first, second = SharedRateLimiter("token"), SharedRateLimiter("token")
    path = "/api/v10/guilds/123456789012345678/members"
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "1.0"}
    asyncio.run(first.observe("GET", path, 200, headers))
    waited = asyncio.run(second.acquire("GET", path))
    assert waited >= 0.5  # most of the second, whatever a busy machine took in between
    other_guild = asyncio.run(second.acquire("GET", "/api/v10/guilds/999999999999999999/members"))
    assert other_guild < 0.1


def test_several_clients_sharing_a_token_stay_under_the_global_limit(settings):
    """Three clients in three threads, each fast enough alone to break Discord's global limit.

    The shared budget sits well under the emulator's limit, as in production (45 of
    Discord's 50): time passes between taking a slot and the request arriving, more
    so here where the clients share one process (and its GIL) with the emulator.
    """
    settings.DISCORD_GLOBAL_RATE_LIMIT = 4
    world = World(guilds=[GuildSpec(members=10, channels=3, messages=10)])
    profile = replace(PROFILES["off"], global_per_second=10)
    with EmulatorServer(world, profile=profile) as server:
        guild_id = next(iter(world.guilds))
        errors = []

        def hammer() -> None:
            async def go() -> None:
                async with rest_client(token="shared-token", api_base=server.api_base) as client:
                    for _ in range(8):
                        await client.http.get_guild(guild_id)

            try:
                run_async(go())
            except Exception as exc:  # reported below
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=hammer) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors
        assert world.counters.requests["GET /api/v10/guilds/{guild_id}"] == 24
        assert world.counters.global_rate_limited == 0
