"""JSON APIs about syncs: a guild's sync status, and statistics over all runs."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from guildhub.apiauth import api_login_required, json_error
from members.access import guilds_for, parse_guild_id
from members.models import Guild
from syncjobs import selectors


def can_watch_syncs(user: AbstractBaseUser, guild: Guild | None = None) -> bool:
    """Who may read sync status (of `guild`) and statistics (over all guilds, when None).

    Staff see everything; a user granted a guild (members.access) sees that guild's status.
    """
    if not user.is_active:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return guild is not None and guilds_for(user).filter(pk=guild.pk).exists()


def forbidden() -> JsonResponse:
    return json_error(403, "you may not see sync status")


@require_GET
@api_login_required
def sync_status(request: HttpRequest, guild_id: str) -> JsonResponse:
    parsed = parse_guild_id(guild_id)
    guild = Guild.objects.filter(pk=parsed).first() if parsed is not None else None
    if guild is None or not can_watch_syncs(request.user, guild):
        # The same answer for "no such guild" and "not yours": existence is not leaked.
        return json_error(404, f"no guild with id {guild_id[:30]!r}")
    return JsonResponse(selectors.guild_sync_status(guild))


@require_GET
@api_login_required
def stats(request: HttpRequest) -> JsonResponse:
    if not can_watch_syncs(request.user):
        return forbidden()
    return JsonResponse(selectors.sync_statistics())
