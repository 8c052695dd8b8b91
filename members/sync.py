"""The member sync engine: Discord's member list streamed into the cache, page by page.

One run claims its SyncJob with a lease, pages through `GET /guilds/{id}/members`
(ascending user id, `after` cursor), writes each page in one batched upsert and
saves its checkpoint with it. Because pages cover contiguous id ranges, the
present members in a page's range that the page lacks have left; they are kept
as pending departures and marked departed only when the pass completes.

Fetching and writing overlap: the run's database threads write the pages
before page n + 1 while the event loop fetches it, so a page costs the slower
of the two rather than their sum. SQLite has one writer; PostgreSQL has
MEMBER_SYNC_WRITERS (members.database_writers), whose writes overlap each other
too, and at most that many pages plus one are in memory. The checkpoint is saved
in the transaction that writes its page, and those transactions commit in page
order, so it never runs ahead of what is stored.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from asgiref.sync import sync_to_async
from django.db import connections, transaction
from django.utils import timezone

from guildhub.discord.clients import rest_client
from guildhub.discord.errors import DiscordError
from guildhub.discord.guilds import GuildReader, MemberData
from guildhub.discord.ratelimit import RequestStats, current_stats
from guildhub.discord.retry import RetryPolicy
from members import services
from members.database_writers import DatabaseWriters, EarlierWriteFailed, Turn
from members.garbage_collection import fewer_collections
from members.models import Guild
from syncjobs import services as jobs
from syncjobs.models import PendingDeparture, SyncJob

log = logging.getLogger(__name__)

# Seconds a page write waits on SQLite for the next page's request to take its
# rate-limit slot (see MemberSync._until_sent); longer means the request is
# waiting for its bucket, and the write goes ahead.
SLOT_PATIENCE = 0.02

Progress = Callable[[SyncJob], None]

PROGRESS_FIELDS = [
    "processed",
    "expected",
    "created_count",
    "updated_count",
    "checkpoint",
    "api_calls",
    "rate_limit_hits",
    "retries",
]


@dataclass(frozen=True, slots=True)
class Page:
    """One page as Discord sent it, and its members prepared for the write (one per user)."""

    members: list[MemberData]
    prepared: list[services.PreparedMember]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class MemberSync:
    """One REST member-sync run of one job."""

    def __init__(
        self,
        job: SyncJob,
        *,
        progress: Progress | None = None,
        clock: Callable[[], float] = time.monotonic,
        policy: RetryPolicy | None = None,
        token: str | None = None,
        api_base: str | None = None,
    ) -> None:
        self.job = job
        self.guild: Guild = job.guild
        self.progress = progress
        self.clock = clock
        self.policy = policy or RetryPolicy.from_settings()
        self.token = token
        self.api_base = api_base
        self.stats = RequestStats()
        # Counts from earlier attempts of this job (a lease taken over after a crash).
        self.base_api_calls, self.base_rate_limit_hits = job.api_calls, job.rate_limit_hits
        # Every query of the run goes through these threads (one on SQLite), never the event loop:
        # pages are written while the event loop fetches the next, and commit in page order.
        self.db = DatabaseWriters(f"member-sync-{job.pk}")
        self.db_vendor = connections["default"].vendor
        self.rows_in_loop = True  # see _write_page

    # -- database steps (run in the run's database thread) -------------------

    def _write_page(self, turn: Turn, page: Page, low: int, high: int | None) -> bool:
        """Store one page with its checkpoint, after the pages before it; returns whether the run should stop."""
        now = timezone.now()
        guild_id = self.guild.id
        seen = {m.user_id for m in page.members}
        with transaction.atomic():
            missing = services.present_user_ids_between(guild_id, low, high) - seen
            if missing:
                PendingDeparture.objects.bulk_create(
                    [PendingDeparture(job=self.job, user_id=uid) for uid in missing], ignore_conflicts=True
                )
            result = services.write_prepared(guild_id, page.prepared, now=now)
            turn.wait()  # the job's counters and checkpoint follow the pages' order
            job = self.job
            job.processed += len(page.members)
            job.created_count += result.created
            job.updated_count += result.updated
            job.checkpoint = {
                **job.checkpoint,
                "after": str(page.members[-1].user_id) if page.members else job.checkpoint.get("after", "0"),
                "processed": job.processed,
            }
            self._copy_stats()
            jobs.save_progress(job, PROGRESS_FIELDS)
        self.rows_in_loop = result.mostly_written  # see _fetch_page
        return jobs.cancel_requested(job)

    def _copy_stats(self) -> None:
        self.job.api_calls = self.base_api_calls + self.stats.api_calls
        self.job.rate_limit_hits = self.base_rate_limit_hits + self.stats.rate_limit_hits

    def _complete(self, pass_started_at: datetime) -> None:
        now = timezone.now()
        job = self.job
        with transaction.atomic():
            pending = PendingDeparture.objects.filter(job=job).values_list("user_id", flat=True)
            job.departed_count = services.mark_departed(self.guild.id, pending, seen_before=pass_started_at, now=now)
            PendingDeparture.objects.filter(job=job).delete()
            Guild.objects.filter(pk=self.guild.pk).update(last_synced_at=now)
            job.checkpoint = {**job.checkpoint, "complete": True}
            self._copy_stats()
            jobs.finish(job, SyncJob.Status.SUCCEEDED, fields=[*PROGRESS_FIELDS, "departed_count"])

    def _start(self, info) -> None:
        guild = services.upsert_guild(info)
        self.guild = guild
        job = self.job
        job.expected = info.approximate_member_count
        if not job.checkpoint.get("pass_started_at"):
            job.checkpoint = {**job.checkpoint, "pass_started_at": job.started_at.isoformat(), "after": "0"}
        jobs.save_progress(job, ["expected", "checkpoint"])

    def _fail(self, status: str, message: str) -> None:
        self._copy_stats()
        jobs.finish(self.job, status, message=message, fields=PROGRESS_FIELDS)

    def _cancel_requested(self) -> bool:
        return jobs.cancel_requested(self.job)

    # -- the run -------------------------------------------------------------

    def _on_retry(self, attempt: int, exc: BaseException) -> None:
        self.job.retries += 1
        log.warning("guild %s: retry %s after %s", self.guild.id, attempt, exc.__class__.__name__)

    def _report(self) -> None:
        if self.progress:
            self.progress(self.job)

    async def _fetch_page(self, reader: GuildReader, *, after: int, limit: int) -> Page:
        members = await reader.member_page(after=after, limit=limit)
        # Fingerprints, folded names and row values are computed here, in the event loop,
        # while the database thread writes the previous page with the GIL released.
        prepared = services.prepare_members(members, self.db_vendor, rows=self.rows_in_loop)
        return Page(members, prepared)

    async def _fetch_while_writing(
        self, fetch: Awaitable[Page], write: Callable[[], asyncio.Future[bool]], writes: deque[asyncio.Future[bool]]
    ) -> Page:
        """Start fetching the next page, then start writing the current one (onto `writes`); returns the next page.

        If the fetch fails, the writes in flight are waited for first: the checkpoint
        then stands at the last page stored, and a failed write (or a lost lease) is
        the error the run ends with.
        """
        fetching = asyncio.ensure_future(fetch)
        try:
            if self.db_vendor == "sqlite":
                await self._until_sent(fetching)
            writes.append(write())
        except BaseException:
            await _discard(fetching)
            raise
        return await fetching

    async def _until_sent(self, fetching: asyncio.Future) -> None:
        """Wait until `fetching` has its rate-limit slot (or waits for its bucket, or ended).

        The shared rate limiter takes a request's slot in a write transaction.
        SQLite has one write lock for the whole database: a slot asked for while
        a page is being written waits for that write to commit, so the request
        would go out only after the write and the overlap would be lost. The
        limiter counts a request in `stats.api_calls` once it has its slot.
        """
        calls = self.stats.api_calls
        loop = asyncio.get_running_loop()
        give_up = loop.time() + SLOT_PATIENCE
        while self.stats.api_calls == calls and not fetching.done() and loop.time() < give_up:
            await asyncio.sleep(0.001)

    async def _pass(
        self, reader: GuildReader, after: int, limit: int, deadline: float, writes: deque[asyncio.Future[bool]]
    ) -> tuple[str, str] | None:
        """Fetch and write pages from `after` to the end of the list or the deadline; why the pass ended early.

        At most one page per writer is being written while the next is fetched: the
        writes' turns keep their commits in page order whatever thread finishes first.
        """
        page = await self._fetch_page(reader, after=after, limit=limit)
        while True:
            while len(writes) >= self.db.count:
                if await writes.popleft():
                    return (SyncJob.Status.CANCELLED, "cancelled")  # `page` is not stored
                self._report()
            last = len(page.members) < limit
            high = None if last else page.members[-1].user_id
            # Discord's pages never share a member; one that did would wait for the page before it.
            keys = [m.user_id for m in page.members] if self.db.count > 1 else ()
            write = functools.partial(self.db.run_in_turn, self._write_page, page, after, high, keys=keys)
            if last or self.clock() >= deadline:
                writes.append(write())
                return None if last else (SyncJob.Status.PARTIAL, "time budget used; resumes next run")
            after = high
            page = await self._fetch_while_writing(self._fetch_page(reader, after=after, limit=limit), write, writes)

    async def run(self) -> SyncJob:
        with fewer_collections():  # a million members are millions of short-lived objects
            return await self._run()

    async def _run(self) -> SyncJob:
        deadline = self.clock() + self.guild.sync_time_budget.total_seconds()
        stats_token = current_stats.set(self.stats)
        try:
            async with rest_client(self.token, self.api_base) as client:
                reader = GuildReader(client, self.guild.id, policy=self.policy, on_retry=self._on_retry)
                await self.db.run(self._start, await reader.guild())
                await self.db.run(services.upsert_roles, self.guild, await reader.roles())
                pass_started_at = datetime.fromisoformat(self.job.checkpoint["pass_started_at"])
                after = int(self.job.checkpoint.get("after") or 0)
                limit = self.guild.sync_page_size
                if await self.db.run(self._cancel_requested):
                    await self.db.run(self._fail, SyncJob.Status.CANCELLED, "cancelled")
                    return self.job
                if self.clock() >= deadline:
                    await self.db.run(self._fail, SyncJob.Status.PARTIAL, "time budget used; resumes next run")
                    return self.job
                writes: deque[asyncio.Future[bool]] = deque()  # pages being written, oldest first
                try:
                    stopped = await self._pass(reader, after, limit, deadline, writes)
                    await _await_writes(writes)
                except BaseException as exc:
                    await _await_writes(writes, after=exc)
                    raise
                self._report()
                if stopped:
                    await self.db.run(self._fail, *stopped)
                    return self.job
                await self.db.run(self._complete, pass_started_at)
                self._report()
                return self.job
        except jobs.LeaseLost:
            log.warning("sync job %s: lease lost, another worker continues it", self.job.pk)
            return self.job
        except DiscordError as exc:
            await self.db.run(self._fail, SyncJob.Status.FAILED, str(exc))
            return self.job
        except Exception as exc:
            log.exception("sync job %s failed", self.job.pk)
            await self.db.run(self._fail, SyncJob.Status.FAILED, f"{exc.__class__.__name__}: {exc}")
            return self.job
        finally:
            current_stats.reset(stats_token)
            await self.db.close()


async def _await_writes(writes: deque[asyncio.Future[bool]], *, after: BaseException | None = None) -> None:
    """Wait for every write in flight, oldest first, and raise the first one's error.

    `after`: the error the run is already ending with. A failed write supersedes it,
    unless it is only the consequence of that error (EarlierWriteFailed).
    """
    first: BaseException | None = None
    while writes:
        try:
            await writes.popleft()
        except BaseException as exc:  # raised again below, or superseded by `after`
            first = first or exc
    if first is not None and not (after is not None and isinstance(first, EarlierWriteFailed)):
        raise first


async def _discard(task: asyncio.Future) -> None:
    """Cancel `task` and wait until it has ended, whatever its outcome."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def run_member_sync(
    job_id: int,
    *,
    owner: str | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
    token: str | None = None,
    api_base: str | None = None,
) -> SyncJob:
    """Claim job `job_id` and run it; returns the job as it ended (or as someone else holds it)."""
    job = await sync_to_async(jobs.claim)(job_id, owner or worker_name())
    if job is None:
        return await sync_to_async(SyncJob.objects.select_related("guild").get)(pk=job_id)
    return await MemberSync(job, progress=progress, clock=clock, token=token, api_base=api_base).run()
