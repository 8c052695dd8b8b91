"""SQLite's FTS5 index keeps each guild's members in a rowid range of their own (migration 0022)."""

import pytest
from django.core.management import call_command
from django.db import connection

from guildhub.discord.guilds import member_from_json
from guildhub.emulator import generator
from members import selectors, services
from members.models import Guild, Member
from members.selectors import search_cache
from tests.members.test_search import reference_search


@pytest.fixture(autouse=True)
def _sqlite_only(db):
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's FTS5 index: PostgreSQL keys its trigrams by guild instead (0021)")


def generated_guild(guild_id: int, count: int = 400) -> Guild:
    guild = Guild.objects.create(id=guild_id, name=f"Generated {guild_id}")
    members = [generator.generated_member(i, 42, guild_id, []) for i in range(count)]
    services.upsert_members(guild.id, [member_from_json(m) for m in members])
    return guild


def fts_ids(guild: Guild, needle: str) -> set[int]:
    sql, params = selectors._fts_ids(guild.id, needle)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {member_id for (member_id,) in cursor.fetchall()}


@pytest.mark.parametrize("guild_id", [1, 4194303, 4194304, 900000000000000001, 2**63 - 1, -5])
def test_a_members_rowid_is_its_guilds_range_plus_its_id_in_sql_and_python(guild_id):
    guild = Guild.objects.create(id=guild_id, name="Edge")
    member = Member.objects.create(guild=guild, user_id=1, username="rowidprobe", display_name="rowidprobe")
    with connection.cursor() as cursor:
        cursor.execute("SELECT rowid FROM members_member_fts WHERE members_member_fts MATCH '\"rowidprobe\"'")
        (rowid,) = cursor.fetchone()
    first, last = selectors.fts_rowid_range(guild_id)
    assert rowid == first + member.id and first <= rowid <= last


def test_a_guilds_read_gives_only_its_own_members_though_another_holds_the_same_names():
    guild, other = generated_guild(900000000000000001), generated_guild(900000000000000002)
    for needle in ("ale", "the", "ragon", "\x1fthe"):
        own = set(Member.objects.filter(guild=guild, search_text__contains=needle).values_list("id", flat=True))
        assert own and fts_ids(guild, needle) == own, needle
        assert fts_ids(other, needle).isdisjoint(own)
        assert selectors._sqlite_count_matches(guild.id, needle, 10**6) == len(own)


def test_renames_and_removals_move_a_member_within_its_guilds_range():
    guild = generated_guild(900000000000000001, 20)
    member = Member.objects.filter(guild=guild).order_by("id").first()
    old_username = "\x1f" + member.search_text.split("\x1f")[1] + "\x1f"
    assert member.id in fts_ids(guild, old_username)
    member.username = "zebracornbadger"
    member.save()
    assert fts_ids(guild, "zebracorn") == {member.id}
    assert member.id not in fts_ids(guild, old_username)
    member.delete()
    assert fts_ids(guild, "zebracorn") == set()


def test_guilds_sharing_a_range_still_search_only_their_own_members():
    """Ids equal in their low 22 bits share a range: each search drops the other guild's rows."""
    guild = generated_guild(900000000000000001)
    twin = generated_guild(900000000000000001 + 2**22)
    assert selectors.fts_rowid_range(guild.id) == selectors.fts_rowid_range(twin.id)
    rows = list(Member.objects.filter(guild=guild))
    for query in ("the", "ale", "ragon", "zzqx"):
        present, departed = search_cache(guild, query)
        assert [hit.user_id for hit in present + departed] == reference_search(rows, query), query


def test_0022_rebuilds_the_index_over_the_cached_members_and_back(transactional_db):
    guild = generated_guild(900000000000000001, 300)
    generated_guild(900000000000000002, 300)
    rows = list(Member.objects.filter(guild=guild))
    expected = reference_search(rows, "ale")
    try:
        call_command("migrate", "members", "0021", verbosity=0)
        with connection.cursor() as cursor:  # 0003's index again: the members' own ids, every guild's
            cursor.execute("SELECT count(*) FROM members_member_fts WHERE members_member_fts MATCH '\"ale\"'")
            assert cursor.fetchone()[0] == Member.objects.filter(search_text__contains="ale").count()
    finally:
        call_command("migrate", "members", verbosity=0)
    present, departed = search_cache(guild, "ale")
    assert [hit.user_id for hit in present + departed] == expected
