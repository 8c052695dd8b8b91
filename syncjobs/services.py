"""The life of a sync run: request (or join), claim with a lease, progress, finish, reap."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from members.models import Guild
from syncjobs.models import PendingDeparture, SyncJob

log = logging.getLogger(__name__)

RESUMABLE = (SyncJob.Status.PARTIAL, SyncJob.Status.FAILED, SyncJob.Status.CANCELLED)


class LeaseLost(Exception):
    """Another worker holds the run now (our lease expired); stop without writing."""


def active_job(guild: Guild, kind: str) -> SyncJob | None:
    return SyncJob.objects.filter(guild=guild, kind=kind, status__in=SyncJob.ACTIVE).first()


def resumable_checkpoint(guild: Guild, kind: str) -> tuple[dict, SyncJob | None]:
    """The checkpoint an unfinished earlier pass left, if the latest run did not finish it."""
    latest = SyncJob.objects.filter(guild=guild, kind=kind).exclude(status__in=SyncJob.ACTIVE).first()
    if latest is None or latest.status not in RESUMABLE or not latest.checkpoint.get("after"):
        return {}, None
    return {**latest.checkpoint, "resumed_from": latest.pk}, latest


def request_sync(
    *,
    guild: Guild,
    trigger: str,
    kind: str = SyncJob.Kind.MEMBERS,
    requested_by: str = "",
    full: bool = False,
    strategy: str = "rest",
) -> tuple[SyncJob, bool]:
    """Queue a run, or return the one already queued or running (created is False then)."""
    existing = active_job(guild, kind)
    if existing is not None:
        return existing, False
    checkpoint, previous = ({}, None) if full else resumable_checkpoint(guild, kind)
    try:
        with transaction.atomic():
            job = SyncJob.objects.create(
                guild=guild,
                kind=kind,
                trigger=trigger,
                requested_by=requested_by[:150],
                full=full,
                strategy=strategy,
                checkpoint=checkpoint,
                processed=checkpoint.get("processed", 0),
            )
            if previous is not None:
                # The unfinished pass goes on: so do the members it did not see.
                PendingDeparture.objects.filter(job=previous).update(job=job)
    except IntegrityError:
        # Another request won the race; the database allows one active run.
        existing = active_job(guild, kind)
        if existing is None:
            raise
        return existing, False
    return job, True


def claim(job_id: int, owner: str) -> SyncJob | None:
    """Take the run for `owner` if it is queued or its lease expired; None if someone holds it."""
    now = timezone.now()
    claimable = Q(status=SyncJob.Status.QUEUED) | Q(status=SyncJob.Status.RUNNING, lease_expires_at__lt=now)
    taken = SyncJob.objects.filter(claimable, pk=job_id).update(
        status=SyncJob.Status.RUNNING,
        lease_owner=owner,
        lease_expires_at=now + timedelta(seconds=settings.SYNC_LEASE_SECONDS),
        heartbeat_at=now,
        started_at=Coalesce("started_at", now),
    )
    return SyncJob.objects.select_related("guild").get(pk=job_id) if taken else None


def save_progress(job: SyncJob, fields: list[str]) -> None:
    """Save the run's progress and renew its lease, if it is still ours."""
    now = timezone.now()
    values = {f: getattr(job, f) for f in fields}
    values.update(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=settings.SYNC_LEASE_SECONDS))
    if not SyncJob.objects.filter(pk=job.pk, lease_owner=job.lease_owner, status=SyncJob.Status.RUNNING).update(
        **values
    ):
        raise LeaseLost(f"sync job {job.pk} is no longer held by {job.lease_owner}")
    job.heartbeat_at, job.lease_expires_at = values["heartbeat_at"], values["lease_expires_at"]


def finish(job: SyncJob, status: str, *, message: str = "", fields: list[str] | None = None) -> SyncJob:
    job.status = status
    job.finished_at = timezone.now()
    job.error_message = message[:5000]
    job.lease_owner = ""
    job.lease_expires_at = None
    update = ["status", "finished_at", "error_message", "lease_owner", "lease_expires_at", *(fields or [])]
    SyncJob.objects.filter(pk=job.pk).update(**{f: getattr(job, f) for f in update})
    return job


def cancel_requested(job: SyncJob) -> bool:
    return SyncJob.objects.filter(pk=job.pk, cancel_requested=True).exists()


def cancel(job: SyncJob) -> SyncJob:
    """Stop a run: a queued one at once, a running one between two pages."""
    with transaction.atomic():
        job = SyncJob.objects.select_for_update().get(pk=job.pk)
        if job.status == SyncJob.Status.QUEUED:
            job.status, job.finished_at = SyncJob.Status.CANCELLED, timezone.now()
            job.save(update_fields=["status", "finished_at"])
        elif job.status == SyncJob.Status.RUNNING:
            job.cancel_requested = True
            job.save(update_fields=["cancel_requested"])
    return job


def reap_expired_leases(now=None) -> list[int]:
    """Hand runs whose worker died back to the queue; returns their ids."""
    now = now or timezone.now()
    expired = list(
        SyncJob.objects.filter(status=SyncJob.Status.RUNNING, lease_expires_at__lt=now).values_list("pk", flat=True)
    )
    if expired:
        SyncJob.objects.filter(pk__in=expired, status=SyncJob.Status.RUNNING, lease_expires_at__lt=now).update(
            status=SyncJob.Status.QUEUED, lease_owner="", lease_expires_at=None
        )
        log.warning("re-queued sync jobs whose lease expired: %s", expired)
    return expired


def stale_queued_jobs(older_than: timedelta = timedelta(minutes=5)) -> list[int]:
    """Queued runs nobody picked up (a broker that lost the task)."""
    return list(
        SyncJob.objects.filter(status=SyncJob.Status.QUEUED, created_at__lt=timezone.now() - older_than).values_list(
            "pk", flat=True
        )
    )
