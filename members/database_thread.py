"""The one thread, and database connection, that a sync run writes through.

Both sync engines keep their queries off the event loop and in order on one
connection: a page or batch is written while the loop receives the next. The
connection is the sync's own, set up for bulk writes (services.prepare_sync_connection)
before its first query; when the run ends it merges the search index entries its writes
left pending (services.finish_sync_connection) and closes with the thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from django.db import connections

from members import services

T = TypeVar("T")


class DatabaseThread:
    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._prepared = False  # read and set in the thread only

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Queue `fn(*args)` for the thread; a concurrent.futures Future (for waiting outside a loop)."""
        return self._executor.submit(self._call, fn, *args)

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue `fn(*args)` for the thread; awaitable from the event loop."""
        return asyncio.wrap_future(self.submit(fn, *args))

    async def close(self) -> None:
        """Merge what the run left pending in the search indexes, close the connection, end the thread."""
        try:
            await asyncio.wrap_future(self._executor.submit(self._finish))
        finally:
            self._executor.shutdown(wait=True)

    def _finish(self) -> None:
        if self._prepared:
            services.finish_sync_connection()
        connections.close_all()

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if not self._prepared:
            services.prepare_sync_connection()
            self._prepared = True
        return fn(*args)
