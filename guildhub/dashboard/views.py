"""Dashboard pages. Each serves the full page, or for htmx the partial that refreshes itself."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Count, OuterRef, Subquery
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from members.access import get_guild_for_user_or_404, guilds_for, login_required_htmx
from members.forms import ContactMemberForm
from members.models import Guild, Member
from members.selectors import member_hit
from members.tasks import queue_member_sync
from syncjobs.models import SyncJob

RECENT_JOBS = 10
JOB_ID_MAX = 2**63 - 1


def guild_health(guild: Guild, latest_status: str | None) -> tuple[str, str]:
    """(css key, words) for how the guild's member cache is doing."""
    if latest_status in SyncJob.ACTIVE:
        return "syncing", "Syncing"
    if not guild.is_active:
        return "inactive", "Bot not in guild"
    if latest_status == SyncJob.Status.FAILED:
        return "failed", "Last sync failed"
    if guild.last_synced_at is None:
        return "never", "Never synced"
    if guild.is_stale():
        return "stale", "Stale"
    return "fresh", "Fresh"


@require_GET
@login_required_htmx
def guild_list(request: HttpRequest) -> HttpResponse:
    # Per guild: one count over the (guild, departed_at) index and the latest run's status.
    cached = (
        Member.objects.filter(guild=OuterRef("pk"), departed_at__isnull=True)
        .order_by()
        .values("guild")
        .annotate(n=Count("pk"))
        .values("n")
    )
    latest = SyncJob.objects.filter(guild=OuterRef("pk"), kind=SyncJob.Kind.MEMBERS).order_by("-created_at", "-id")
    guilds = list(
        guilds_for(request.user).annotate(
            cached_members=Subquery(cached), latest_status=Subquery(latest.values("status")[:1])
        )
    )
    for guild in guilds:
        guild.health, guild.health_label = guild_health(guild, guild.latest_status)
    return render(request, "dashboard/guild_list.html", {"guilds": guilds})


def sync_panel(guild: Guild, notice: str = "") -> dict[str, Any]:
    """The sync panel's context: the current (or latest) member sync and the recent runs."""
    recent = list(SyncJob.objects.filter(guild=guild, kind=SyncJob.Kind.MEMBERS)[:RECENT_JOBS])
    # The newest run is the active one if any is: the database allows no new run while one is active.
    job = recent[0] if recent else None
    return {"guild": guild, "job": job, "recent_jobs": recent, "notice": notice}


@require_http_methods(["GET", "POST"])
@login_required_htmx
def guild_detail(request: HttpRequest, guild_id: str) -> HttpResponse:
    guild = get_guild_for_user_or_404(request.user, guild_id)
    if request.htmx and request.method == "GET":
        # The sync panel polls this page while a run is active.
        return render(request, "dashboard/partials/sync_panel.html", sync_panel(guild))
    if request.method == "POST":
        form = ContactMemberForm(request.POST, guild=guild)
        if form.is_valid():
            member = form.save()
            messages.success(request, f"Saved: {member}" if member else "Saved: no contact member.")
            return redirect("dashboard:guild", guild.pk)
    else:
        form = ContactMemberForm(guild=guild)
    contact = member_hit(guild.pk, guild.contact_member_id) if guild.contact_member_id else None
    context = {**sync_panel(guild), "form": form, "contact": contact}
    return render(request, "dashboard/guild.html", context)


@require_POST
@login_required_htmx
def guild_sync(request: HttpRequest, guild_id: str) -> HttpResponse:
    """Sync now: queue a member sync, or say which one is already queued or running."""
    guild = get_guild_for_user_or_404(request.user, guild_id)
    if not guild.is_active:
        notice = "The bot is not in this guild: there is nothing to sync."
    else:
        job, created = queue_member_sync(
            guild, trigger=SyncJob.Trigger.DASHBOARD, requested_by=request.user.get_username()
        )
        notice = f"Member sync #{job.pk} queued." if created else f"Member sync #{job.pk} is already {job.status}."
    if request.htmx:
        return render(request, "dashboard/partials/sync_panel.html", sync_panel(guild, notice))
    messages.info(request, notice)
    return redirect("dashboard:guild", guild.pk)


@require_GET
@login_required_htmx
def job_detail(request: HttpRequest, job_id: str) -> HttpResponse:
    job = None
    if job_id.isascii() and job_id.isdigit() and len(job_id) <= 19 and int(job_id) <= JOB_ID_MAX:
        job = SyncJob.objects.select_related("guild").filter(pk=int(job_id), guild__in=guilds_for(request.user)).first()
    if job is None:
        raise Http404("No such sync job.")
    template = "dashboard/partials/job_status.html" if request.htmx else "dashboard/job.html"
    return render(request, template, {"job": job, "guild": job.guild})
