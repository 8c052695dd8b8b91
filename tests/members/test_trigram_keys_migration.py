"""Migration 0021 on a cache that already holds members: the trigram index is rebuilt over them, both ways."""

import pytest
from django.core.management import call_command
from django.db import connection

from guildhub.discord.guilds import member_from_json
from guildhub.emulator import generator
from members import services
from members.models import Guild
from members.selectors import search_cache

pytestmark = pytest.mark.postgres_only

GUILDS = (900000000000000091, 900000000000000092)


def index_expression() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_indexdef('member_trigrams_gin'::regclass)")
        return cursor.fetchone()[0]


def old_matches(guild_id: int, needle: str) -> set[int]:
    """What 0020's fetch function finds: shared keys, the needle's pieces as they are."""
    pieces = sorted({needle[i : i + 3] for i in range(len(needle) - 2)})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT user_id FROM member_text_matches(%s, NULL, %s::text[], %s, '{}'::bigint[], NULL)",
            [guild_id, pieces, needle],
        )
        return {user_id for (user_id,) in cursor.fetchall()}


def test_0021_rebuilds_the_trigram_index_over_the_cached_members_and_back(transactional_db):
    for guild_id in GUILDS:
        Guild.objects.create(id=guild_id, name=f"Cached {guild_id}")
        members = [generator.generated_member(i, 42, guild_id, []) for i in range(300)]
        services.upsert_members(guild_id, [member_from_json(m) for m in members])
    guild = Guild.objects.get(id=GUILDS[0])
    name = "\x1f" + guild.members.order_by("user_id").first().search_text.split("\x1f")[1]
    expected = set(guild.members.filter(search_text__contains=name).values_list("user_id", flat=True))
    present, departed = search_cache(guild, name[1:])
    assert expected and {hit.user_id for hit in present + departed} >= expected
    assert "member_guild_trigrams(guild_id, search_text)" in index_expression()
    try:
        call_command("migrate", "members", "0020", verbosity=0)
        assert "member_trigrams(search_text)" in index_expression()
        assert old_matches(guild.id, name) == expected  # the old function and index, over the same members
    finally:
        call_command("migrate", "members", verbosity=0)
    assert "member_guild_trigrams(guild_id, search_text)" in index_expression()
    present, departed = search_cache(guild, name[1:])
    assert {hit.user_id for hit in present + departed} >= expected
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_proc WHERE proname = 'member_trigrams'")
        assert cursor.fetchone()[0] == 0  # 0021 drops the shared keys' function: nothing reads it
