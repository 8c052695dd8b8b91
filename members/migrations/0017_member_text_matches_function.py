from django.db import migrations

from members.migrations._vendor_sql import run_on_postgres

# PostgreSQL only. The search fetches the members containing a text from the trigram index
# (members.selectors), with sequential scans and parallel workers off: the planner's guess at
# how many members hold a text is often wrong by orders of magnitude, and then it scans the
# table. Those settings took a transaction and a SET LOCAL around each fetch: three round trips
# more than the fetch itself, up to three times a search. A function's own SET clauses hold for
# its call alone. `departed` NULL: present and departed members alike; `cap` NULL: no limit.
# The trigram expression is the index's of 0009, word for word, or the planner won't use it.
POSTGRES_UP = [
    """
    CREATE OR REPLACE FUNCTION member_text_matches(
        guild bigint, departed boolean, pieces text[], needle text, skip bigint[], cap integer
    ) RETURNS SETOF members_member
    LANGUAGE sql STABLE PARALLEL SAFE
    SET enable_seqscan = off
    SET max_parallel_workers_per_gather = 0
    AS $$
        SELECT * FROM members_member
        WHERE guild_id = guild
          AND (departed IS NULL OR (departed_at IS NOT NULL) = departed)
          AND member_trigrams(search_text) @> pieces
          AND strpos(search_text, needle) > 0
          AND user_id <> ALL (skip)
        LIMIT cap
    $$
    """,
]
POSTGRES_DOWN = [
    "DROP FUNCTION IF EXISTS member_text_matches(bigint, boolean, text[], text, bigint[], integer)",
]


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0016_member_trigram_statistics"),
    ]

    operations = [
        migrations.RunPython(run_on_postgres(POSTGRES_UP), run_on_postgres(POSTGRES_DOWN)),
    ]
