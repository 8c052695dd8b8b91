from django.db import migrations

from members.migrations._vendor_sql import run_on_postgres

# PostgreSQL only. The search indexes' keys in the "C" collation, and their trigrams cut without
# sorting. Writing members is bound by these two GIN indexes (bench/RESULTS.md), and each key
# GIN stores is compared with its neighbours: in the database's collation that is strcoll, here
# (C.UTF-8) 12 % of their cost and more in a locale such as en_US.UTF-8; in "C" it is memcmp.
# The keys are matched, never ordered for people, so their order does not matter.
# member_trigrams (0009) sorted each member's pieces to drop duplicates (array_agg DISTINCT),
# which GIN does itself when it extracts an array's keys, as ANALYZE does when it counts them:
# 4.4 µs a member instead of 8.7, and a 1M-member ANALYZE takes 4.3-4.8 s instead of 5.5 s.
# Server CPU per member written (200k, both indexes, three interleaved rounds): 63.5 µs before,
# 56.1 in "C", 54.4 in "C" without the sort.
# The indexes are built again (a 1M-member cache: about 30 s); 0015's pending lists and 0016's
# statistics target come with them. Queries name the collation to use them: members.selectors,
# and member_text_matches (0018), recreated here.

TRIGRAMS_SORTED = (
    "SELECT coalesce(array_agg(DISTINCT substr($1, i, 3)), '{}') FROM generate_series(1, length($1) - 2) AS i"
)
TRIGRAMS = "SELECT ARRAY(SELECT substr($1, i, 3) FROM generate_series(1, length($1) - 2) AS i)"
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
        FROM members_member AS m
        WHERE m.guild_id = guild
          AND (departed IS NULL OR (m.departed_at IS NOT NULL) = departed)
          AND member_trigrams(m.search_text){collate} @> pieces
          AND strpos(m.search_text, needle) > 0
          AND m.user_id <> ALL (skip)
        LIMIT cap
    $$
"""


def statements(trigrams: str, collate: str) -> list[str]:
    """Both indexes and the fetch function, with `trigrams` as member_trigrams' body, keys in `collate`."""
    return [
        "CREATE OR REPLACE FUNCTION member_trigrams(text) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE "
        f"AS $$ {trigrams} $$",
        "DROP INDEX IF EXISTS member_trigrams_gin",
        f"CREATE INDEX member_trigrams_gin ON members_member USING gin ((member_trigrams(search_text)){collate}) "
        "WITH (gin_pending_list_limit = 1024)",
        "ALTER INDEX member_trigrams_gin ALTER COLUMN 1 SET STATISTICS 500",
        "DROP INDEX IF EXISTS member_names_gin",
        f"CREATE INDEX member_names_gin ON members_member USING gin ((string_to_array(search_text, chr(31))){collate}) "
        "WITH (gin_pending_list_limit = 1024)",
        f"DROP FUNCTION IF EXISTS {MATCHES_SIGNATURE}",
        MATCHES.format(collate=collate),
        # This backend still holds the new index's column as it was created, without the target set
        # above (PostgreSQL keeps an index's tuple descriptor when it only reloads its information), so
        # ANALYZE here would keep 1000 trigrams. For this one ANALYZE every column gets 500; the next
        # one, in autovacuum or another session, reads the targets as set.
        "SET LOCAL default_statistics_target = 500",
        "ANALYZE members_member",
    ]


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0018_member_text_matches_columns"),
    ]

    operations = [
        migrations.RunPython(
            run_on_postgres(statements(TRIGRAMS, ' COLLATE "C"')), run_on_postgres(statements(TRIGRAMS_SORTED, ""))
        ),
    ]
