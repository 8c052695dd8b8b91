"""HTML endpoints of the member picker."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from members.access import get_guild_for_user_or_404, login_required_htmx
from members.selectors import QueryTooLong, search_members


@require_GET
@login_required_htmx
def member_options(request: HttpRequest, guild_id: str) -> HttpResponse:
    """The picker's options for `?q=`: cache, then Discord live, then departed members (see search_members)."""
    guild = get_guild_for_user_or_404(request.user, guild_id)
    query = request.GET.get("q", "")
    template = "members/partials/member_options.html"
    try:
        result = search_members(guild, query)
    except QueryTooLong as exc:
        return render(request, template, {"error": str(exc)}, status=400)
    # The options get each hit as its JSON dict, ids as strings: Django's template engine
    # finds a dict key at its first try (an attribute only after a failed subscript), and
    # prints a string as it is, where an int goes through number localization. Same HTML,
    # half the rendering time of 25 options (1.8 -> 0.9 ms).
    hits = [hit.to_json() for hit in result.hits]
    return render(request, template, {"result": result, "hits": hits, "query": query.strip()})
