"""JSON APIs about syncs: a guild's sync status, and statistics over all runs."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from guildhub.apiauth import api_login_required, json_error
from members.models import Guild
from syncjobs import selectors

SNOWFLAKE_MAX = 2**63 - 1


def can_watch_syncs(user: AbstractBaseUser, guild: Guild | None = None) -> bool:
    """Who may read sync status and statistics (of `guild`, or of all guilds when None).

    Staff for now; per-guild grants will widen this, here and only here.
    """
    return user.is_active and (user.is_staff or user.is_superuser)


def forbidden() -> JsonResponse:
    return json_error(403, "you may not see sync status")


@require_GET
@api_login_required
def sync_status(request: HttpRequest, guild_id: str) -> JsonResponse:
    guild = None
    if guild_id.isascii() and guild_id.isdigit() and len(guild_id) <= 20 and int(guild_id) <= SNOWFLAKE_MAX:
        guild = Guild.objects.filter(pk=int(guild_id)).first()
    if guild is None:
        return json_error(404, f"no guild with id {guild_id[:30]!r}")
    if not can_watch_syncs(request.user, guild):
        return forbidden()
    return JsonResponse(selectors.guild_sync_status(guild))


@require_GET
@api_login_required
def stats(request: HttpRequest) -> JsonResponse:
    if not can_watch_syncs(request.user):
        return forbidden()
    return JsonResponse(selectors.sync_statistics())
