"""What /healthz checks: one function per part of GuildHub, each returning a dict with "ok".

The web app alone is healthy: the bot and the worker cluster are reported, and
fail the check only when HEALTH_REQUIRE_BOT / HEALTH_REQUIRE_CLUSTER say this
deployment needs them. Stale guilds are reported, never a failure: a guild
Discord will not sync is not a reason to take the web server out of service.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache
from django.db import connection
from django.db.models import F, Min
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.models import Schedule
from django_q.status import Stat

from guildhub.heartbeat import bot_status
from members.models import Guild

log = logging.getLogger(__name__)

STALE_GUILDS_SHOWN = 20

Check = dict[str, Any]


def check_database() -> Check:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"ok": True}


def check_broker() -> Check:
    """The django-q2 broker answers: Redis to PING, the ORM broker to a query on its table."""
    broker = get_broker()
    kind = "orm" if isinstance(broker, ORM) else type(broker).__name__.lower()
    if not broker.ping():
        return {"ok": False, "broker": kind, "error": "no answer to ping"}
    return {"ok": True, "broker": kind, "queued": broker.queue_size()}


def clusters_seen() -> int | None:
    """Running qclusters, from the stats they publish; None when this process cannot see them.

    With the ORM broker the stats live in Django's cache: a per-process cache
    (the default without Redis) never shows another process's cluster.
    """
    broker = get_broker()
    if isinstance(broker, ORM) and isinstance(broker.cache, LocMemCache | DummyCache | type(None)):
        return None
    return len(Stat.get_all(broker=broker))


def check_cluster(now: datetime) -> Check:
    """Is a qcluster working? Seen in its stats, or its scheduler keeping the schedules on time."""
    oldest = Schedule.objects.exclude(repeats=0).aggregate(oldest=Min("next_run"))["oldest"]
    overdue = max(0.0, (now - oldest).total_seconds()) if oldest else None
    seen = clusters_seen()
    if seen or (overdue is not None and overdue <= settings.HEALTH_CLUSTER_MAX_LAG):
        running = True
    elif seen == 0 or overdue is not None:
        running = False
    else:
        running = None  # nothing to tell by: no schedules, and no stats in sight
    required = settings.HEALTH_REQUIRE_CLUSTER
    return {
        "ok": running is not False or not required,
        "running": running,
        "required": required,
        "clusters_seen": seen,
        "schedules_overdue_seconds": None if overdue is None else round(overdue, 1),
    }


def check_bot(now: datetime) -> Check:
    status = bot_status(now)
    required = settings.HEALTH_REQUIRE_BOT
    return {
        "ok": status.running or not required,
        "running": status.running,
        "required": required,
        "shards": status.shards,
        "stale_shards": status.stale_shards,
        "heartbeat_age_seconds": status.age_seconds,
        "guilds": status.guild_count,
    }


def check_guild_freshness(now: datetime) -> Check:
    """Guilds syncing on schedule whose last complete sync is older than twice their interval."""
    stale = Guild.objects.filter(is_active=True, sync_enabled=True).stale(now)
    shown = stale.order_by(F("last_synced_at").asc(nulls_first=True), "id").values_list("id", flat=True)
    return {
        "ok": True,
        "stale_guilds": stale.count(),
        "stale_guild_ids": [str(guild_id) for guild_id in shown[:STALE_GUILDS_SHOWN]],
    }


def _run(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as exc:  # a check that cannot run is a failed check, whatever the cause
        # /healthz is public: the class name only; the message (hosts, ports) goes to the log.
        log.warning("health check %s failed", name, exc_info=True)
        return {"ok": False, "error": exc.__class__.__name__}


def health_report(now: datetime | None = None) -> dict[str, Any]:
    """Every check, and "ok" only when all of them are."""
    now = now or timezone.now()
    checks = {
        "database": _run("database", check_database),
        "broker": _run("broker", check_broker),
        "cluster": _run("cluster", lambda: check_cluster(now)),
        "bot": _run("bot", lambda: check_bot(now)),
        "guilds": _run("guilds", lambda: check_guild_freshness(now)),
    }
    healthy = all(check["ok"] for check in checks.values())
    return {"status": "ok" if healthy else "unhealthy", "checks": checks}
