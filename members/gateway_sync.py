"""The gateway strategy: a whole guild streamed by REQUEST_GUILD_MEMBERS chunks.

The fastest way to fill the cache for a large guild: Discord pushes chunks of
up to 1000 members over the bot's existing connection, with no REST pages and
no per-page rate limit. Chunks are written by the run's database threads (one
on SQLite, several on PostgreSQL: members.database_writers) while the socket
keeps reading; when writes fall behind, the reader waits for them, so memory
stays bounded whatever the guild's size. Chunks come in no particular order, so
departures are computed at the end from the ids seen (8 bytes each).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import threading
from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future

import discord
from asgiref.sync import sync_to_async
from django.db import connections, transaction
from django.utils import timezone

from guildhub.discord.guilds import READ_ERRORS, UnreadablePayload, member_from_json
from guildhub.discord.rawevents import install_raw_handler, request_all_members
from members import services
from members.database_writers import DatabaseWriters, Turn
from members.garbage_collection import fewer_collections
from members.models import Guild, Member
from members.sync import PROGRESS_FIELDS, Progress, worker_name
from syncjobs import services as jobs
from syncjobs.models import SyncJob

log = logging.getLogger(__name__)

# Chunks written in one transaction. Every commit has a fixed cost (SQLite's WAL
# pages and FTS5 segments, PostgreSQL's WAL flush), so one per chunk made the
# commits a large share of a big guild's sync. Twenty (20,000 members, about a
# second of a big sync) keep the progress fresh and the memory small: at most
# two batches are in memory, about 25 MB.
CHUNKS_PER_TRANSACTION = 20
# A chunk's members as the database thread gets them: prepared (True), or Discord's objects as sent (False).
Chunk = tuple[list, bool]


class ChunkedMemberSync:
    """One gateway member-sync run of one job, over an already connected client."""

    def __init__(
        self, job: SyncJob, client: discord.Client, *, progress: Progress | None = None, idle_timeout: float = 60.0
    ) -> None:
        self.job = job
        self.guild_id = job.guild_id
        self.client = client
        self.progress = progress
        self.idle_timeout = idle_timeout
        self.refusal: str | None = None
        self.failure: BaseException | None = None  # set in the socket reader, raised in run
        self.nonce = secrets.token_hex(8)
        self.seen = array("q")
        self.received = 0
        self.chunk_count: int | None = None
        self.done = asyncio.Event()
        # Batches handed to the writers before the socket reader waits for them: one each.
        self.db = DatabaseWriters(f"chunks-{self.guild_id}")
        self.in_flight: deque[Future] = deque()
        self.pending: list[Chunk] = []  # chunks received, not yet handed to the writers
        self.pending_ids: list[int] = []  # their members' user ids
        self.progress_lock = threading.Lock()
        self.started_at = timezone.now()
        self.vendor = connections["default"].vendor
        self.rows_in_reader = True  # whether on_chunk builds rows: set by _plan, then by each batch

    # -- in the database thread ------------------------------------------

    def _write_chunks(self, turn: Turn, chunks: list[Chunk]) -> None:
        now = timezone.now()
        job = self.job
        with transaction.atomic():
            batch = services.WriteResult(0, 0, 0)
            for members, prepared in chunks:
                write = services.write_prepared if prepared else services.write_from_json
                batch += write(self.guild_id, members, now=now)
            self.rows_in_reader = batch.mostly_written
            turn.wait()  # the job's counters follow the batches' order
            job.processed += sum(len(members) for members, _ in chunks)
            job.created_count += batch.created
            job.updated_count += batch.updated
            jobs.save_progress(job, ["processed", "created_count", "updated_count"])
        if self.progress:
            with self.progress_lock:
                self.progress(job)

    def _plan(self) -> None:
        self.job.expected = Guild.objects.get(pk=self.guild_id).approximate_member_count
        # Members already cached: a re-sync, where nearly everyone is unchanged. The reader then
        # hands chunks over as sent from the start, and the first batch says if that was wrong.
        self.rows_in_reader = not Member.objects.filter(guild_id=self.guild_id, departed_at__isnull=True).exists()

    def _complete(self) -> None:
        """Mark departed the present members no chunk mentioned, then finish the job."""
        now = timezone.now()
        present = Member.objects.filter(guild_id=self.guild_id, departed_at__isnull=True).order_by("user_id")
        missing = list(_unseen(present.values_list("user_id", flat=True).iterator(chunk_size=5000), sorted(self.seen)))
        with transaction.atomic():
            self.job.departed_count = services.mark_departed(
                self.guild_id, missing, seen_before=self.started_at, now=now
            )
            Guild.objects.filter(pk=self.guild_id).update(last_synced_at=now)
            jobs.finish(self.job, SyncJob.Status.SUCCEEDED, fields=[*PROGRESS_FIELDS, "departed_count"])

    # -- in the event loop -----------------------------------------------

    def on_chunk(self, data: dict) -> bool:
        """The raw chunk parser: take our chunks, hand them to the database thread.

        It runs in discord.py's socket reader, where an exception would end the connection and
        leave the run waiting out its idle timeout: a chunk that cannot be read, or a write that
        failed, ends the run at once with what went wrong (self.failure).
        """
        if data.get("nonce") != self.nonce or str(data.get("guild_id")) != str(self.guild_id):
            return False
        if self.failure is not None:
            return True
        try:
            batch = self._take(data)
        except READ_ERRORS as exc:
            self.failure = UnreadablePayload(f"Discord sent a member chunk GuildHub cannot read ({exc!r}).")
            self.done.set()
            return True
        try:
            if batch is not None:
                chunks, user_ids = batch
                self.in_flight.append(self.db.submit_in_turn(self._write_chunks, chunks, keys=user_ids))
                # Backpressure: wait for the database rather than buffer the guild in memory.
                while len(self.in_flight) > self.db.count:
                    self.in_flight.popleft().result()
        except Exception as exc:  # the write's own error, raised again in run
            self.failure = exc
            self.done.set()
            return True
        if self.received >= self.chunk_count:
            self.done.set()
        return True

    def _take(self, data: dict) -> tuple[list[Chunk], list[int]] | None:
        """Count the chunk in and keep its members; the batch to write, once there is one."""
        raw = data.get("members", [])
        if self.rows_in_reader:
            # A first sync: rows built here, in the socket reader, so the database thread only runs SQL.
            members = services.prepare_members((member_from_json(m) for m in raw), self.vendor)
            seen = [m.user_id for m in members]
            chunk: Chunk = (members, True)
        else:
            # A re-sync: the database thread compares digests and parses only the changed few.
            seen = [int(m["user"]["id"]) for m in raw]
            chunk = (raw, False)
        chunk_count = int(data.get("chunk_count", 1))
        # Only a chunk read whole counts: nothing of a bad one is kept.
        self.seen.extend(seen)
        self.pending.append(chunk)
        if self.db.count > 1:  # see DatabaseWriters.submit_in_turn
            self.pending_ids.extend(seen)
        self.received += 1
        self.chunk_count = chunk_count
        if len(self.pending) >= CHUNKS_PER_TRANSACTION or self.received >= self.chunk_count:
            batch = (self.pending, self.pending_ids)
            self.pending, self.pending_ids = [], []
            return batch
        return None

    def on_rate_limited(self, data: dict) -> bool:
        """Discord refused our member request (one full list per guild every 30 s): give up at once."""
        meta = data.get("meta") or {}
        if data.get("opcode") != 8 or meta.get("nonce") != self.nonce:
            return False
        retry_after = float(data.get("retry_after") or 0)
        self.refusal = (
            "Discord allows one full member list per guild every 30 seconds and refused this one: "
            f"try again in {retry_after:.0f} s (or sync over REST)."
        )
        self.done.set()
        return True

    async def _wait_for_chunks(self) -> None:
        """Until the last chunk, failing after `idle_timeout` seconds without a new one."""
        seen = -1
        while not self.done.is_set():
            if self.received == seen:
                raise TimeoutError(f"no member chunk arrived for {self.idle_timeout:.0f} s")
            seen = self.received
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.done.wait(), self.idle_timeout)

    async def _drain(self, *, errors: bool = True) -> None:
        """Wait for the batches in flight, oldest first; the first failed write raises (if `errors`)."""
        loop = asyncio.get_running_loop()
        while self.in_flight:
            written = asyncio.wrap_future(self.in_flight.popleft(), loop=loop)
            if errors:
                await written
            else:
                await asyncio.gather(written, return_exceptions=True)

    async def run(self) -> SyncJob:
        with fewer_collections():  # a million members are millions of short-lived objects
            return await self._run()

    async def _run(self) -> SyncJob:
        uninstallers = [
            install_raw_handler(self.client, "GUILD_MEMBERS_CHUNK", self.on_chunk),
            install_raw_handler(self.client, "RATE_LIMITED", self.on_rate_limited),
        ]
        try:
            await self.db.run(self._plan)
            await request_all_members(self.client, self.guild_id, nonce=self.nonce)
            await self._wait_for_chunks()
            if self.failure is not None:
                raise self.failure
            await self._drain()
            if self.refusal:
                await self.db.run(
                    lambda: jobs.finish(self.job, SyncJob.Status.FAILED, message=self.refusal, fields=PROGRESS_FIELDS)
                )
                return self.job
            await self.db.run(self._complete)
            return self.job
        except jobs.LeaseLost:
            log.warning("gateway sync job %s: lease lost", self.job.pk)
            return self.job
        except Exception as exc:
            log.exception("gateway sync job %s failed", self.job.pk)
            message = str(exc) or exc.__class__.__name__
            await self._drain(errors=False)  # what is stored stays counted; then the job ends
            await self.db.run(
                lambda: jobs.finish(self.job, SyncJob.Status.FAILED, message=message, fields=PROGRESS_FIELDS)
            )
            return self.job
        finally:
            for uninstall in uninstallers:
                uninstall()
            await self.db.close()


async def run_chunked_member_sync(
    job_id: int, client: discord.Client, *, owner: str | None = None, progress: Progress | None = None
) -> SyncJob:
    """Claim job `job_id` and stream the guild's members over `client`'s gateway connection."""
    job = await sync_to_async(jobs.claim)(job_id, owner or worker_name())
    if job is None:
        return await sync_to_async(SyncJob.objects.select_related("guild").get)(pk=job_id)
    return await ChunkedMemberSync(job, client, progress=progress).run()


async def sync_members_over_gateway(
    job_id: int, *, token: str | None = None, progress: Progress | None = None, connect_timeout: float = 60.0
) -> SyncJob:
    """Connect a gateway client just for this run (CLI, benchmarks), stream the guild, disconnect."""
    from guildhub.discord.clients import bot_token, build_gateway_client
    from guildhub.discord.errors import translate

    guild_id = await sync_to_async(lambda: SyncJob.objects.values_list("guild_id", flat=True).get(pk=job_id))()
    client = build_gateway_client()
    arrival = GuildArrival(client, guild_id)
    runner = asyncio.create_task(client.start(bot_token(token)))
    ready = asyncio.create_task(arrival.wait())
    try:
        finished, _ = await asyncio.wait({runner, ready}, timeout=connect_timeout, return_when=asyncio.FIRST_COMPLETED)
        if ready not in finished:
            error = runner.exception() if runner in finished else TimeoutError("gateway not ready in time")
            message = str(translate(error)) if isinstance(error, discord.DiscordException) else str(error)
            if isinstance(error, discord.PrivilegedIntentsRequired):
                message = (
                    "The gateway refused the Server Members intent (4014): enable it in the Discord Developer "
                    "Portal → your application → Bot → Privileged Gateway Intents."
                )
            job = await sync_to_async(SyncJob.objects.select_related("guild").get)(pk=job_id)
            await sync_to_async(jobs.finish)(job, SyncJob.Status.FAILED, message=message)
            return job
        return await run_chunked_member_sync(job_id, client, progress=progress)
    finally:
        arrival.uninstall()
        ready.cancel()
        await client.close()
        if not runner.done():
            runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


def _unseen(ids: Iterable[int], seen: Iterable[int]) -> Iterator[int]:
    """The ids of `ids` not in `seen`, both ascending: one pass over each (a million in 0.4 s, half a bisect's time)."""
    following = iter(seen)
    next_seen = next(following, None)
    for user_id in ids:
        while next_seen is not None and next_seen < user_id:
            next_seen = next(following, None)
        if next_seen != user_id:
            yield user_id


class GuildArrival:
    """When a client just started can ask for one guild's members: made before the client starts.

    The guild's GUILD_CREATE follows READY at once; discord.py's own "ready" then waits
    guild_ready_timeout (2 s) for more guilds. A client made for one guild needs only that one.
    """

    def __init__(self, client: discord.Client, guild_id: int) -> None:
        self.client = client
        self.guild_id = str(guild_id)
        self.arrived = asyncio.Event()
        self.uninstall = install_raw_handler(client, "GUILD_CREATE", self._on_guild_create)

    def _on_guild_create(self, data: dict) -> bool:
        if str(data.get("id")) == self.guild_id and not data.get("unavailable"):
            self.arrived.set()
        return False  # discord.py handles it as usual

    async def wait(self) -> None:
        await _first(self.client.wait_until_ready(), self.arrived.wait())


async def _first(*waits) -> None:
    """Return when the first of `waits` (coroutines) is done; cancel the others."""
    tasks = [asyncio.ensure_future(wait) for wait in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
