"""SQLite: let FTS5 gather 16 MB of a sync's new index entries before writing a segment.

FTS5 keeps a transaction's new entries in memory and writes them out as a new
segment whenever they pass 'hashsize' (1 MB by default), merging segments as they
pile up. A member sync writes tens of megabytes of trigram entries, so the small
default meant hundreds of small segments and merges: with it, the commits of a 1M
member sync took about 35 of its seconds. The setting is stored in the FTS
table's own config, so every connection uses it. PostgreSQL: nothing to do.
"""

from django.db import migrations

DEFAULT_HASHSIZE = 1024 * 1024
SYNC_HASHSIZE = 16 * 1024 * 1024


def set_hashsize(size: int):
    def run(apps, schema_editor) -> None:
        if schema_editor.connection.vendor == "sqlite":
            schema_editor.execute(
                "INSERT INTO members_member_fts(members_member_fts, rank) VALUES ('hashsize', %s)", [size]
            )

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0009_member_trigrams_index"),
    ]

    operations = [
        migrations.RunPython(set_hashsize(SYNC_HASHSIZE), set_hashsize(DEFAULT_HASHSIZE)),
    ]
