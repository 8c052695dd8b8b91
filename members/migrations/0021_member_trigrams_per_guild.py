from django.db import migrations

from members.migrations._vendor_sql import run_on_postgres

# PostgreSQL only. The trigram index's keys become the guild's: each trigram of a member's text
# is stored behind a four-hex-digit key of its guild (the guild id modulo 65521, a prime, so
# every bit of a snowflake counts). Until now the keys were shared by every guild cached, so a
# search read every guild's members holding the text and dropped the other guilds' rows after
# fetching them: with five guilds (4.1M members) cached, one guild's 5+ character searches took
# p50 20.7 / p95 33.4 ms against 2.5-3.2 / 5.1-6.9 with one. With two 1M guilds, reading one
# guild's matches now takes half as long ("lunar" 2.6 -> 1.0 ms, "ragon" 192 -> 95 ms), where a
# two-column GIN index (btree_gin's guild_id beside the trigrams) made rare text slower ("lunar"
# 4.1 ms). Two guilds sharing a key (one pair in 65521) only share keys again: still right.
# Writing costs about 3 µs more per member (the key in front of each trigram; bench/RESULTS.md).
# The fetch function reads the index alone (OFFSET 0 keeps the guild's test out of the scan): its
# plan is generic, and with two guilds cached it would AND the keys' few rows with all of the
# guild's from the (guild, departed_at) index, 1M entries read in 34 ms where the keys take 1.3.
# The keys are the guild's already, so its test only drops a guild sharing the key.
# ANALYZE's statistics of the index now count each guild's trigrams apart, as a share of the
# whole table: members.selectors divides them by the guild's share of the table.
# The index keeps its name, and 0016's statistics target and 0019's "C" collation; 0020 left it
# without a pending-list limit of its own, and so is it built. A 1M-member cache: about 30 s.

TRIGRAMS = "SELECT ARRAY(SELECT substr($1, i, 3) FROM generate_series(1, length($1) - 2) AS i)"
# The key: Python's guild_id % 65521 (never negative) in four hex digits, as members.selectors.guild_key.
GUILD_TRIGRAMS = (
    "SELECT ARRAY(SELECT k.key || substr($2, i, 3) "
    "FROM (SELECT lpad(to_hex(mod(mod($1, 65521) + 65521, 65521)::int), 4, '0')) AS k(key), "
    "generate_series(1, length($2) - 2) AS i)"
)
MATCHES_SIGNATURE = "member_text_matches(bigint, boolean, text[], text, bigint[], integer)"
MATCHES = """
    CREATE FUNCTION member_text_matches(
        guild bigint, departed boolean, pieces text[], needle text, skip bigint[], cap integer
    ) RETURNS TABLE (
        id bigint, user_id bigint, username varchar, global_name varchar, nick varchar,
        display_name varchar, is_bot boolean, avatar varchar, departed_at timestamptz,
        sort_key varchar, search_text text
    )
    LANGUAGE sql STABLE PARALLEL SAFE
    SET enable_seqscan = off
    SET max_parallel_workers_per_gather = 0
    AS $$
        SELECT m.id, m.user_id, m.username, m.global_name, m.nick, m.display_name, m.is_bot, m.avatar,
               m.departed_at, m.sort_key, m.search_text
        FROM (SELECT * FROM members_member AS m WHERE {keys} COLLATE "C" @> pieces OFFSET 0) AS m
        WHERE m.guild_id = guild
          AND (departed IS NULL OR (m.departed_at IS NOT NULL) = departed)
          AND strpos(m.search_text, needle) > 0
          AND m.user_id <> ALL (skip)
        LIMIT cap
    $$
"""


def statements(keys: str) -> list[str]:
    """The trigram index on `keys` and the fetch function reading it; `keys` names the row's columns `{m}column`."""
    return [
        "DROP INDEX IF EXISTS member_trigrams_gin",
        f'CREATE INDEX member_trigrams_gin ON members_member USING gin (({keys.format(m="")}) COLLATE "C")',
        "ALTER INDEX member_trigrams_gin ALTER COLUMN 1 SET STATISTICS 500",
        f"DROP FUNCTION IF EXISTS {MATCHES_SIGNATURE}",
        MATCHES.format(keys=keys.format(m="m.")),
        # As in 0019: this backend would ANALYZE the new index's column with the default target.
        "SET LOCAL default_statistics_target = 500",
        "ANALYZE members_member",
    ]


UP = [
    "CREATE FUNCTION member_guild_trigrams(bigint, text) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE "
    f"AS $$ {GUILD_TRIGRAMS} $$",
    *statements("member_guild_trigrams({m}guild_id, {m}search_text)"),
    "DROP FUNCTION member_trigrams(text)",
]
DOWN = [
    "CREATE FUNCTION member_trigrams(text) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE "
    f"AS $$ {TRIGRAMS} $$",
    *statements("member_trigrams({m}search_text)"),
    "DROP FUNCTION member_guild_trigrams(bigint, text)",
]


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0020_member_pending_lists_per_session"),
    ]

    operations = [
        migrations.RunPython(run_on_postgres(UP), run_on_postgres(DOWN)),
    ]
