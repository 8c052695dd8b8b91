"""SQLite: let FTS5 gather 16 MB of a sync's new index entries before writing a segment.

FTS5 keeps a transaction's new entries in memory and writes them out as a new
segment whenever they pass 'hashsize' (1 MB by default), merging segments as they
pile up. A member sync writes tens of megabytes of trigram entries, so the small
default meant hundreds of small segments and merges: with it, the commits of a 1M
member sync took about 35 of its seconds. The setting is stored in the FTS
table's own config, so every connection uses it. PostgreSQL: nothing to do.
"""

from django.db import migrations

from members.migrations._vendor_sql import run_for_vendor

# 16 MB for syncs; 1 MB is FTS5's default (migrating back restores it).
SQLITE_UP = ["INSERT INTO members_member_fts(members_member_fts, rank) VALUES ('hashsize', 16777216)"]
SQLITE_DOWN = ["INSERT INTO members_member_fts(members_member_fts, rank) VALUES ('hashsize', 1048576)"]


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0009_member_trigrams_index"),
    ]

    operations = [
        migrations.RunPython(run_for_vendor({"sqlite": SQLITE_UP}), run_for_vendor({"sqlite": SQLITE_DOWN})),
    ]
