"""The member sync people write by hand today: the benchmark's baseline.

Pages of 100 members through discord.py's HTTP client, a fixed 500 ms pause
between pages to "stay under the rate limit", and one `update_or_create` per
member. It is what GuildHub replaces; bench/member_sync.py runs it next to
GuildHub's engines on the same guild, the same emulator and the same database.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from asgiref.sync import sync_to_async
from django.utils import timezone

from guildhub.discord.clients import rest_client
from members.models import Member

PAGE_SIZE = 100
PAUSE_SECONDS = 0.5


def save_page(guild_id: int, page: list[dict]) -> None:
    """One `update_or_create` (a transaction of its own) per member, every field rewritten."""
    now = timezone.now()
    for data in page:
        user = data["user"]
        nick, global_name = data.get("nick"), user.get("global_name")
        Member.objects.update_or_create(
            guild_id=guild_id,
            user_id=int(user["id"]),
            defaults={
                "username": user["username"],
                "global_name": global_name,
                "nick": nick,
                "display_name": nick or global_name or user["username"],
                "is_bot": user.get("bot", False),
                "avatar": data.get("avatar") or user.get("avatar"),
                "role_ids": data.get("roles", []),
                "joined_at": datetime.fromisoformat(data["joined_at"]) if data.get("joined_at") else None,
                "last_seen_at": now,
                "departed_at": None,
                "updated_at": now,
            },
        )


async def handwritten_sync(guild_id: int) -> int:
    """Copy every member of the guild into the cache, the hand-written way; returns the member count."""
    count = 0
    after = None
    # Plain discord.py: no GuildHub rate-limit layer, only discord.py's own limiter.
    async with rest_client(shared_limits=False) as client:
        while True:
            page = await client.http.get_members(guild_id, PAGE_SIZE, after)
            await sync_to_async(save_page)(guild_id, page)
            count += len(page)
            if len(page) < PAGE_SIZE:
                return count
            after = int(page[-1]["user"]["id"])
            await asyncio.sleep(PAUSE_SECONDS)
