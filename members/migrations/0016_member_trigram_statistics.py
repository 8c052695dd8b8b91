from django.db import migrations

from members.migrations._vendor_sql import run_on_postgres

# PostgreSQL only. The search plans each substring tier from ANALYZE's statistics of the trigram
# index (members.selectors._postgres_stats): how many members hold each of the most common
# trigrams. By default ANALYZE keeps 1000 of them, down to 0.6 % of members in the 1M benchmark,
# and a text of rarer trigrams is taken for rare and its matches fetched and sorted (4,500 of
# them: 20-30 ms). At 500 it keeps 5000, down to 0.05 %: three characters held by 0.2 % walk the
# display order instead, and longer text gets a tighter bound from its pieces. The price is
# ANALYZE's: a sample of 150k members instead of 30k (1M members: 7.1 s instead of 1.3 s, in
# autovacuum's background). ANALYZE here, so an existing cache plans with it at once.
POSTGRES_UP = [
    "ALTER INDEX member_trigrams_gin ALTER COLUMN 1 SET STATISTICS 500",
    "ANALYZE members_member",
]
POSTGRES_DOWN = [
    "ALTER INDEX member_trigrams_gin ALTER COLUMN 1 SET STATISTICS -1",
]


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0015_member_gin_pending_lists_1mb"),
    ]

    operations = [
        migrations.RunPython(run_on_postgres(POSTGRES_UP), run_on_postgres(POSTGRES_DOWN)),
    ]
