"""Shell pages that belong to no single app."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from guildhub.health import health_report


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "guildhub/home.html", {"api_base": settings.DISCORD_API_BASE})


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """The health of every part of GuildHub (see guildhub.health); 503 when one is down."""
    report = health_report()
    return JsonResponse(report, status=200 if report["status"] == "ok" else 503)
