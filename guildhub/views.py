"""Pages that belong to no single app (the dashboard is in guildhub.dashboard)."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from guildhub.health import health_report


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The health of every part of GuildHub (see guildhub.health); 503 when one is down."""
    report = health_report()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
