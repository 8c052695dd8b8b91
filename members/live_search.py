"""Discord's own member search, for when the cache has no answer.

`GET /guilds/{id}/members/search` (a prefix match on username and nickname),
through the shared rate limiter, with a short deadline: a person is waiting.
What Discord finds is written into the cache, so the next search needs no call.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from django.conf import settings

from guildhub.discord.clients import rest_client, run_async
from guildhub.discord.errors import DiscordError
from guildhub.discord.guilds import GuildReader, MemberData
from guildhub.discord.retry import RetryPolicy
from members import services
from members.models import Guild

log = logging.getLogger(__name__)


class LiveSearchFailed(Exception):
    """Discord could not answer in time; the message is shown beside the cache's answer."""


def search_discord(guild: Guild, query: str, *, limit: int):
    """Members Discord finds for `query`, upserted into the cache, as MemberHits labelled "discord"."""
    from members.selectors import member_hit

    if not settings.DISCORD_TOKEN:
        raise LiveSearchFailed("Live Discord search is off: no bot token is configured.")

    async def search() -> list[MemberData]:
        async with rest_client() as client:
            reader = GuildReader(client, guild.id, policy=RetryPolicy(retries=0))
            return await reader.search(query, limit=limit)

    try:
        # The deadline covers logging in too: discord.py retries 5xx for many seconds on its own.
        found = run_async(asyncio.wait_for(search(), settings.LIVE_SEARCH_TIMEOUT))
    except (DiscordError, TimeoutError) as exc:
        log.warning("live member search in guild %s failed: %s", guild.id, exc)
        raise LiveSearchFailed("Discord's live search did not answer; showing what the cache knows.") from exc
    services.upsert_members(guild.id, found)
    hits = [member_hit(guild.id, m.user_id) for m in found]
    return [replace(hit, source="discord") for hit in hits if hit is not None]
