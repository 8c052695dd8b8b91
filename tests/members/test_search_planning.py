"""Member search planning: walking the display order or fetching and sorting gives the same members.

The planning limits (members.selectors.TierPlanning) only decide how fast a query is answered.
These tests shrink them so that a small guild takes every path a million-member guild takes,
and check each against the reference ranking, on SQLite and on PostgreSQL alike.
"""

import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from guildhub.discord.guilds import member_from_json
from guildhub.emulator import generator
from members import services
from members.models import Guild, Member
from members.selectors import TierPlanning, search_cache
from tests.members.test_search import reference_search

MEMBERS = 1500
SEED = 42

# Never walks: SQLite's capped count never reaches the cap, PostgreSQL's share of members never exceeds 1.
FETCH_AND_SORT = TierPlanning(probe_cap=10**9, walk_rows=10**9, walk_share=2.0)
# Walks every present tier with matches, to the end of the guild if need be.
WALK = TierPlanning(probe_cap=0, walk_rows=10**9, walk_share=0.0)
# Walks, gives up after a few members, then fetches and sorts after all.
WALK_GIVES_UP = TierPlanning(probe_cap=0, walk_rows=3, walk_share=0.0)


def generated_guild(guild_id: int, user_id_offset: int) -> Guild:
    guild = Guild.objects.create(id=guild_id, name=f"Generated {guild_id}")
    members = [generator.generated_member(i, SEED, guild_id, []) for i in range(MEMBERS)]
    for member in members:  # the same names in both guilds, other users
        member["user"]["id"] = str(int(member["user"]["id"]) + user_id_offset)
    services.upsert_members(guild.id, [member_from_json(m) for m in members])
    return guild


@pytest.fixture
def big_guild(db):
    guild = generated_guild(900000000000000001, 0)
    # Another guild with the same names: a walk or a count must never reach into it.
    generated_guild(900000000000000002, 1)
    departed = list(Member.objects.filter(guild=guild).values_list("user_id", flat=True)[::9])
    Member.objects.filter(guild=guild, user_id__in=departed).update(departed_at="2024-01-01T00:00:00Z")
    return guild


def queries(rows: list[Member]) -> list[str]:
    """Common and rare text: prefixes, pieces and whole names of the guild's members, and nonsense."""
    rng = random.Random(5)
    picked = ["the", "ale", "ragon", "zzqx", "a_s", ".", "an"]
    for _ in range(12):
        name = rng.choice(rng.choice(rows).search_text.strip("\x1f").split("\x1f") or ["x"])
        start = rng.randrange(max(1, len(name) - 3))
        picked += [name[:3], name[start : start + 4], name]
    return [q for q in picked if q.strip()]


@pytest.mark.parametrize("planning", [FETCH_AND_SORT, WALK, WALK_GIVES_UP], ids=["fetch", "walk", "walk-gives-up"])
def test_every_plan_ranks_exactly_like_the_reference(big_guild, planning):
    rows = list(Member.objects.filter(guild=big_guild))
    for query in queries(rows):
        present, departed = search_cache(big_guild, query, planning=planning)
        assert [hit.user_id for hit in present + departed] == reference_search(rows, query), query


def test_common_text_walks_the_display_order_when_more_match_than_the_cap(big_guild):
    rows = list(Member.objects.filter(guild=big_guild))
    planning = TierPlanning(probe_cap=50, walk_rows=10**9, walk_share=0.0)
    with CaptureQueriesContext(connection) as captured:
        present, _ = search_cache(big_guild, "the", planning=planning)
    # The walk is what this test is about: make sure it ran, not only that the answer is right.
    assert any("AS walk" in q["sql"] for q in captured.captured_queries)
    assert [hit.user_id for hit in present] == reference_search(rows, "the")


def test_a_walk_that_finds_too_few_falls_back_to_the_full_answer(big_guild):
    rows = list(Member.objects.filter(guild=big_guild))
    for query in ("ale", "the", "ragon"):
        present, departed = search_cache(big_guild, query, planning=WALK_GIVES_UP)
        assert len(present) == min(25, sum(1 for m in rows if m.departed_at is None and query in m.search_text))
        assert [hit.user_id for hit in present + departed] == reference_search(rows, query), query


def test_sqlite_fetches_text_most_matches_of_share_one_display_name_without_walking(big_guild):
    """They sit together at that name's place in the display order: a walk from the start would not reach them."""
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's planning: PostgreSQL goes by its statistics")
    cluster = [generator.generated_member(5000 + i, SEED, big_guild.id, []) for i in range(60)]
    for member in cluster:
        member["nick"] = "Zz Cluster"
    services.upsert_members(big_guild.id, [member_from_json(m) for m in cluster])
    rows = list(Member.objects.filter(guild=big_guild))
    planning = TierPlanning(probe_cap=20, walk_rows=10**9, walk_share=0.0)

    with CaptureQueriesContext(connection) as captured:
        present, departed = search_cache(big_guild, "cluster", planning=planning)
    assert not any("AS walk" in q["sql"] for q in captured.captured_queries)
    assert [hit.user_id for hit in present + departed] == reference_search(rows, "cluster")
    # Spread-out text still walks.
    with CaptureQueriesContext(connection) as captured:
        search_cache(big_guild, "the", planning=planning)
    assert any("AS walk" in q["sql"] for q in captured.captured_queries)
