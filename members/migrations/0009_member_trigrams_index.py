from django.db import migrations

from members.migrations._vendor_sql import run_on_postgres

# PostgreSQL only: every three-character piece of search_text as an array, with a GIN index,
# so that the substring tiers of the search find their candidates the way SQLite's FTS5
# trigram table does. pg_trgm reads text as words of letters and digits, so a query with a
# space, a dot or a "|" inside ("a l", "n.b", "| s") gave it too few trigrams or none, and it
# rechecked most of the table; it also cannot see the separator a prefix starts with.
# members.selectors writes the same expression, word for word, or the planner won't use the index.
POSTGRES_UP = [
    "CREATE OR REPLACE FUNCTION member_trigrams(text) RETURNS text[] LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS "
    "$$ SELECT coalesce(array_agg(DISTINCT substr($1, i, 3)), '{}') FROM generate_series(1, length($1) - 2) AS i $$",
    "CREATE INDEX IF NOT EXISTS member_trigrams_gin ON members_member USING gin (member_trigrams(search_text))",
]
POSTGRES_DOWN = ["DROP INDEX IF EXISTS member_trigrams_gin", "DROP FUNCTION IF EXISTS member_trigrams(text)"]


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0008_member_fewer_indexes"),
    ]

    operations = [
        migrations.RunPython(run_on_postgres(POSTGRES_UP), run_on_postgres(POSTGRES_DOWN)),
    ]
