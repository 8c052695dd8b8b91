"""Several database threads that write a sync's pages at once and commit them in order.

On PostgreSQL the server's work per member (above all the search's GIN indexes)
is what bounds a big sync, and one connection uses one server core. A run hands
its pages to MEMBER_SYNC_WRITERS threads, each with its own connection: their
writes overlap, but each transaction waits for its turn before it saves the
run's progress and commits. Commits therefore land in the order the pages were
handed over, so a checkpoint saved with a page never runs ahead of a page that
is not stored, and a write that fails rolls back every page after it.

SQLite takes one writer at a time for the whole database, so a run there has
one thread, as before.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Collection
from concurrent.futures import Future
from typing import Any, TypeVar

from django.conf import settings
from django.db import connections

from members.database_thread import DatabaseThread

T = TypeVar("T")


class EarlierWriteFailed(RuntimeError):
    """A write handed over before this one failed: this one must not commit (it would leave a gap)."""


def writer_count(vendor: str | None = None) -> int:
    """How many writers a sync run gets: MEMBER_SYNC_WRITERS on PostgreSQL, one on SQLite."""
    if (vendor or connections["default"].vendor) == "sqlite":
        return 1
    return max(1, settings.MEMBER_SYNC_WRITERS)


class Turn:
    """One ordered write's place in line: `wait()` inside its transaction, just before it saves progress."""

    def __init__(self, writers: DatabaseWriters, ticket: int) -> None:
        self._writers = writers
        self.ticket = ticket

    def wait(self) -> None:
        """Until every write handed over before this one has committed; EarlierWriteFailed if one failed."""
        self._writers._wait_for_turn(self.ticket)


class DatabaseWriters:
    """A run's database threads: `run` for one-off steps, `run_in_turn` for writes that commit in order."""

    def __init__(self, name: str, count: int | None = None) -> None:
        self.count = count or writer_count()
        self._threads = [DatabaseThread(f"{name}-{i}" if self.count > 1 else name) for i in range(self.count)]
        self._tickets = itertools.count()
        self._settled = threading.Condition()
        self._next_unsettled = 0  # every ticket below it has committed or failed
        self._done: set[int] = set()  # settled tickets at or above _next_unsettled
        self._failed: int | None = None  # the first ticket that failed
        self._keys: dict[int, Collection[int]] = {}  # unsettled tickets' user ids, see _in_turn

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """`fn(*args)` on the first thread, outside the order (planning, finishing the run)."""
        return self._threads[0].run(fn, *args)

    def submit_in_turn(self, fn: Callable[..., T], *args: Any, keys: Collection[int] = ()) -> Future[T]:
        """`fn(turn, *args)` on the next thread: fn calls `turn.wait()` in its transaction before committing.

        `keys` are the user ids fn writes. A write that shares one with a write still in
        flight waits for its turn before it starts: otherwise it could wait for that
        write's row lock while the other waits, in Python, for it to commit.
        """
        ticket = next(self._tickets)
        with self._settled:
            self._keys[ticket] = keys
        thread = self._threads[ticket % self.count]
        future = thread.submit(self._in_turn, ticket, fn, *args)
        # Cancelled before it started (its awaiting task was cancelled): it will never take its
        # turn, so it counts as failed rather than leave the writes after it waiting for ever.
        future.add_done_callback(lambda done: done.cancelled() and self._settle(ticket, committed=False))
        return future

    def run_in_turn(self, fn: Callable[..., T], *args: Any, keys: Collection[int] = ()) -> asyncio.Future[T]:
        """submit_in_turn, awaitable from the event loop."""
        return asyncio.wrap_future(self.submit_in_turn(fn, *args, keys=keys))

    async def close(self) -> None:
        """Close every thread's connection and end the threads, after whatever was handed over."""
        errors = await asyncio.gather(*(thread.close() for thread in self._threads), return_exceptions=True)
        for error in errors:
            if isinstance(error, BaseException):
                raise error

    # -- in the writer threads -----------------------------------------------

    def _in_turn(self, ticket: int, fn: Callable[..., T], *args: Any) -> T:
        committed = False
        try:
            if self._shares_keys_with_earlier(ticket):
                self._wait_for_turn(ticket)
            result = fn(Turn(self, ticket), *args)
            committed = True
            return result
        finally:
            self._settle(ticket, committed)

    def _shares_keys_with_earlier(self, ticket: int) -> bool:
        with self._settled:
            keys = self._keys[ticket]
            if not keys:
                return False
            earlier = [self._keys[t] for t in self._keys if t < ticket]
        mine = keys if isinstance(keys, (set, frozenset)) else set(keys)
        return any(not mine.isdisjoint(other) for other in earlier)

    def _wait_for_turn(self, ticket: int) -> None:
        with self._settled:
            self._settled.wait_for(
                lambda: self._next_unsettled >= ticket or (self._failed is not None and self._failed < ticket)
            )
            if self._failed is not None and self._failed < ticket:
                raise EarlierWriteFailed("an earlier page's write failed, so this one was rolled back")

    def _settle(self, ticket: int, committed: bool) -> None:
        with self._settled:
            self._keys.pop(ticket, None)
            if not committed and (self._failed is None or ticket < self._failed):
                self._failed = ticket
            self._done.add(ticket)
            while self._next_unsettled in self._done:
                self._done.remove(self._next_unsettled)
                self._next_unsettled += 1
            self._settled.notify_all()
