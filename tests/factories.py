"""Plain functions that make model rows for tests, with defaults that can be overridden."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from django.utils import timezone

from members.models import Guild, Member
from members.search_text import search_fields
from syncjobs.models import SyncJob

_ids = itertools.count(1)

# Discord snowflakes are 17 to 20 digits; ids above 2**53 catch a JSON number losing digits.
SNOWFLAKE_BASE = 900_000_000_000_000_000


def snowflake() -> int:
    return SNOWFLAKE_BASE + next(_ids)


def make_guild(**fields: Any) -> Guild:
    fields.setdefault("id", snowflake())
    fields.setdefault("name", f"Guild {fields['id'] % 10_000}")
    return Guild.objects.create(**fields)


def make_members(guild: Guild, count: int, *, start: int = 1, **fields: Any) -> list[Member]:
    """`count` members in one bulk insert: user ids start+1…, usernames member<n>."""
    members = []
    for n in range(start, start + count):
        member = Member(
            guild=guild,
            user_id=SNOWFLAKE_BASE + n,
            username=f"member{n:05d}",
            global_name=f"Member {n}",
            display_name=f"Member {n}",
            **fields,
        )
        # bulk_create skips save(), which derives these as every real write does.
        member.search_text, member.sort_key = search_fields(
            member.username, member.global_name, member.nick, member.display_name
        )
        members.append(member)
    return Member.objects.bulk_create(members, batch_size=500)


def make_job(guild: Guild, **fields: Any) -> SyncJob:
    fields.setdefault("trigger", SyncJob.Trigger.SCHEDULE)
    return SyncJob.objects.create(guild=guild, **fields)


def finished_job(guild: Guild, status: str = SyncJob.Status.SUCCEEDED, seconds: float = 10, **fields: Any) -> SyncJob:
    """A run that ended now after running for `seconds`."""
    now = timezone.now()
    return make_job(guild, status=status, started_at=now - timedelta(seconds=seconds), finished_at=now, **fields)
