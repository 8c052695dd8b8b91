"""The member JSON API: search and look-up, served from the cache.

`GET /api/guilds/<id>/members?q=&limit=` and `GET /api/guilds/<id>/members/<user_id>`,
for a logged-in session or `Authorization: Bearer <token>`. Ids are strings:
snowflakes exceed JavaScript's safe integers.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.http import require_GET

from guildhub.apiauth import api_login_required, json_error
from members.access import guilds_for, parse_guild_id
from members.models import Guild
from members.selectors import DEFAULT_LIMIT, MAX_QUERY_LENGTH, QueryTooLong, member_hit, search_members


def guild_or_none(request: HttpRequest, guild_id: str) -> Guild | None:
    """The guild if the caller may see it; unknown, malformed and not granted look the same."""
    parsed = parse_guild_id(guild_id)
    return None if parsed is None else guilds_for(request.user).filter(pk=parsed).first()


def not_found() -> JsonResponse:
    return json_error(404, "no such guild")


@require_GET
@api_login_required
def member_search(request: HttpRequest, guild_id: str) -> JsonResponse:
    guild = guild_or_none(request, guild_id)
    if guild is None:
        return not_found()
    raw_limit = request.GET.get("limit", str(DEFAULT_LIMIT))
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
        return json_error(400, "limit must be a whole number from 1 to 100")
    query = request.GET.get("q", "")
    try:
        result = search_members(guild, query, limit=int(raw_limit))
    except QueryTooLong:
        return json_error(400, f"q is too long: search for at most {MAX_QUERY_LENGTH} characters")
    return JsonResponse(
        {
            "guild_id": str(guild.id),
            "query": query.strip(),
            "source": result.source,
            "notice": result.notice,
            "results": [hit.to_json() for hit in result.hits],
        }
    )


@require_GET
@api_login_required
def member_detail(request: HttpRequest, guild_id: str, user_id: str) -> JsonResponse:
    guild = guild_or_none(request, guild_id)
    if guild is None:
        return not_found()
    parsed = parse_guild_id(user_id)  # user ids are snowflakes too
    hit = member_hit(guild.id, parsed) if parsed is not None else None
    if hit is None:
        return json_error(404, "no such member in the cache")
    return JsonResponse(hit.to_json())


app_name = "members-api"

urlpatterns = [
    path("guilds/<str:guild_id>/members", member_search, name="search"),
    path("guilds/<str:guild_id>/members/<str:user_id>", member_detail, name="detail"),
]
