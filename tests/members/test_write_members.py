"""The sync's write path: skip members whose data did not change, write the rest exactly."""

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from guildhub.discord.guilds import MemberData, member_digest, member_from_json
from members import services
from members.models import Guild, Member
from members.search_text import search_fields

pytestmark = pytest.mark.django_db

GUILD_ID = 444444444444444444


def member(n: int, **fields) -> MemberData:
    data = {
        "user_id": 700000000000000000 + n,
        "username": f"user{n}",
        "global_name": f"User {n}",
        "nick": None,
        "display_name": f"User {n}",
        "is_bot": False,
        "avatar": None,
        "role_ids": ("1", "2"),
        "joined_at": datetime(2024, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    }
    return MemberData(**{**data, **fields})


@pytest.fixture
def guild() -> Guild:
    return Guild.objects.create(id=GUILD_ID, name="writes")


def test_a_second_write_of_the_same_members_writes_nothing(guild):
    page = [member(n) for n in range(50)]
    assert services.write_members(guild.id, page) == services.WriteResult(created=50, updated=0, unchanged=0)
    before = dict(Member.objects.values_list("user_id", "updated_at"))

    again = services.write_members(guild.id, page)
    assert again == services.WriteResult(created=0, updated=0, unchanged=50)
    # What the engines go by to build rows up front (a first sync) or not (a re-sync).
    assert services.WriteResult(created=50, updated=0, unchanged=0).mostly_written and not again.mostly_written
    assert not (again + services.WriteResult(26, 24, 0)).mostly_written  # 50 of 100: not more than half
    assert (again + services.WriteResult(26, 25, 0)).mostly_written  # 51 of 101

    assert dict(Member.objects.values_list("user_id", "updated_at")) == before


def test_only_changed_members_are_rewritten_and_counted(guild):
    services.write_members(guild.id, [member(n) for n in range(10)])
    page = [member(n) for n in range(10)]
    page[3] = replace(page[3], nick="Nick", display_name="Nick")
    page[7] = replace(page[7], role_ids=("1",))
    page.append(member(10))

    result = services.write_members(guild.id, page)

    assert result == services.WriteResult(created=1, updated=2, unchanged=8)
    row = Member.objects.get(user_id=page[3].user_id)
    assert (row.nick, row.display_name, row.sort_key) == ("Nick", "Nick", "nick")
    assert Member.objects.get(user_id=page[7].user_id).role_ids == ["1"]


def test_a_departed_member_seen_again_is_present_again(guild):
    services.write_members(guild.id, [member(1)])
    Member.objects.update(departed_at=timezone.now())

    result = services.write_members(guild.id, [member(1)])

    assert result == services.WriteResult(created=0, updated=1, unchanged=0)
    assert Member.objects.get().departed_at is None


def test_a_row_changed_outside_a_sync_is_compared_by_its_data(guild):
    """save() forgets the fingerprint, so the sync's data wins even if it matches the old digest."""
    services.write_members(guild.id, [member(1)])
    row = Member.objects.get()
    row.nick = "edited by hand"
    row.save()
    assert row.fingerprint is None

    result = services.write_members(guild.id, [member(1)])

    assert result == services.WriteResult(created=0, updated=1, unchanged=0)
    row.refresh_from_db()
    assert row.nick is None and row.fingerprint == services.member_fingerprint(member(1))


def test_fingerprints_differ_for_every_field_and_between_null_and_empty():
    base = member(1)
    variants = [
        replace(base, username="other"),
        replace(base, global_name=None),
        replace(base, global_name=""),
        replace(base, nick="n"),
        replace(base, display_name="d"),
        replace(base, is_bot=True),
        replace(base, avatar="a_1"),
        replace(base, role_ids=()),
        replace(base, joined_at=None),
        replace(base, joined_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ]
    fingerprints = {services.member_fingerprint(m) for m in [base, *variants]}
    assert len(fingerprints) == len(variants) + 1
    assert services.member_fingerprint(base) == services.member_fingerprint(member(1))


HOSTILE = [
    "quote\" and 'single' \\ backslash",
    "unit\x1fseparator",
    "tab\tnew\nline\r",
    "emoji 🔥👍🏽 and ZWJ 👩‍💻",
    "<script>alert(1)</script>",
    "Zo\u00eb \uff26\uff55\uff4c\uff4c \u01c5 \u00df",  # accents, full-width, titlecase digraph, sharp s
    "\\u0041 not an escape",
    "%_ like wildcards",
]


def test_hostile_text_is_stored_exactly(guild):
    page = [
        member(n, username=text[:32], global_name=text, nick=text, display_name=text) for n, text in enumerate(HOSTILE)
    ]

    services.write_members(guild.id, page)

    rows = {m.user_id: m for m in Member.objects.all()}
    for want in page:
        row = rows[want.user_id]
        assert (row.username, row.global_name, row.nick, row.display_name) == (
            want.username,
            want.global_name,
            want.nick,
            want.display_name,
        )
        assert (row.search_text, row.sort_key) == search_fields(
            want.username, want.global_name, want.nick, want.display_name
        )
        assert row.role_ids == ["1", "2"] and row.joined_at == want.joined_at
    # Stored exactly means a re-sync sees nothing to do.
    assert services.write_members(guild.id, page).unchanged == len(HOSTILE)


def test_members_prepared_without_rows_are_written_like_the_others(guild):
    """A re-sync prepares fingerprints only; the write builds the rows it needs."""
    services.write_prepared(guild.id, services.prepare_members([member(n) for n in range(5)]))
    page = [member(n) for n in range(6)]
    page[2] = replace(page[2], nick="Changed", display_name="Changed")

    result = services.write_prepared(guild.id, services.prepare_members(page, rows=False))

    assert result == services.WriteResult(created=1, updated=1, unchanged=4)
    rows = {m.user_id: m for m in Member.objects.all()}
    assert (rows[page[2].user_id].nick, rows[page[2].user_id].sort_key) == ("Changed", "changed")
    assert rows[page[5].user_id].search_text == search_fields("user5", "User 5", None, "User 5")[0]
    assert rows[page[5].user_id].fingerprint == services.member_fingerprint(page[5])


def discord_member(n: int, **fields) -> dict:
    """Discord's guild member object, as a page or a gateway chunk sends it."""
    user = {"id": str(700000000000000000 + n), "username": f"user{n}", "global_name": f"User {n}", "avatar": None}
    data = {"user": user, "nick": None, "roles": ["1", "2"], "joined_at": "2024-01-02T03:04:05.678901+00:00"}
    for name, value in fields.items():
        (user if name in {"username", "global_name", "bot", "user_avatar"} else data)[name.removeprefix("user_")] = (
            value
        )
    return data


@pytest.mark.parametrize(
    "change",
    [
        {"username": "other"},
        {"global_name": None},
        {"nick": "n"},
        {"bot": True},
        {"avatar": "a_1"},
        {"user_avatar": "b2"},
        {"roles": ["1"]},
        {"joined_at": None},
    ],
)
def test_the_digest_of_discords_object_changes_with_every_field_a_member_is_read_from(change):
    base = discord_member(1)
    assert member_digest(base) == member_digest(discord_member(1))
    assert member_digest(discord_member(1, **change)) != member_digest(base)
    # Whatever member_from_json reads: two objects with one digest make the same member.
    assert member_from_json(discord_member(1, **change)) != member_from_json(base)


def test_raw_objects_are_parsed_only_when_new_or_changed_and_agree_with_parsed_writes(guild, monkeypatch):
    page = [discord_member(n) for n in range(20)]
    services.write_members(guild.id, [member_from_json(m) for m in page])
    parsed = []
    monkeypatch.setattr(services, "member_from_json", lambda data: parsed.append(data) or member_from_json(data))

    page[4] = discord_member(4, nick="Renamed")
    page.append(discord_member(20))
    result = services.write_from_json(guild.id, page)

    assert result == services.WriteResult(created=1, updated=1, unchanged=19)
    assert [m["user"]["id"] for m in parsed] == [page[4]["user"]["id"], page[20]["user"]["id"]]
    stored = {m.user_id: m for m in Member.objects.filter(guild=guild)}
    assert stored[700000000000000004].display_name == "Renamed"
    assert stored[700000000000000020].fingerprint == member_digest(page[20])
    # The parsed path stores the same digests: a later raw re-sync skips everyone.
    assert services.write_from_json(guild.id, page) == services.WriteResult(created=0, updated=0, unchanged=21)


def test_an_object_json_cannot_hold_again_is_compared_in_the_database_not_skipped(guild):
    odd = discord_member(1, bot=2**70)  # a stand-in's integer past 64 bits
    assert member_digest(odd) is None
    assert services.write_from_json(guild.id, [odd]).created == 1
    again = services.write_from_json(guild.id, [odd])
    assert (again.created, again.updated) == (0, 0)  # the database found the data equal
    assert Member.objects.get(guild=guild).is_bot


def test_stored_fingerprints_are_each_members_and_only_those_asked_for(guild):
    services.write_members(GUILD_ID, [member(n) for n in range(30)])
    Member.objects.filter(guild_id=GUILD_ID, user_id=member(3).user_id).update(departed_at=timezone.now())
    Guild.objects.create(id=GUILD_ID + 1, name="other")
    services.write_members(GUILD_ID + 1, [member(5)])

    asked = [member(n).user_id for n in (1, 3, 5, 29, 31)]  # 31 was never written
    stored = services.stored_fingerprints(GUILD_ID, asked)

    fingerprints = dict(Member.objects.filter(guild_id=GUILD_ID).values_list("user_id", "fingerprint"))
    assert stored == {
        member(1).user_id: (fingerprints[member(1).user_id], True),
        member(3).user_id: (fingerprints[member(3).user_id], False),
        member(5).user_id: (fingerprints[member(5).user_id], True),
        member(29).user_id: (fingerprints[member(29).user_id], True),
    }


@pytest.mark.postgres_only
def test_stored_fingerprints_probe_the_unique_index_before_analyze_has_seen_the_guild(guild):
    """A first sync writes thousands of a guild's members before autovacuum's ANALYZE counts them.

    Planned from statistics that make the guild look tiny, `user_id = ANY(...)` read every member
    of the guild for each chunk (a bitmap on guild_id, then a filter): a 1M-member gateway sync
    spent 40 of its server's CPU seconds there, more as the guild grew.
    """
    for start in range(0, 8000, 1000):
        services.write_members(GUILD_ID, [member(n) for n in range(start, start + 1000)])
    plan = fingerprint_read_plan(GUILD_ID, [member(n).user_id for n in range(4000, 5000)])
    assert "member_unique_per_guild" in plan and "Bitmap" not in plan and "Seq Scan on members_member" not in plan, plan


def test_stored_fingerprints_probe_the_unique_index_when_analyze_saw_only_other_guilds(guild):
    """A new guild arriving beside a big one: ANALYZE says every member belongs to the big one.

    Planned from that, the new guild looks empty, every index starting with guild_id looks
    as good, and PostgreSQL took the smallest, (guild, departed_at), filtering on user_id:
    each probe read every member of the new guild written so far. A 1M-member first sync
    beside a cached 1M-member guild wrote 100k members in nine minutes.
    """
    from django.db import connection

    for start in range(0, 8000, 1000):
        services.write_members(GUILD_ID, [member(n) for n in range(start, start + 1000)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE members_member")
    newcomer = Guild.objects.create(id=GUILD_ID + 1, name="newcomer")
    for start in range(100_000, 104_000, 1000):
        services.write_members(newcomer.id, [member(n) for n in range(start, start + 1000)])
    plan = fingerprint_read_plan(newcomer.id, [member(n).user_id for n in range(101_000, 102_000)])
    if connection.vendor == "postgresql":
        assert "member_unique_per_guild" in plan and "Filter: (user_id" not in plan, plan
    else:
        # The unique constraint is SQLite's own index of the table, named by SQLite.
        assert re.search(r"SEARCH members_member USING INDEX \S+ \(guild_id=\? AND user_id=\?\)", plan), plan


def fingerprint_read_plan(guild_id: int, asked: list[int]) -> str:
    """EXPLAIN of the one statement stored_fingerprints runs, after checking what it found."""
    from django.db import connection

    statements = []

    def keep(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        assert len(services.stored_fingerprints(guild_id, asked)) == len(asked)
    ((sql, params),) = statements
    explain = "EXPLAIN" if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN"
    with connection.cursor() as cursor:
        cursor.execute(f"{explain} {sql}", params)
        return "\n".join(str(row[-1]) for row in cursor.fetchall())
