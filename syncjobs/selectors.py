"""Reads about sync runs: a guild's sync status and the statistics over all runs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db.models import BigIntegerField, Count, Q, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from members.models import Guild, Member
from syncjobs.models import SyncJob

# Finished runs that count for the success rate; cancelled ones were someone's choice.
FINISHED = (SyncJob.Status.SUCCEEDED, SyncJob.Status.PARTIAL, SyncJob.Status.FAILED)


def current_member_sync(guild: Guild) -> SyncJob | None:
    """The guild's member sync that is queued or running, else its latest."""
    runs = SyncJob.objects.filter(guild=guild, kind=SyncJob.Kind.MEMBERS)
    return runs.filter(status__in=SyncJob.ACTIVE).first() or runs.first()


def job_summary(job: SyncJob) -> dict[str, Any]:
    progress, rate, eta = job.progress, job.rate, job.eta
    return {
        "id": str(job.pk),
        "kind": job.kind,
        "status": job.status,
        "trigger": job.trigger,
        "processed": job.processed,
        "expected": job.expected,
        "progress": None if progress is None else round(progress, 4),
        "rate": None if rate is None else round(rate, 1),
        "eta_seconds": round(eta.total_seconds()) if eta is not None and job.is_active else None,
        "api_calls": job.api_calls,
        "rate_limit_hits": job.rate_limit_hits,
        "retries": job.retries,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "error": job.error_message or None,
    }


def guild_sync_status(guild: Guild, now: datetime | None = None) -> dict[str, Any]:
    """How fresh the guild's member cache is, and its current (or latest) member sync.

    `running` is true while a member sync is queued or running. The two counts
    are index range scans on (guild, departed_at).
    """
    job = current_member_sync(guild)
    members = Member.objects.filter(guild=guild)
    return {
        "guild_id": str(guild.pk),
        "name": guild.name,
        "cached_members": members.present().count(),
        "departed_members": members.departed().count(),
        "last_synced_at": guild.last_synced_at,
        "stale": guild.is_stale(now),
        "running": job is not None and job.is_active,
        "job": job_summary(job) if job is not None else None,
    }


def sync_totals(runs: QuerySet[SyncJob]) -> dict[str, Any]:
    """Counts and sums over `runs`, in one aggregate query.

    A run that resumes an unfinished pass starts from that pass's count, so a
    pass's members are counted on its last run only.
    """
    resumed = (
        SyncJob.objects.filter(checkpoint__has_key="resumed_from")
        .annotate(earlier=Cast(KeyTextTransform("resumed_from", "checkpoint"), BigIntegerField()))
        .values("earlier")
    )
    by_status = {status: Count("pk", filter=Q(status=status)) for status in SyncJob.Status.values}
    totals = runs.aggregate(
        runs=Count("pk"),
        **by_status,
        api_calls=Sum("api_calls", default=0),
        rate_limit_hits=Sum("rate_limit_hits", default=0),
        retries=Sum("retries", default=0),
        members_processed=Sum("processed", filter=Q(kind=SyncJob.Kind.MEMBERS) & ~Q(pk__in=resumed), default=0),
    )
    finished = sum(totals[status] for status in FINISHED)
    not_failed = finished - totals[SyncJob.Status.FAILED]
    return {
        "runs": totals["runs"],
        "by_status": {status: totals[status] for status in SyncJob.Status.values},
        "success_rate": round(not_failed / finished, 4) if finished else None,
        "api_calls": totals["api_calls"],
        "rate_limit_hits": totals["rate_limit_hits"],
        "retries": totals["retries"],
        "members_processed": totals["members_processed"],
    }


def sync_statistics(now: datetime | None = None) -> dict[str, Any]:
    """Totals over every sync run, and over the runs created in the last 24 hours."""
    now = now or timezone.now()
    return {
        "generated_at": now,
        "all_time": sync_totals(SyncJob.objects.all()),
        "last_24h": sync_totals(SyncJob.objects.filter(created_at__gte=now - timedelta(hours=24))),
    }
