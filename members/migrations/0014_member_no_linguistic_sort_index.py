from django.db import migrations

from members.migrations._vendor_sql import run_on_postgres

# PostgreSQL only. Every order and range of display names there is in the "C" collation (code
# point order, the same as SQLite's), which 0013's index answers; the model's (guild, sort_key,
# user_id) index in the database's own collation answered nothing, and every member written paid
# for it in collation-aware comparisons (the REST sync of 100k members, one run each: 1.22 ->
# 1.12-1.15x the rate-limit floor). SQLite keeps it: it is that database's picker index. The model state keeps
# it too, so both databases share one history; Django drops indexes on PostgreSQL with IF EXISTS.
POSTGRES_UP = ["DROP INDEX IF EXISTS member_guild_sort_key_uid"]
POSTGRES_DOWN = [
    "CREATE INDEX IF NOT EXISTS member_guild_sort_key_uid ON members_member (guild_id, sort_key, user_id)",
]


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0013_member_walk_index"),
    ]

    operations = [
        migrations.RunPython(run_on_postgres(POSTGRES_UP), run_on_postgres(POSTGRES_DOWN)),
    ]
