"""Who may manage which guild in the dashboard: superusers all, others what they were granted."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django_htmx.http import HttpResponseClientRedirect

from members.models import Guild

SNOWFLAKE_MAX = 2**63 - 1


def guilds_for(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Guild]:
    """The guilds `user` may see: all for an active superuser, the granted ones for other active users."""
    if not (user.is_authenticated and user.is_active):
        return Guild.objects.none()
    if user.is_superuser:
        return Guild.objects.all()
    return Guild.objects.filter(grants__user=user)


def parse_guild_id(raw: object) -> int | None:
    """The guild id in `raw` (an int or a string of digits), or None when it cannot be a Discord id."""
    if isinstance(raw, int):
        value = raw
    else:
        text = str(raw)
        if not (text.isascii() and text.isdigit()) or len(text) > 20:
            return None
        value = int(text)
    return value if 0 < value <= SNOWFLAKE_MAX else None


def get_guild_for_user_or_404(user: AbstractBaseUser | AnonymousUser, guild_id: object) -> Guild:
    """The guild, if `user` may see it; the same 404 for unknown, malformed and not-granted ids.

    A 403 for "exists, but not yours" would tell anyone which guild ids GuildHub holds.
    """
    parsed = parse_guild_id(guild_id)
    guild = None if parsed is None else guilds_for(user).filter(pk=parsed).first()
    if guild is None:
        raise Http404("No such guild.")
    return guild


def login_required_htmx(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """`login_required`, except that an htmx request sends the whole page to the login page.

    A plain redirect would be followed by htmx and the login form swapped into a
    fragment (a picker's listbox, the sync panel).
    """

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated and getattr(request, "htmx", False):
            page = request.htmx.current_url_abs_path or "/"
            return HttpResponseClientRedirect(redirect_to_login(page).url)
        return login_required(view)(request, *args, **kwargs)

    return wrapper
