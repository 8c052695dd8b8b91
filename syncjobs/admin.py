"""Admin for sync runs: a read-only history with progress, and a Cancel action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from guildhub.pagination import EstimatedCountPaginator
from syncjobs import services as jobs
from syncjobs.models import SyncJob


@admin.register(SyncJob)
class SyncJobAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "guild",
        "kind",
        "status",
        "trigger",
        "processed_of_expected",
        "progress_percent",
        "rate_per_second",
        "api_calls",
        "rate_limit_hits",
        "retries",
        "created_at",
    )
    list_filter = ("status", "kind", "trigger")
    list_select_related = ("guild",)
    # Served by the syncjob_created index, newest first.
    sortable_by = ("id", "created_at")
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    actions = ("cancel",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # runs are started from a guild (its admin actions), the CLI, the dashboard or the bot

    def has_change_permission(self, request: HttpRequest, obj: SyncJob | None = None) -> bool:
        # Read-only: saving the form would write stale counters over a running worker's.
        return False

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("syncjobs.change_syncjob")

    @admin.display(description="processed")
    def processed_of_expected(self, job: SyncJob) -> str:
        return f"{job.processed:,} / {job.expected:,}" if job.expected is not None else f"{job.processed:,}"

    @admin.display(description="progress")
    def progress_percent(self, job: SyncJob) -> str:
        return f"{job.progress:.0%}" if job.progress is not None else "-"

    @admin.display(description="per second")
    def rate_per_second(self, job: SyncJob) -> str:
        return f"{job.rate:,.1f}" if job.rate is not None else "-"

    @admin.action(
        description="Cancel (a queued run at once, a running one after its current page)", permissions=["cancel"]
    )
    def cancel(self, request: HttpRequest, queryset: QuerySet[SyncJob]) -> None:
        ended = queryset.exclude(status__in=SyncJob.ACTIVE).count()
        for job in queryset.filter(status__in=SyncJob.ACTIVE):
            job = jobs.cancel(job)
            if job.status == SyncJob.Status.CANCELLED:
                self.message_user(request, f"Sync #{job.pk} cancelled.", messages.SUCCESS)
            elif job.status == SyncJob.Status.RUNNING:
                self.message_user(request, f"Sync #{job.pk} stops after its current page.", messages.SUCCESS)
            else:
                self.message_user(request, f"Sync #{job.pk} had already ended: {job.status}.", messages.WARNING)
        if ended:
            self.message_user(request, f"{ended} run(s) had already ended; left as they were.", messages.WARNING)
