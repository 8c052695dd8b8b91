"""Shell pages that belong to no single app."""

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "guildhub/home.html", {"api_base": settings.DISCORD_API_BASE})


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness of the parts this process can see; 503 when one is down."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = {"ok": True}
    except Exception as exc:  # any driver error means the database is unusable
        checks["database"] = {"ok": False, "error": exc.__class__.__name__}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse({"status": "ok" if healthy else "unhealthy", "checks": checks}, status=200 if healthy else 503)
