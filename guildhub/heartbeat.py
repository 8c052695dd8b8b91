"""The gateway bot's heartbeat: the bot writes it, /healthz reads it.

The bot calls `record_bot_heartbeat` (through `sync_to_async`) every few seconds
per shard; a heartbeat older than HEALTH_BOT_MAX_AGE means that shard is down.
Rows of shards that no longer exist (after resharding) should be deleted, by the
bot on start or in the admin, or they keep reporting the bot as stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from guildhub.models import BotHeartbeat


def record_bot_heartbeat(*, shard_id: int, latency_ms: int | None, guild_count: int, session: str = "") -> None:
    """Note that shard `shard_id` of the bot is alive now."""
    BotHeartbeat.objects.update_or_create(
        shard_id=shard_id,
        defaults={
            "seen_at": timezone.now(),
            "latency_ms": latency_ms,
            "guild_count": guild_count,
            "session": session[:100],
        },
    )


@dataclass(frozen=True)
class BotStatus:
    running: bool
    shards: int
    stale_shards: list[int]
    age_seconds: float | None  # of the oldest shard's heartbeat
    guild_count: int


def bot_status(now: datetime | None = None, max_age: timedelta | None = None) -> BotStatus:
    """Running means: some shard reported, and every shard within `max_age`."""
    now = now or timezone.now()
    max_age = max_age or timedelta(seconds=settings.HEALTH_BOT_MAX_AGE)
    beats = list(BotHeartbeat.objects.all())
    stale = [b.shard_id for b in beats if b.age(now) > max_age]
    return BotStatus(
        running=bool(beats) and not stale,
        shards=len(beats),
        stale_shards=stale,
        age_seconds=round(max(b.age(now) for b in beats).total_seconds(), 1) if beats else None,
        guild_count=sum(b.guild_count for b in beats),
    )


def forget_bot_shards_from(shard_count: int) -> None:
    """Drop heartbeats of shards the bot no longer runs (it was resharded), so they never look stale."""
    BotHeartbeat.objects.filter(shard_id__gte=shard_count).delete()
