"""Writes to the member cache: batched upserts, roles, departures, guilds."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import orjson
from django.db import connection, transaction
from django.utils import timezone

from guildhub.discord.guilds import GuildInfo, MemberData, RoleData, member_digest, member_from_json
from members import pending_lists
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


def member_fingerprint(member: MemberData) -> int:
    """A stable 64-bit digest of the member's synced data, stored with the row.

    A re-sync compares it to skip members whose data did not change before building
    or sending any SQL for them. Members read from Discord carry the digest of the
    object they came from (member_digest), which a re-sync computes without parsing;
    members built by hand get one of their fields. Stable across processes, unlike hash().
    """
    if member.digest is not None:
        return member.digest
    data = orjson.dumps(
        (
            member.username,
            member.global_name,
            member.nick,
            member.display_name,
            member.is_bot,
            member.avatar,
            member.role_ids,
            member.joined_at,
        )
    )
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


@dataclass(slots=True)  # not frozen, for the same reason as MemberData: a sync builds one per member
class PreparedMember:
    """A member with its fingerprint and, once built, its row as the database's JSON wants it."""

    member: MemberData
    fingerprint: int
    row: tuple | None = None

    @property
    def user_id(self) -> int:
        return self.member.user_id


def prepare_members(
    members: Iterable[MemberData], vendor: str | None = None, *, rows: bool = True
) -> list[PreparedMember]:
    """Fingerprints and (with `rows`) folded names and row values, one per user (the last wins).

    Pure Python and free of the database, so an engine can run it where the data
    arrives (the gateway's socket reader) while its database thread writes the
    previous batch. Without `rows`, only the fingerprint: for a re-sync, where
    the write skips most members and builds the few rows it needs itself.
    """
    sqlite = (vendor or connection.vendor) == "sqlite"
    prepared = {}
    for m in members:
        fingerprint = member_fingerprint(m)
        prepared[m.user_id] = PreparedMember(m, fingerprint, _row(m, fingerprint, sqlite) if rows else None)
    return list(prepared.values())


def _row(m: MemberData, fingerprint: int, sqlite: bool) -> tuple:
    search_text, sort_key = search_fields(m.username, m.global_name, m.nick, m.display_name)
    return (
        m.user_id,
        m.username,
        m.global_name,
        m.nick,
        m.display_name,
        m.is_bot,
        m.avatar,
        # SQLite's column holds JSON text and its datetimes are UTC text without an offset.
        orjson.dumps(m.role_ids).decode() if sqlite else m.role_ids,
        _sqlite_datetime(m.joined_at) if sqlite else m.joined_at,
        search_text,
        sort_key,
        fingerprint,
    )


@dataclass(frozen=True, slots=True)
class WriteResult:
    created: int
    updated: int
    unchanged: int

    def __add__(self, other: WriteResult) -> WriteResult:
        return WriteResult(self.created + other.created, self.updated + other.updated, self.unchanged + other.unchanged)

    @property
    def mostly_written(self) -> bool:
        """More than half the members were new or changed: a first sync, not a re-sync.

        The engines build the next rows up front (prepare_members(rows=True)) only then:
        a re-sync writes nearly nobody, and write_prepared builds the few rows it needs.
        """
        return (self.created + self.updated) * 2 > self.created + self.updated + self.unchanged


def write_members(guild_id: int, members: Sequence[MemberData], *, now: datetime | None = None) -> WriteResult:
    """What a sync calls for each page or chunk: skip unchanged members, upsert the rest."""
    return write_prepared(guild_id, prepare_members(members), now=now)


def write_prepared(guild_id: int, members: Sequence[PreparedMember], *, now: datetime | None = None) -> WriteResult:
    """Upsert the members that are new, changed or returning; skip the others.

    One indexed read of the stored fingerprints decides; a present member whose
    fingerprint matches costs no SQL beyond that read. The upsert still compares the
    data itself, so a stale fingerprint can cost a write but never lose one.
    """
    if not members:
        return WriteResult(0, 0, 0)
    stored = stored_fingerprints(guild_id, [m.user_id for m in members])
    # A departed member seen again is rejoining: rewritten whatever its data.
    changed = [m for m in members if stored.get(m.user_id) != (m.fingerprint, True)]
    return _write_changed(guild_id, changed, stored, len(members), now)


def write_from_json(guild_id: int, members: Sequence[dict], *, now: datetime | None = None) -> WriteResult:
    """write_prepared for Discord's member objects as they arrived: parse only the new and changed.

    For a re-sync, where nearly every member is unchanged: their digests (member_digest)
    settle it at a fifth of the cost of parsing them. One per user, the last wins.
    """
    if not members:
        return WriteResult(0, 0, 0)
    latest = {int(data["user"]["id"]): data for data in members}
    stored = stored_fingerprints(guild_id, list(latest))
    changed = []
    for user_id, data in latest.items():
        digest = member_digest(data)
        if digest is None or stored.get(user_id) != (digest, True):
            member = member_from_json(data)
            changed.append(PreparedMember(member, member_fingerprint(member)))
    return _write_changed(guild_id, changed, stored, len(latest), now)


def _write_changed(
    guild_id: int, changed: list[PreparedMember], stored: dict, total: int, now: datetime | None
) -> WriteResult:
    if any(m.row is None for m in changed):
        sqlite = connection.vendor == "sqlite"
        changed = [m if m.row is not None else replace(m, row=_row(m.member, m.fingerprint, sqlite)) for m in changed]
    written = _upsert_counting(guild_id, changed, now or timezone.now())
    # The ones the cache did not hold were inserted (unless someone else inserted one meanwhile).
    created = min(written, sum(1 for m in changed if m.user_id not in stored))
    return WriteResult(created=created, updated=written - created, unchanged=total - len(changed))


def prepare_sync_connection() -> None:
    """Set up the database connection a sync writes through (its own thread's, closed when it ends).

    SQLite: no memory map. settings.py maps the file for the search's scattered reads; a
    sync's writes gain nothing from it (38-40 CPU s for a million members either way), and
    every page the map touched would count as the sync's own memory (1M members: 700 MB).
    PostgreSQL: the search indexes gather more before merging (pending_lists.prepare_bulk_writes).
    """
    pending_lists.prepare_bulk_writes(connection)
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA mmap_size = 0")


def finish_sync_connection() -> None:
    """Before a sync's own connection closes: merge the search index entries its writes left pending."""
    pending_lists.merge_pending_entries(connection)


def stored_fingerprints(guild_id: int, user_ids: Sequence[int]) -> dict[int, tuple[int | None, bool]]:
    """{user id: (fingerprint, present)} for those of `user_ids` the cache holds."""
    table = connection.ops.quote_name(Member._meta.db_table)
    if connection.vendor == "postgresql":
        # One probe of the (guild, user) unique index per id, whatever the statistics say. Before
        # ANALYZE has seen a big guild arrive (a first sync, until autovacuum gets to it) they make
        # the guild look tiny, or empty when they saw only other guilds. With `user_id = ANY(...)`
        # PostgreSQL then read every member of the guild for each chunk, filtering on user_id (a
        # 1M-member sync spent 40 of its server's CPU seconds there); and with the guild's id as a
        # constant, every index starting with guild_id looks as good for an empty guild, so it took
        # the smallest, (guild, departed_at), and filtered too: beside a cached 1M-member guild, a
        # first sync wrote 100k members in nine minutes. LIMIT 1 keeps the subquery a probe (pulled
        # up into a join, it would be planned from the same statistics), and the id behind a
        # sub-select is planned as any guild's, so only the unique index finds one row.
        sql = (
            "SELECT m.user_id, m.fingerprint, m.departed_at IS NULL FROM unnest(%s::bigint[]) AS wanted(user_id) "
            f"CROSS JOIN LATERAL (SELECT user_id, fingerprint, departed_at FROM {table} "
            "WHERE guild_id = (SELECT %s::bigint) AND user_id = wanted.user_id LIMIT 1) AS m"
        )
        # The ids as one array literal: psycopg's list adapter takes about 0.7 ms of Python per 1000.
        params: list = ["{" + ",".join(map(str, user_ids)) + "}", guild_id]
    else:
        # One parameter, not a thousand: the statement stays short and cached.
        sql = (
            f"SELECT user_id, fingerprint, departed_at IS NULL FROM {table} "
            "WHERE guild_id = %s AND user_id IN (SELECT value FROM json_each(%s))"
        )
        params = [guild_id, orjson.dumps(list(user_ids)).decode()]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {user_id: (fingerprint, bool(present)) for user_id, fingerprint, present in cursor.fetchall()}


def upsert_members(guild_id: int, members: Sequence[MemberData], *, now: datetime | None = None) -> set[int]:
    """Insert new members and rewrite changed ones in one statement; return the user ids written."""
    return _upsert(guild_id, prepare_members(members), now or timezone.now())


def _upsert(guild_id: int, rows: Sequence[PreparedMember], now: datetime) -> set[int]:
    """One `INSERT … ON CONFLICT DO UPDATE … WHERE <data differs>` for members unique by user id.

    Raw SQL because the ORM cannot say "update only when the data differs"
    (`ON CONFLICT … DO UPDATE … WHERE … IS DISTINCT FROM`): unchanged rows are
    not touched at all, so a re-sync of a quiet guild writes almost nothing.
    Returns the user ids written.
    """
    if not rows:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(*_upsert_statement(guild_id, rows, now, returning=True))
        return {user_id for (user_id,) in cursor.fetchall()}


def _upsert_counting(guild_id: int, rows: Sequence[PreparedMember], now: datetime) -> int:
    """_upsert for a sync's pages: how many rows it wrote, not which.

    Python's sqlite3 hands RETURNING rows over one sqlite3_step at a time, giving
    up the GIL and taking it back for each; in a sync the socket reader holds the
    GIL in between. py-spy put 10 s of the database thread's 57 s of a 1M-member
    gateway sync in that fetch. Without RETURNING the statement runs in one step.
    """
    if not rows:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(*_upsert_statement(guild_id, rows, now, returning=False))
        return cursor.rowcount


def _upsert_statement(guild_id: int, rows: Sequence[PreparedMember], now: datetime, *, returning: bool) -> tuple:
    table = connection.ops.quote_name(Member._meta.db_table)
    postgres = connection.vendor == "postgresql"
    columns = [
        "guild_id",
        "user_id",
        *DATA_COLUMNS,
        "search_text",
        "sort_key",
        "fingerprint",
        "first_seen_at",
        "last_seen_at",
        "departed_at",
        "updated_at",
    ]
    if postgres:
        values, params = _rows_from_json(guild_id, rows, now)
    else:
        values, params = _rows_from_json_sqlite(guild_id, rows, now)
    differs = "IS DISTINCT FROM" if postgres else "IS NOT"
    changed = " OR ".join(f"{table}.{c} {differs} excluded.{c}" for c in (*DATA_COLUMNS, "fingerprint"))
    assignments = ", ".join(f"{c} = excluded.{c}" for c in (*DATA_COLUMNS, "search_text", "sort_key", "fingerprint"))
    # Only constant column names and placeholders are interpolated; values go as parameters.
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}) {values} "
        f"ON CONFLICT (guild_id, user_id) DO UPDATE SET {assignments}, "
        "departed_at = NULL, last_seen_at = excluded.last_seen_at, updated_at = excluded.updated_at "
        f"WHERE {changed} OR {table}.departed_at IS NOT NULL"
    )
    return (f"{sql} RETURNING user_id" if returning else sql), params


# The rows as one JSON document of arrays (PreparedMember.row), unpacked by json_each.
# Binding sixteen thousand parameters (and Django rewriting a 100 KB statement's
# placeholders) cost more Python time than the rows themselves. `WHERE true` settles SQLite's parse of
# INSERT … SELECT … ON CONFLICT, which is otherwise ambiguous.
SQLITE_JSON_ROWS = (
    "SELECT %s, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, "
    "value ->> 7, value ->> 8, value ->> 9, value ->> 10, value ->> 11, %s, %s, NULL, %s FROM json_each(%s) WHERE true"
)


def _rows_from_json_sqlite(guild_id: int, rows: Sequence[PreparedMember], now: datetime) -> tuple[str, list]:
    """`SELECT … FROM json_each(%s)`: five parameters whatever the number of members (SQLite)."""
    stamp = _sqlite_datetime(now)
    document = orjson.dumps([m.row for m in rows]).decode()
    return SQLITE_JSON_ROWS, [guild_id, stamp, stamp, stamp, document]


def _sqlite_datetime(value: datetime | None) -> str | None:
    """What Django's SQLite backend stores for an aware datetime (UTC, no offset), without its
    per-value settings look-ups: a page has a thousand of them."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return str(value)


# The same on PostgreSQL, unpacked by jsonb_array_elements. psycopg parses a query for
# its placeholders in Python on every execute (a query this long is not cached), so
# 16,000 placeholders cost more than the upsert itself; one does not.
JSON_ROWS = (
    "SELECT %s::bigint, (r ->> 0)::bigint, r ->> 1, r ->> 2, r ->> 3, r ->> 4, (r ->> 5)::boolean, r ->> 6, "
    "r -> 7, (r ->> 8)::timestamptz, r ->> 9, r ->> 10, (r ->> 11)::bigint, %s::timestamptz, %s::timestamptz, "
    "NULL::timestamptz, %s::timestamptz "
    "FROM jsonb_array_elements(%s::jsonb) AS r"
)


def _rows_from_json(guild_id: int, rows: Sequence[PreparedMember], now: datetime) -> tuple[str, list]:
    """`SELECT … FROM jsonb_array_elements(%s)`: five parameters whatever the number of members (PostgreSQL)."""
    return JSON_ROWS, [guild_id, now, now, now, orjson.dumps([m.row for m in rows]).decode()]


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
