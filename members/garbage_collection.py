"""The cyclic garbage collector's pace while member syncs run.

A sync allocates millions of short-lived containers: discord.py's decoded pages and
chunks (a dict per member and per user, lists of roles) and our rows. Reference
counting frees all of them; none is part of a cycle. Python's collector still counts
them, and at its default first threshold of 700 it runs a young collection every
few members and, every few hundred thousand allocations, a full one that walks every
object the process holds (Django's, discord.py's, the bot's caches).

That was 6-10 of the 27-32 CPU seconds a 1M-member gateway sync cost the syncing
process (bench/RESULTS.md). While any sync runs, the process collects young objects
every BULK_THRESHOLD allocations instead; the thresholds come back when the last
sync ends. Garbage in cycles still goes, only in bigger, rarer batches.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Young collections every 50k allocations instead of 700, and each older generation collected
# after twice as many of the younger's: a few MB of cyclic garbage at most between collections.
BULK_THRESHOLD = (50_000, 20, 100)

_lock = threading.Lock()
_running = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the collector's thresholds to BULK_THRESHOLD for the block; nested and concurrent uses share it.

    Thresholds someone set higher already are kept. The bot runs several guilds' syncs
    at once, so the first to start saves the thresholds and the last to end restores them.
    """
    global _running, _saved
    with _lock:
        if _running == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(*(max(bulk, current) for bulk, current in zip(BULK_THRESHOLD, _saved, strict=True)))
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                _saved = None
