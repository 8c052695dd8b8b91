"""The sync's write path: skip members whose data did not change, write the rest exactly."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from django.utils import timezone

from guildhub.discord.guilds import MemberData
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
