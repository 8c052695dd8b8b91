"""How much the search's GIN indexes let new entries pile up before merging them (PostgreSQL).

A GIN index first appends new entries to a pending list, and the session whose write
takes the list past its `gin_pending_list_limit` merges the whole list into the
index. Merging more at a time costs less per entry: it is most of what a member write
costs the server. But every search reads the whole pending list until it is merged:
4.4 MB of it (8000 members) took the 1M benchmark's 5+ character searches from 4.8 to
8.1 ms at the median, 8.8 to 16.9 ms at p95.

So each kind of writer gets its own limit, which is why the indexes carry none of their
own (migration 0020: an index's setting would override every session's):

- every connection Django opens leaves at most MEMBER_SEARCH_PENDING_LIST_KB (1 MB):
  live member events and small writes keep the list short between merges;
- a sync's own connections let it grow to MEMBER_SYNC_PENDING_LIST_KB (8 MB), with
  MEMBER_SYNC_WORK_MEM_KB for the merge (a merge gathers the list's entries in work_mem;
  a list bigger than that is merged in several passes), and merge what is left when the
  run ends, so the search stops paying for it at once. A 1M-member gateway sync: 75-85
  server CPU s at 1 MB, 59-66 at 8 MB (see bench/RESULTS.md). Searches during a big
  sync read up to 8 MB of list: beside a cached 1M-member guild, its searches' median
  went from 7-8 ms to 14-15 ms while a 1M first sync ran.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper

from members.models import Member

log = logging.getLogger(__name__)

# Every GIN index of the member table that this session's role may clean (the owner's
# right, as for VACUUM); the others are left to autovacuum and later writes.
_MERGE_SQL = """
    SELECT coalesce(sum(gin_clean_pending_list(index_class.oid)), 0)
    FROM pg_index
    JOIN pg_class AS index_class ON index_class.oid = pg_index.indexrelid
    JOIN pg_am ON pg_am.oid = index_class.relam
    WHERE pg_index.indrelid = %s::regclass AND pg_am.amname = 'gin'
      AND pg_has_role(index_class.relowner, 'USAGE')
"""


def limit_for_connection(sender: type, connection: BaseDatabaseWrapper, **kwargs: object) -> None:
    """connection_created receiver: a new PostgreSQL connection writes with the search's limit."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('gin_pending_list_limit', %s, false)", [f"{settings.MEMBER_SEARCH_PENDING_LIST_KB}kB"]
        )


def prepare_bulk_writes(connection: BaseDatabaseWrapper) -> None:
    """Let this (sync's own) connection's writes pile up more before merging, with room to merge."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('gin_pending_list_limit', %s, false), set_config('work_mem', %s, false)",
            [f"{settings.MEMBER_SYNC_PENDING_LIST_KB}kB", f"{settings.MEMBER_SYNC_WORK_MEM_KB}kB"],
        )


def merge_pending_entries(connection: BaseDatabaseWrapper) -> int:
    """Merge the member indexes' pending lists into the indexes; the pages merged (0 elsewhere).

    Never raises for the database: a run calls it as it ends, and its outcome is already
    recorded. A list left behind costs the searches a little until the next write or
    autovacuum merges it.
    """
    if connection.vendor != "postgresql":
        return 0
    try:
        with connection.cursor() as cursor:
            cursor.execute(_MERGE_SQL, [Member._meta.db_table])
            (pages,) = cursor.fetchone()
    except DatabaseError:
        log.warning("could not merge the member search indexes' pending lists", exc_info=True)
        return 0
    return int(pages)
