from django.db import migrations

from members.migrations._vendor_sql import run_on_postgres

# PostgreSQL only.
# - pg_trgm's index (0003) answers no query any more: substrings come from 0009's index over
#   every three-character piece, whole names from 0006's. Every member a sync writes still paid
#   for it. The extension stays (dropping it needs more rights, and unused it costs nothing).
# - GIN indexes gather new entries in a pending list of up to 4 MB by default, and every search
#   reads that whole list: right after a big sync, before autovacuum merges it, one-character
#   searches of the 1M benchmark (a names-index look-up) took 11 ms at the median instead of 4.
#   A 256 kB list is merged 16 times as often, in smaller pieces, and is quick to read.
POSTGRES_UP = [
    "DROP INDEX IF EXISTS member_search_trgm",
    "ALTER INDEX member_names_gin SET (gin_pending_list_limit = 256)",
    "ALTER INDEX member_trigrams_gin SET (gin_pending_list_limit = 256)",
]
POSTGRES_DOWN = [
    "ALTER INDEX member_trigrams_gin RESET (gin_pending_list_limit)",
    "ALTER INDEX member_names_gin RESET (gin_pending_list_limit)",
    "CREATE INDEX IF NOT EXISTS member_search_trgm ON members_member USING gin (search_text gin_trgm_ops)",
]


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0011_member_no_username_index"),
    ]

    operations = [
        migrations.RunPython(run_on_postgres(POSTGRES_UP), run_on_postgres(POSTGRES_DOWN)),
    ]
