"""django-q2 entry points for member syncs: thin wrappers around the engine."""

from __future__ import annotations

import logging

from django_q.tasks import async_task

from guildhub.discord.clients import run_async
from members.models import Guild
from members.sync import run_member_sync
from syncjobs import services as jobs
from syncjobs.models import SyncJob

log = logging.getLogger(__name__)

TASK = "members.tasks.run_member_sync_task"


def run_member_sync_task(job_id: int) -> str:
    """Run one queued member sync job in this worker."""
    job = run_async(run_member_sync(job_id))
    return f"job {job.pk}: {job.status} ({job.processed} members)"


def enqueue(job: SyncJob) -> None:
    async_task(TASK, job.pk, task_name=f"member-sync-{job.guild_id}-{job.pk}", group="member-sync")


def queue_member_sync(
    guild: Guild, *, trigger: str, requested_by: str = "", full: bool = False
) -> tuple[SyncJob, bool]:
    """Queue a member sync for the cluster, or return the one already queued or running."""
    job, created = jobs.request_sync(guild=guild, trigger=trigger, requested_by=requested_by, full=full)
    if created:
        enqueue(job)
    return job, created


def enqueue_due_member_syncs() -> int:
    """The schedule's task: queue every guild whose interval has passed."""
    queued = 0
    for guild in Guild.objects.filter(sync_enabled=True, is_active=True):
        if guild.is_sync_due():
            _, created = queue_member_sync(guild, trigger=SyncJob.Trigger.SCHEDULE, requested_by="schedule")
            queued += created
    return queued


def reap_sync_jobs() -> int:
    """The reaper's task: runs whose worker died, and queued runs the broker lost, go back to work."""
    ids = jobs.reap_expired_leases() + jobs.stale_queued_jobs()
    for job in SyncJob.objects.filter(pk__in=ids, kind=SyncJob.Kind.MEMBERS):
        enqueue(job)
    return len(ids)
