"""The member sync engine: Discord's member list streamed into the cache, page by page.

One run claims its SyncJob with a lease, pages through `GET /guilds/{id}/members`
(ascending user id, `after` cursor), writes each page in one batched upsert and
saves its checkpoint with it. Because pages cover contiguous id ranges, the
present members in a page's range that the page lacks have left; they are kept
as pending departures and marked departed only when the pass completes.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime

from asgiref.sync import sync_to_async
from django.db import transaction
from django.utils import timezone

from guildhub.discord.clients import rest_client
from guildhub.discord.errors import DiscordError
from guildhub.discord.guilds import GuildReader, MemberData
from guildhub.discord.ratelimit import RequestStats, current_stats
from guildhub.discord.retry import RetryPolicy
from members import services
from members.models import Guild
from syncjobs import services as jobs
from syncjobs.models import PendingDeparture, SyncJob

log = logging.getLogger(__name__)

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

    # -- database steps (run in a worker thread) ---------------------------

    def _write_page(self, page: list[MemberData], low: int, high: int | None) -> None:
        now = timezone.now()
        guild_id = self.guild.id
        seen = {m.user_id for m in page}
        with transaction.atomic():
            missing = services.present_user_ids_between(guild_id, low, high) - seen
            if missing:
                PendingDeparture.objects.bulk_create(
                    [PendingDeparture(job=self.job, user_id=uid) for uid in missing], ignore_conflicts=True
                )
            known = services.existing_user_ids(guild_id, seen)
            written = services.upsert_members(guild_id, page, now=now)
            job = self.job
            job.processed += len(page)
            job.created_count += len(written - known)
            job.updated_count += len(written & known)
            job.checkpoint = {
                **job.checkpoint,
                "after": str(page[-1].user_id) if page else job.checkpoint.get("after", "0"),
                "processed": job.processed,
            }
            self._copy_stats()
            jobs.save_progress(job, PROGRESS_FIELDS)

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

    async def run(self) -> SyncJob:
        deadline = self.clock() + self.guild.sync_time_budget.total_seconds()
        stats_token = current_stats.set(self.stats)
        try:
            async with rest_client(self.token, self.api_base) as client:
                reader = GuildReader(client, self.guild.id, policy=self.policy, on_retry=self._on_retry)
                await sync_to_async(self._start)(await reader.guild())
                await sync_to_async(services.upsert_roles)(self.guild, await reader.roles())
                pass_started_at = datetime.fromisoformat(self.job.checkpoint["pass_started_at"])
                after = int(self.job.checkpoint.get("after") or 0)
                limit = self.guild.sync_page_size
                while True:
                    if self.clock() >= deadline:
                        await sync_to_async(self._fail)(SyncJob.Status.PARTIAL, "time budget used; resumes next run")
                        return self.job
                    if await sync_to_async(self._cancel_requested)():
                        await sync_to_async(self._fail)(SyncJob.Status.CANCELLED, "cancelled")
                        return self.job
                    page = await reader.member_page(after=after, limit=limit)
                    last = len(page) < limit
                    await sync_to_async(self._write_page)(page, after, None if last else page[-1].user_id)
                    if self.progress:
                        self.progress(self.job)
                    if last:
                        break
                    after = page[-1].user_id
                await sync_to_async(self._complete)(pass_started_at)
                if self.progress:
                    self.progress(self.job)
                return self.job
        except jobs.LeaseLost:
            log.warning("sync job %s: lease lost, another worker continues it", self.job.pk)
            return self.job
        except DiscordError as exc:
            await sync_to_async(self._fail)(SyncJob.Status.FAILED, str(exc))
            return self.job
        except Exception as exc:
            log.exception("sync job %s failed", self.job.pk)
            await sync_to_async(self._fail)(SyncJob.Status.FAILED, f"{exc.__class__.__name__}: {exc}")
            return self.job
        finally:
            current_stats.reset(stats_token)


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
