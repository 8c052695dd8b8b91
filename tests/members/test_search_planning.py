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
from members import selectors, services
from members.models import Guild, Member
from members.search_text import fold
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


@pytest.fixture
def walked(monkeypatch) -> list[str]:
    """The texts members.selectors walks the display order for, in order."""
    needles = []
    walk = selectors._walk
    monkeypatch.setattr(
        selectors, "_walk", lambda guild_id, needle, **kw: needles.append(needle) or walk(guild_id, needle, **kw)
    )
    return needles


def most_common_name(rows: list[Member]) -> str:
    names = [name for m in rows for name in m.search_text.strip("\x1f").split("\x1f") if name]
    return max(set(names), key=names.count)


@pytest.mark.postgres_only
def test_postgres_walks_the_display_order_for_a_whole_name_many_members_have(big_guild, monkeypatch, walked):
    """Their whole-name tier would otherwise fetch and sort every one of them (10-35 ms at 1M)."""
    rows = list(Member.objects.filter(guild=big_guild))
    name = most_common_name(rows)
    monkeypatch.setattr(selectors, "_postgres_name_share", lambda folded: 0.05 if folded == name else 0.0)
    planning = TierPlanning(probe_cap=10, walk_rows=10**9, walk_share=0.01)

    present, departed = search_cache(big_guild, name, planning=planning)
    assert walked[0] == f"\x1f{name}\x1f"
    assert [hit.user_id for hit in present + departed] == reference_search(rows, name)
    # A name too rare to walk goes to the names index, with the same answer.
    walked.clear()
    monkeypatch.setattr(selectors, "_postgres_name_share", lambda folded: 0.0)
    present, departed = search_cache(big_guild, name, planning=planning)
    assert f"\x1f{name}\x1f" not in walked
    assert [hit.user_id for hit in present + departed] == reference_search(rows, name)


@pytest.mark.postgres_only
def test_postgres_reads_how_common_whole_names_are_from_analyze(big_guild):
    rows = list(Member.objects.filter(guild=big_guild))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE members_member")
    selectors._trigram_stats["read_at"] = float("-inf")
    try:
        name = most_common_name(rows)
        share = sum(1 for m in rows if f"\x1f{name}\x1f" in m.search_text) / len(rows)
        assert selectors._postgres_name_share(name) == pytest.approx(share, rel=0.5)  # both guilds: the same names
        assert selectors._postgres_name_share("no such name at all") == 0.0
    finally:
        selectors._trigram_stats["read_at"] = float("-inf")


@pytest.mark.postgres_only
def test_postgres_reads_a_guilds_own_trigram_shares_from_analyze(big_guild):
    """The statistics count each guild's keys apart (0021), as shares of the whole table: the
    guild's share of its members comes out, whatever the other guilds hold."""
    # A third guild, a third of the first's size, of which every member holds "qqq": 1 in 4 of the
    # table, all of that guild, none of the others.
    small = Guild.objects.create(id=900000000000000005, name="Small")
    Member.objects.bulk_create(
        Member(
            guild=small, user_id=10**17 + n, username=f"qqq{n}", display_name=f"qqq{n}", search_text=f"\x1fqqq{n}\x1f"
        )
        for n in range(MEMBERS // 3)
    )
    rows = list(Member.objects.filter(guild=big_guild))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE members_member")
    selectors._trigram_stats["read_at"] = float("-inf")
    try:
        assert selectors._postgres_guild_members(big_guild.id) == pytest.approx(len(rows), rel=0.1)
        assert selectors._postgres_guild_members(small.id) == pytest.approx(MEMBERS // 3, rel=0.1)
        for text in ("the", "ale", "ragon"[:3]):
            held = sum(text in m.search_text for m in rows) / len(rows)
            assert selectors._postgres_trigram_share(big_guild.id, text) == pytest.approx(held, rel=0.3), text
        assert selectors._postgres_trigram_share(small.id, "qqq") == pytest.approx(1.0)
        assert selectors._postgres_trigram_share(big_guild.id, "qqq") == 0.0
        assert selectors._postgres_trigram_share(900000000000000009, "the") == 0.0  # a guild with no members
        # Past the 100 guilds guild_id's statistics list, its keys may still be listed: Discord's count
        # gives its part of the table, and without one the table's share is the bound.
        selectors._postgres_stats()["guild_parts"].pop(small.id)
        Guild.objects.filter(pk=small.pk).update(approximate_member_count=MEMBERS // 3)
        assert selectors._postgres_trigram_share(small.id, "qqq") == pytest.approx(1.0, rel=0.1)
        Guild.objects.filter(pk=small.pk).update(approximate_member_count=None)
        table_share = selectors._postgres_stats()["shares"][selectors.guild_key(small.id) + "qqq"]
        assert selectors._postgres_trigram_share(small.id, "qqq") == pytest.approx(table_share)
    finally:
        selectors._trigram_stats["read_at"] = float("-inf")


@pytest.mark.postgres_only
def test_postgres_reads_only_the_guilds_own_members_from_the_trigram_index(db):
    """The other guild holds the same names: before 0021 the index gave both guilds' members, and
    the search fetched every one to drop the other guild's. Guilds of their own: the index still
    holds the rows other tests wrote and rolled back (or updated) until a vacuum, under their guilds' keys."""
    guild = generated_guild(900000000000000071, 0)
    generated_guild(900000000000000072, 1)
    members = Member.objects.filter(guild=guild)
    needle = "ale"
    in_guild = sum(needle in m.search_text for m in members)
    assert in_guild and Member.objects.exclude(guild=guild).filter(search_text__contains=needle).exists()
    sql, params = selectors._containing(members, needle, [guild.id]).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE members_member")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
        (plan,) = cursor.fetchone()

    def nodes(node: dict):
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    scans = [n for n in nodes(plan[0]["Plan"]) if n.get("Index Name") == "member_trigrams_gin"]
    assert [n["Actual Rows"] for n in scans] == [in_guild], plan


@pytest.mark.postgres_only
def test_postgres_fetch_function_reads_the_trigram_index_alone(db):
    """Its plan is generic: with several guilds cached it would AND the text's few members with
    all of the guild's from the (guild, departed_at) index (1M entries read, 34 ms, for 1.3).
    Guilds of 20k members each: with fewer the planner keeps to the trigram index anyway."""
    guilds = [Guild.objects.create(id=900000000000000081 + n, name=f"Twin {n}") for n in range(2)]
    with connection.cursor() as cursor:
        for guild in guilds:
            cursor.execute(
                "INSERT INTO members_member (guild_id, user_id, username, display_name, search_text, sort_key, "
                "role_ids, is_bot, avatar, fingerprint, first_seen_at, last_seen_at, updated_at) "
                "SELECT %s, n, 'user' || n, 'user' || n, chr(31) || 'user' || n || chr(31) || md5(n::text) || chr(31), "
                "'user' || n, '[]', false, '', 0, now(), now(), now() FROM generate_series(1, 20000) AS n",
                [guild.id],
            )

    def scans() -> dict[str, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, pg_stat_get_xact_numscans(name::regclass) "
                "FROM unnest(ARRAY['member_trigrams_gin', 'member_guild_departed']) AS name"
            )
            return dict(cursor.fetchall())

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE members_member")
    before = scans()
    for needle in ("user1234", "zzqx", "\x1fuser"):
        selectors._postgres_sorted_matches(guilds[0].id, needle, departed=False, want=5, seen=set())
    after = scans()
    assert after["member_trigrams_gin"] == before["member_trigrams_gin"] + 3
    assert after["member_guild_departed"] == before["member_guild_departed"]


@pytest.mark.postgres_only
def test_postgres_walks_from_a_lower_share_when_the_statistics_give_the_texts_own(big_guild, monkeypatch, walked):
    """One trigram's share is the text's own; a longer text's is only bounded by its pieces'."""
    rows = list(Member.objects.filter(guild=big_guild))
    monkeypatch.setattr(selectors, "_postgres_trigram_share", lambda guild_id, needle: 0.003)
    planning = TierPlanning(probe_cap=10, walk_rows=10**9, walk_share=0.005, walk_share_exact=0.002)

    # Three characters inside many names but at the start of few, so the substring tier is reached.
    present_rows = [m for m in rows if m.departed_at is None]
    text = next(
        t
        for t in ("ger", "mit", "cho", "ate", "ros", "ale")
        if sum(f"\x1f{t}" in m.search_text for m in present_rows) < 10
        and sum(t in m.search_text for m in present_rows) > 40
    )
    present, departed = search_cache(big_guild, text, planning=planning)
    assert text in walked and f"\x1f{text}" not in walked
    assert [hit.user_id for hit in present + departed] == reference_search(rows, text)


@pytest.mark.postgres_only
def test_postgres_keeps_statistics_of_the_five_thousand_most_common_trigrams(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstattarget FROM pg_attribute WHERE attrelid = 'member_trigrams_gin'::regclass AND attnum = 1"
        )
        assert cursor.fetchone()[0] == 500


@pytest.mark.postgres_only
def test_postgres_search_leaves_the_planner_settings_as_it_found_them(transactional_db):
    """It turns sequential scans and parallel workers off for its own statements only."""
    from django.db import transaction

    guild = Guild.objects.create(id=900000000000000003, name="Settings")
    services.upsert_members(
        guild.id, [member_from_json(generator.generated_member(i, SEED, guild.id, [])) for i in range(50)]
    )

    def settings() -> tuple:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('enable_seqscan'), current_setting('max_parallel_workers_per_gather')"
            )
            return cursor.fetchone()

    before = settings()
    assert before[0] == "on"
    for query in ("the", "zzqx", "ale"):  # fetched from the trigram index by member_text_matches
        search_cache(guild, query)
        assert settings() == before, query  # autocommit
        with transaction.atomic():
            search_cache(guild, query)
            assert settings() == before, query  # inside someone else's transaction


@pytest.fixture
def sampled(monkeypatch):
    """PostgreSQL plans text of several trigrams from a sample of the guild even in this small table."""
    monkeypatch.setattr(selectors, "SAMPLE_MIN_MEMBERS", 0)
    # The sample is sized from the table's row count, which PostgreSQL knows after ANALYZE; the
    # statistics are cached per process, so read them afresh rather than as an earlier test left them.
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE members_member")
    selectors._trigram_stats["read_at"] = float("-inf")
    selectors._samples.clear()
    yield
    selectors._samples.clear()
    selectors._trigram_stats["read_at"] = float("-inf")


@pytest.mark.postgres_only
@pytest.mark.parametrize("planning", [FETCH_AND_SORT, WALK, WALK_GIVES_UP], ids=["fetch", "walk", "walk-gives-up"])
def test_every_plan_from_a_sample_ranks_exactly_like_the_reference(big_guild, sampled, planning):
    rows = list(Member.objects.filter(guild=big_guild))
    for query in queries(rows):
        present, departed = search_cache(big_guild, query, planning=planning)
        assert [hit.user_id for hit in present + departed] == reference_search(rows, query), query


@pytest.mark.postgres_only
def test_postgres_counts_text_of_several_trigrams_in_a_sample_of_the_guild(big_guild, sampled):
    present = [m for m in Member.objects.filter(guild=big_guild) if m.departed_at is None]
    for needle in ("\x1fthe", "\x1fger", "ragon", "zzqx"):
        share, exact = selectors._postgres_share(big_guild.id, needle)
        # This table is smaller than the sample: the sample is every present member of the guild. It
        # counts occurrences, so a member holding the text twice ("dragon" twice) counts twice.
        holders = sum(needle in m.search_text for m in present)
        occurrences = sum(m.search_text.count(needle) for m in present)
        assert exact and share == pytest.approx(occurrences / len(present)), needle
        assert holders <= occurrences <= 1.25 * holders, needle
    # One trigram: the statistics, whatever the sample says; the sample when they do not list it
    # (several big guilds share the list of most common keys).
    assert selectors._postgres_share(big_guild.id, "ger") == (
        selectors._postgres_trigram_share(big_guild.id, "ger"),
        True,
    )
    selectors._postgres_stats()["shares"].clear()
    assert selectors._postgres_share(big_guild.id, "ger") == (
        pytest.approx(sum(m.search_text.count("ger") for m in present) / len(present)),
        True,
    )


@pytest.mark.postgres_only
def test_postgres_does_not_walk_for_a_prefix_no_name_starts_with(big_guild, sampled, monkeypatch, walked):
    """ "\x1fger": both of its trigrams are common, so their bound says walk; the sample says none start so."""
    rows = list(Member.objects.filter(guild=big_guild))
    assert not any("\x1fger" in m.search_text for m in rows) and sum("ger" in m.search_text for m in rows) > 40
    monkeypatch.setattr(selectors, "_postgres_trigram_share", lambda guild_id, needle: 0.05)
    planning = TierPlanning(probe_cap=10, walk_rows=10**9, walk_share=0.005, walk_share_exact=0.002)

    present, departed = search_cache(big_guild, "ger", planning=planning)
    assert "\x1fger" not in walked and "ger" in walked
    assert [hit.user_id for hit in present + departed] == reference_search(rows, "ger")
    # Without a sample the bound decides, and the prefix tier walks.
    walked.clear()
    monkeypatch.setattr(selectors, "SAMPLE_MIN_MEMBERS", 10**12)
    selectors._samples.clear()
    search_cache(big_guild, "ger", planning=planning)
    assert "\x1fger" in walked


@pytest.mark.postgres_only
def test_postgres_keeps_samples_of_the_most_recently_sampled_guilds_only(big_guild, sampled, monkeypatch):
    monkeypatch.setattr(selectors, "SAMPLE_GUILDS", 2)
    other = Guild.objects.create(id=900000000000000009, name="Empty")
    for guild_id in (big_guild.id, 900000000000000002, other.id):
        selectors._postgres_share(guild_id, "\x1fthe")
    assert list(selectors._samples) == [900000000000000002, other.id]
    assert selectors._postgres_sample(other.id) is None  # no members: the bounds plan for it
    assert selectors._postgres_sample(900000000000000002) is not None


@pytest.mark.postgres_only
@pytest.mark.parametrize(
    "text",
    [
        "",
        "ab",
        "abc",
        "\x1fxmangotigerx1\x1fmango tiger\x1f\x1f",
        "\x1fa\x1faaaa\x1f",
        "\x1f李华 🦊\x1fzalgo̴\x1f",
        "x" * 300,
    ],
)
def test_postgres_member_guild_trigrams_cuts_the_keys_the_search_asks_for(db, text):
    """The index's keys (0021; duplicates left for GIN to drop) are exactly selectors._guild_pieces, as a set:
    each of the text's pieces behind the guild's key, the same in SQL and in Python for any bigint."""
    for guild_id in (1, 65520, 65521, 900000000000000001, 2**63 - 1, -5, -(2**63)):
        with connection.cursor() as cursor:
            cursor.execute("SELECT member_guild_trigrams(%s, %s)", [guild_id, text])
            (keys,) = cursor.fetchone()
        assert set(keys) == set(selectors._guild_pieces(guild_id, text)), guild_id
        assert len(keys) == max(0, len(text) - 2)
        assert all(key[:4] == selectors.guild_key(guild_id) and len(key[4:]) == 3 for key in keys), guild_id


@pytest.mark.postgres_only
def test_postgres_search_reads_go_through_its_c_collated_indexes(big_guild):
    """Each read names the index's expression and collation (0019), or the planner cannot use the index.

    Counted from this transaction's own index statistics: the fetch function plans inside itself,
    where EXPLAIN cannot look.
    """

    def scans() -> dict[str, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, pg_stat_get_xact_numscans(name::regclass) "
                "FROM unnest(ARRAY['member_trigrams_gin', 'member_names_gin']) AS name"
            )
            return dict(cursor.fetchall())

    members = Member.objects.filter(guild=big_guild)
    name = fold(members.filter(departed_at__isnull=True).order_by("user_id").first().username)  # one member's
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE members_member")  # the planner must know the guild's rows, not guess 1
    before = scans()
    assert list(selectors._containing(members, name[1:], [big_guild.id]))
    after_contains = scans()
    assert list(selectors._named(members, name, big_guild.id))
    after_named = scans()
    assert selectors._postgres_sorted_matches(big_guild.id, name[1:], departed=False, want=5, seen=set())
    after_function = scans()
    assert after_contains["member_trigrams_gin"] > before["member_trigrams_gin"]
    assert after_named["member_names_gin"] > after_contains["member_names_gin"]
    assert after_function["member_trigrams_gin"] > after_named["member_trigrams_gin"]
