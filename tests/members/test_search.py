"""Member search: ranking, literal matching, short queries, the fallback chain, both databases alike."""

import random

import pytest
from django.utils import timezone

from guildhub.discord.guilds import MemberData
from members import services
from members.models import Guild, Member
from members.search_text import SEP, fold
from members.selectors import QueryTooLong, search_members
from tests.emulator.test_rest import http
from tests.members.picker_data import member_data

NAMES = [
    # (username, global name, nick)
    ("ana", "Ana Lopez", None),
    ("anabelle", None, "Belle"),
    ("banana_split", "Banana", None),
    ("zoe.w", "Zoë Weiß", None),
    ("percent", "100% real_name", None),
    ("under_score", "under_score", None),
    ("quoted", 'Say "hi"', "O'Brien"),
    ("back", "back\\slash", None),
    ("script", "<script>alert(1)</script>", None),
    ("rtl", "\u202eesrever", None),
    ("emoji", "Luna 🌙", "🔥 fire"),
    ("li", "李华", None),
]


def member(user_id: int, username: str, global_name: str | None, nick: str | None) -> MemberData:
    return member_data(user_id, username, global_name, nick, False)


@pytest.fixture
def guild(db):
    guild = Guild.objects.create(id=111111111111111111, name="Search Guild")
    services.upsert_members(guild.id, [member(200000000000000000 + i, *names) for i, names in enumerate(NAMES)])
    return guild


def names(result) -> list[str]:
    return [hit.username for hit in result.hits]


def test_exact_names_rank_before_prefixes_before_substrings(guild):
    assert names(search_members(guild, "ana", live_fallback=False)) == ["ana", "anabelle", "banana_split"]


def test_search_is_case_and_accent_insensitive_on_all_three_names(guild):
    assert names(search_members(guild, "ZOE WEISS", live_fallback=False)) == ["zoe.w"]
    assert names(search_members(guild, "belle", live_fallback=False)) == ["anabelle"]
    assert names(search_members(guild, "李华", live_fallback=False)) == ["li"]
    assert names(search_members(guild, "🔥 fi", live_fallback=False)) == ["emoji"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("100%", ["percent"]),
        ("0% r", ["percent"]),
        ("%", []),  # as a wildcard it would match everyone
        ("_", []),
        ("a_s", ["banana_split"]),
        ("r_s", ["under_score"]),
        ("o'b", ["quoted"]),
        ('"hi"', ["quoted"]),
        ("k\\s", ["back"]),
        ("<script>", ["script"]),
    ],
)
def test_wildcards_quotes_and_backslashes_match_literally(guild, query, expected):
    assert sorted(names(search_members(guild, query, live_fallback=False))) == expected


def test_one_and_two_characters_match_whole_names_and_display_name_prefixes(guild):
    assert names(search_members(guild, "li", live_fallback=False)) == ["li"]  # 李华's username
    assert names(search_members(guild, "an", live_fallback=False)) == ["ana"]  # "Ana Lopez" starts with it
    assert names(search_members(guild, "na", live_fallback=False)) == []  # in "banana", but too short for substrings
    assert names(search_members(guild, "b", live_fallback=False)) == ["back", "banana_split", "anabelle"]


def test_an_id_or_a_mention_finds_the_member(guild):
    user_id = 200000000000000003
    assert names(search_members(guild, str(user_id))) == ["zoe.w"]
    assert names(search_members(guild, f"<@{user_id}>")) == ["zoe.w"]
    assert names(search_members(guild, f"<@!{user_id}>")) == ["zoe.w"]


def test_departed_members_come_last_and_say_so(guild):
    services.mark_departed(guild.id, [200000000000000000], seen_before=timezone.now(), now=timezone.now())
    result = search_members(guild, "ana", live_fallback=False)
    assert names(result) == ["anabelle", "banana_split", "ana"]
    assert [hit.source for hit in result.hits] == ["cache", "cache", "departed"]


def test_empty_query_shows_members_not_nothing(guild):
    result = search_members(guild, "", live_fallback=False)
    assert result.source == "recent" and len(result.hits) == len(NAMES)


def test_too_long_queries_are_refused(guild):
    with pytest.raises(QueryTooLong):
        search_members(guild, "x" * 101)


def test_nothing_matches_says_none(guild):
    result = search_members(guild, "qqqqq", live_fallback=False)
    assert (result.hits, result.source) == ([], "none")


def reference_search(rows: list[Member], query: str, limit: int = 25) -> list[int]:
    """The ranking written out in plain Python: what both databases must return."""
    folded = fold(query)

    def tier(m: Member) -> int | None:
        if SEP + folded + SEP in m.search_text:
            return 0
        if len(folded) < 3 or not any(c.isalnum() for c in folded):
            return 1 if m.sort_key.startswith(folded) else None
        if SEP + folded in m.search_text:
            return 1
        return 2 if folded in m.search_text else None

    ranked = []
    for departed in (False, True):
        group = [m for m in rows if (m.departed_at is not None) == departed and tier(m) is not None]
        ranked += sorted(group, key=lambda m: (tier(m), m.sort_key.encode(), m.user_id))
    return [m.user_id for m in ranked[:limit]]


def test_the_database_ranks_exactly_like_the_reference(db, emulator):
    """Run on SQLite and on PostgreSQL (make test does both): each equals the same reference."""
    world_guild = next(iter(emulator.world.guilds.values()))
    guild = Guild.objects.create(id=world_guild.id, name="Generated")
    from guildhub.discord.guilds import member_from_json

    services.upsert_members(guild.id, [member_from_json(m) for m in world_guild.list_members(after=0, limit=1000)])
    departed = list(Member.objects.filter(guild=guild).values_list("user_id", flat=True)[::7])
    Member.objects.filter(guild=guild, user_id__in=departed).update(departed_at="2024-01-01T00:00:00Z")
    rows = list(Member.objects.filter(guild=guild))
    rng = random.Random(4)
    queries = ["a", "lu", "ex", "luna", "fox", "wolf", "the", "bot", "é", "100%", "_", "<scr", "zz", "%%%", "<im", "<>"]
    queries += [rng.choice(rows).username[1:5] for _ in range(10)]
    for query in queries:
        got = [hit.user_id for hit in search_members(guild, query, live_fallback=False).hits]
        assert got == reference_search(rows, query), query


@pytest.mark.django_db(transaction=True)
def test_a_member_the_cache_lacks_is_found_live_on_discord_and_cached(discord_settings, emulator, emulator_guild):
    guild = Guild.objects.create(id=emulator_guild.id, name=emulator_guild.name)
    newcomer = emulator.call(emulator.world.add_member, emulator_guild, username="brandnewperson")
    result = search_members(guild, "brandnew")
    assert result.source == "discord"
    assert [hit.user_id for hit in result.hits] == [int(newcomer["user"]["id"])]
    assert Member.objects.filter(guild=guild, username="brandnewperson").exists()
    assert search_members(guild, "brandnew").source == "cache"


@pytest.mark.django_db(transaction=True)
def test_a_discord_failure_during_fallback_returns_the_cache_answer_with_a_notice(
    discord_settings, emulator, emulator_guild
):
    discord_settings.LIVE_SEARCH_TIMEOUT = 1.0
    guild = Guild.objects.create(id=emulator_guild.id, name=emulator_guild.name)
    services.upsert_members(guild.id, [member(300000000000000001, "gone_person", None, None)])
    services.mark_departed(guild.id, [300000000000000001], seen_before=timezone.now(), now=timezone.now())
    http("PUT", f"{emulator.url}/_emulator/faults", {"error_rate": 1.0, "error_status": 500})
    result = search_members(guild, "gone")
    assert result.source == "departed"
    assert [hit.username for hit in result.hits] == ["gone_person"]
    assert result.notice and "did not answer" in result.notice


def test_punctuation_only_queries_match_whole_names_and_prefixes_not_everything(guild):
    assert names(search_members(guild, "%_%", live_fallback=False)) == []
    assert names(search_members(guild, "<script>", live_fallback=False)) == ["script"]  # has letters


def test_a_display_name_prefix_takes_in_every_character_after_it(guild):
    """The range ends at the prefix's successor: even the last code point may follow it."""
    services.upsert_members(guild.id, [member(299999999999999999, "edge", "Zq\U0010ffffend", None)])
    assert names(search_members(guild, "zq", live_fallback=False)) == ["edge"]
