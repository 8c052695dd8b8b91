"""SQLite: the FTS5 trigram index keeps each guild's members in a rowid range of their own.

Until now the index's rowids were the members' ids, so a guild's search read every cached
guild's members holding the text and dropped the others afterwards: with five guilds of 1M
cached, one guild's 5+ character searches took p50 10.2 / p95 85.1 ms (bench/member_search.py
--other-guilds 4). FTS5 seeks a rowid range in each term's doclist, so a rowid of
(the guild id's low 22 bits) * 2^40 + the member's id puts each guild in a range of its own:
counting one guild's "ragon" among five 300k guilds, 87 -> 23 ms; "lunar" 2.9 -> 0.3 ms.
Two guilds sharing the low bits (one pair in four million) share a range: their searches
read each other's rows and drop them, as before. members.selectors reads the range.

The table becomes contentless (content=''): an external-content table reads its content by
rowid, and these rowids are not the members'. The search only ever reads rowids. The triggers
pass the old text to FTS5's 'delete', as they did; 0010's hashsize is set again.
A member's id must stay under 2^40 (a trillion rows inserted).
PostgreSQL: nothing to do (0021 keys its trigram index by guild instead).
"""

# ruff: noqa: S608  (the statements are built from this module's constants alone)
from django.db import migrations

from members.migrations._vendor_sql import run_for_vendor

ROWID = "((({row}guild_id & 4194303) << 40) + {row}id)"  # members.selectors.fts_rowid_range, word for word


def statements(table_options: str, rowid: str) -> list[str]:
    """The FTS5 table with `table_options` and its triggers; `rowid` names a members_member row's columns `{row}column`."""
    new, old = rowid.format(row="new."), rowid.format(row="old.")
    return [
        "DROP TRIGGER IF EXISTS members_member_fts_ai",
        "DROP TRIGGER IF EXISTS members_member_fts_ad",
        "DROP TRIGGER IF EXISTS members_member_fts_au",
        "DROP TABLE IF EXISTS members_member_fts",
        f"CREATE VIRTUAL TABLE members_member_fts USING fts5(search_text, {table_options}, tokenize='trigram')",
        "INSERT INTO members_member_fts(members_member_fts, rank) VALUES ('hashsize', 16777216)",
        f"INSERT INTO members_member_fts(rowid, search_text) SELECT {rowid.format(row='')}, search_text FROM members_member",
        "CREATE TRIGGER members_member_fts_ai AFTER INSERT ON members_member BEGIN "
        f"INSERT INTO members_member_fts(rowid, search_text) VALUES ({new}, new.search_text); END",
        "CREATE TRIGGER members_member_fts_ad AFTER DELETE ON members_member BEGIN "
        f"INSERT INTO members_member_fts(members_member_fts, rowid, search_text) VALUES ('delete', {old}, old.search_text); "
        "END",
        "CREATE TRIGGER members_member_fts_au AFTER UPDATE OF search_text, guild_id ON members_member BEGIN "
        f"INSERT INTO members_member_fts(members_member_fts, rowid, search_text) VALUES ('delete', {old}, old.search_text); "
        f"INSERT INTO members_member_fts(rowid, search_text) VALUES ({new}, new.search_text); END",
    ]


SQLITE_UP = statements("content=''", ROWID)
SQLITE_DOWN = statements("content='members_member', content_rowid='id'", "{row}id")


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0021_member_trigrams_per_guild"),
    ]

    operations = [
        migrations.RunPython(run_for_vendor({"sqlite": SQLITE_UP}), run_for_vendor({"sqlite": SQLITE_DOWN})),
    ]
