"""Sync runs of every kind, with the lease that keeps them one at a time."""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils import timezone


class SyncJob(models.Model):
    """One run of a sync (members now; channels and roles use the same table).

    Progress bars, status APIs and the admin read this row; the engine writes its
    checkpoint here after every page so any later run can resume from it.
    """

    class Kind(models.TextChoices):
        MEMBERS = "members"
        CHANNELS = "channels"
        ROLES = "roles"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        DASHBOARD = "dashboard"
        ADMIN = "admin"
        CLI = "cli"
        BOT = "bot"
        API = "api"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        PARTIAL = "partial"
        FAILED = "failed"
        CANCELLED = "cancelled"

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    guild = models.ForeignKey("members.Guild", on_delete=models.CASCADE, related_name="sync_jobs")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.MEMBERS)
    strategy = models.CharField(max_length=16, default="rest", help_text="rest pages or gateway chunks")
    full = models.BooleanField(default=False, help_text="ignore earlier checkpoints")
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    requested_by = models.CharField(max_length=150, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)

    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    # Who holds the run and until when: a killed worker's lease expires and the
    # reaper hands the run to another.
    lease_owner = models.CharField(max_length=100, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)

    processed = models.PositiveIntegerField(default=0)
    expected = models.PositiveIntegerField(null=True, blank=True)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    departed_count = models.PositiveIntegerField(default=0)
    checkpoint = models.JSONField(default=dict, blank=True)
    api_calls = models.PositiveIntegerField(default=0)
    rate_limit_hits = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    error_message = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The database, not the code, guarantees one active run per guild and kind.
            models.UniqueConstraint(
                fields=["guild", "kind"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_active_sync_per_guild_and_kind",
            ),
        ]
        indexes = [
            models.Index(fields=["guild", "kind", "-created_at"], name="syncjob_guild_kind_recent"),
            models.Index(fields=["status", "lease_expires_at"], name="syncjob_status_lease"),
            # Newest first across guilds (the admin's list) and the statistics' last-24-hours window.
            models.Index(fields=["created_at", "id"], name="syncjob_created"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} sync of {self.guild_id} #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    @property
    def duration(self) -> timedelta | None:
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    @property
    def rate(self) -> float | None:
        """Items per second over the run so far."""
        duration = self.duration
        if not duration or duration.total_seconds() <= 0:
            return None
        return self.processed / duration.total_seconds()

    @property
    def progress(self) -> float | None:
        """0..1 when the expected total is known."""
        if not self.expected:
            return None
        return min(1.0, self.processed / self.expected)

    @property
    def eta(self) -> timedelta | None:
        rate, progress = self.rate, self.progress
        if not rate or progress is None or not self.expected:
            return None
        return timedelta(seconds=max(0, self.expected - self.processed) / rate)


class PendingDeparture(models.Model):
    """A member a sync pass did not see; marked departed only if the pass completes."""

    job = models.ForeignKey(SyncJob, on_delete=models.CASCADE, related_name="pending_departures")
    user_id = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "user_id"], name="pending_departure_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} (job {self.job_id})"
