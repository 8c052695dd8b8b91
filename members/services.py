"""Writes to the member cache: batched upserts, roles, departures, guilds."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from guildhub.discord.guilds import GuildInfo, MemberData, RoleData
from members.models import Guild, Member, Role
from members.search_text import search_fields

# The columns a sync compares: a row is rewritten only when one of them differs.
DATA_COLUMNS = ("username", "global_name", "nick", "display_name", "is_bot", "avatar", "role_ids", "joined_at")


def upsert_guild(info: GuildInfo) -> Guild:
    guild, _ = Guild.objects.update_or_create(
        id=info.id,
        defaults={
            "name": info.name,
            "icon": info.icon,
            "approximate_member_count": info.approximate_member_count,
            "is_active": True,
        },
    )
    return guild


def upsert_roles(guild: Guild, roles: Sequence[RoleData], *, now: datetime | None = None) -> None:
    """Mirror the guild's roles; roles gone from Discord are marked deleted."""
    now = now or timezone.now()
    with transaction.atomic():
        Role.objects.bulk_create(
            [
                Role(
                    guild=guild,
                    role_id=r.id,
                    name=r.name,
                    position=r.position,
                    colour=r.colour,
                    managed=r.managed,
                    deleted_at=None,
                )
                for r in roles
            ],
            update_conflicts=True,
            unique_fields=["guild", "role_id"],
            update_fields=["name", "position", "colour", "managed", "deleted_at"],
        )
        Role.objects.filter(guild=guild, deleted_at__isnull=True).exclude(role_id__in=[r.id for r in roles]).update(
            deleted_at=now
        )


def upsert_members(guild_id: int, members: Sequence[MemberData], *, now: datetime | None = None) -> set[int]:
    """Insert new members and rewrite changed ones in one statement; return the user ids written.

    Raw SQL because the ORM cannot say "update only when the data differs"
    (`ON CONFLICT … DO UPDATE … WHERE … IS DISTINCT FROM`): unchanged rows are
    not touched at all, so a re-sync of a quiet guild writes almost nothing.
    """
    if not members:
        return set()
    # One row per user: ON CONFLICT cannot touch a row twice in one statement.
    members = list({m.user_id: m for m in members}.values())
    now = now or timezone.now()
    table = connection.ops.quote_name(Member._meta.db_table)
    postgres = connection.vendor == "postgresql"
    columns = [
        "guild_id",
        "user_id",
        *DATA_COLUMNS,
        "search_text",
        "sort_key",
        "first_seen_at",
        "last_seen_at",
        "departed_at",
        "updated_at",
    ]
    if postgres:
        rows, params = _rows_from_json(guild_id, members, now)
    else:
        rows, params = _rows_as_values(guild_id, members, now, len(columns))
    differs = "IS DISTINCT FROM" if postgres else "IS NOT"
    changed = " OR ".join(f"{table}.{c} {differs} excluded.{c}" for c in DATA_COLUMNS)
    assignments = ", ".join(f"{c} = excluded.{c}" for c in (*DATA_COLUMNS, "search_text", "sort_key"))
    # Only constant column names and placeholders are interpolated; values go as parameters.
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) {rows} "
        f"ON CONFLICT (guild_id, user_id) DO UPDATE SET {assignments}, "
        "departed_at = NULL, last_seen_at = excluded.last_seen_at, updated_at = excluded.updated_at "
        f"WHERE {changed} OR {table}.departed_at IS NOT NULL "
        "RETURNING user_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {user_id for (user_id,) in cursor.fetchall()}


def _rows_as_values(guild_id: int, members: Sequence[MemberData], now: datetime, width: int) -> tuple[str, list]:
    """`VALUES (…), (…)`: one placeholder per value (SQLite)."""
    ops = connection.ops
    stamp = ops.adapt_datetimefield_value(now)
    params: list = []
    for m in members:
        params += [
            guild_id,
            m.user_id,
            m.username,
            m.global_name,
            m.nick,
            m.display_name,
            m.is_bot,
            m.avatar,
            json.dumps(list(m.role_ids)),
            ops.adapt_datetimefield_value(m.joined_at),
            *search_fields(m.username, m.global_name, m.nick, m.display_name),
            stamp,
            stamp,
            None,
            stamp,
        ]
    row = "(" + ", ".join(["%s"] * width) + ")"
    return "VALUES " + ", ".join([row] * len(members)), params


# The members as one JSON document that PostgreSQL unpacks into rows. psycopg parses
# a query for its placeholders in Python on every execute (a query this long is not
# cached), so 16,000 placeholders cost more than the upsert itself; one does not.
JSON_ROWS = (
    "SELECT %s::bigint, r.user_id, r.username, r.global_name, r.nick, r.display_name, r.is_bot, r.avatar, "
    "r.role_ids, r.joined_at, r.search_text, r.sort_key, %s::timestamptz, %s::timestamptz, NULL::timestamptz, "
    "%s::timestamptz "
    "FROM jsonb_to_recordset(%s::jsonb) AS r(user_id bigint, username text, global_name text, nick text, "
    "display_name text, is_bot boolean, avatar text, role_ids jsonb, joined_at timestamptz, search_text text, "
    "sort_key text)"
)


def _rows_from_json(guild_id: int, members: Sequence[MemberData], now: datetime) -> tuple[str, list]:
    """`SELECT … FROM jsonb_to_recordset(%s)`: five parameters whatever the number of members (PostgreSQL)."""
    rows = []
    for m in members:
        search_text, sort_key = search_fields(m.username, m.global_name, m.nick, m.display_name)
        rows.append(
            {
                "user_id": m.user_id,
                "username": m.username,
                "global_name": m.global_name,
                "nick": m.nick,
                "display_name": m.display_name,
                "is_bot": m.is_bot,
                "avatar": m.avatar,
                "role_ids": list(m.role_ids),
                "joined_at": m.joined_at.isoformat() if m.joined_at else None,
                "search_text": search_text,
                "sort_key": sort_key,
            }
        )
    return JSON_ROWS, [guild_id, now, now, now, json.dumps(rows)]


def existing_user_ids(guild_id: int, user_ids: Iterable[int]) -> set[int]:
    return set(Member.objects.filter(guild_id=guild_id, user_id__in=list(user_ids)).values_list("user_id", flat=True))


def present_user_ids_between(guild_id: int, low: int, high: int | None) -> set[int]:
    """Present members with low < user_id <= high (no upper bound when high is None)."""
    members = Member.objects.filter(guild_id=guild_id, user_id__gt=low, departed_at__isnull=True)
    if high is not None:
        members = members.filter(user_id__lte=high)
    return set(members.values_list("user_id", flat=True))


def mark_departed(guild_id: int, user_ids: Iterable[int], *, seen_before: datetime, now: datetime) -> int:
    """Mark members departed, unless something saw them after `seen_before` (a live join)."""
    ids = list(user_ids)
    departed = 0
    for start in range(0, len(ids), 500):
        departed += Member.objects.filter(
            guild_id=guild_id,
            user_id__in=ids[start : start + 500],
            departed_at__isnull=True,
            last_seen_at__lt=seen_before,
        ).update(departed_at=now, updated_at=now)
    return departed


def apply_member_event(guild_id: int, member: MemberData, *, now: datetime | None = None) -> bool:
    """A live join or update from the gateway; returns whether the row changed."""
    if not Guild.objects.filter(id=guild_id).exists():
        return False
    return bool(upsert_members(guild_id, [member], now=now))


def apply_member_removal(guild_id: int, user_id: int, *, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return bool(
        Member.objects.filter(guild_id=guild_id, user_id=user_id, departed_at__isnull=True).update(
            departed_at=now, updated_at=now, last_seen_at=now
        )
    )


def deactivate_guild(guild_id: int) -> None:
    """The bot left the guild: keep its cache for history, stop syncing it."""
    Guild.objects.filter(pk=guild_id).update(is_active=False)
