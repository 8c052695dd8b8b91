"""GET /healthz tells a load balancer or a monitor whether GuildHub can serve, and what is missing."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_q.models import Schedule

from guildhub.heartbeat import record_bot_heartbeat
from guildhub.models import BotHeartbeat
from tests.factories import make_guild

pytestmark = pytest.mark.django_db


@pytest.fixture
def schedule_due_in():
    """Replace the cluster's schedules by one whose next run is `offset` from now."""

    def make(offset: timedelta) -> Schedule:
        Schedule.objects.all().delete()
        return Schedule.objects.create(
            name="test: every minute",
            func="members.tasks.reap_sync_jobs",
            schedule_type="I",
            minutes=1,
            repeats=-1,
            next_run=timezone.now() + offset,
        )

    return make


def test_web_app_alone_is_healthy_and_says_what_is_not_running(client: Client, schedule_due_in) -> None:
    schedule_due_in(timedelta(hours=-1))

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-cache" in response["Cache-Control"]
    body = response.json()
    assert body["status"] == "ok"
    checks = body["checks"]
    assert checks["database"] == {"ok": True}
    assert checks["broker"] == {"ok": True, "broker": "orm", "queued": 0}
    assert checks["cluster"]["running"] is False and checks["cluster"]["required"] is False
    assert checks["cluster"]["schedules_overdue_seconds"] >= 3600
    assert checks["bot"] == {
        "ok": True,
        "running": False,
        "required": False,
        "shards": 0,
        "stale_shards": [],
        "heartbeat_age_seconds": None,
        "guilds": 0,
    }


def test_bot_that_never_reported_is_unhealthy_when_the_bot_is_required(client: Client, settings) -> None:
    settings.HEALTH_REQUIRE_BOT = True

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"
    assert response.json()["checks"]["bot"]["ok"] is False


def test_stale_bot_heartbeat_is_unhealthy_when_the_bot_is_required(client: Client, settings) -> None:
    settings.HEALTH_REQUIRE_BOT = True
    settings.HEALTH_BOT_MAX_AGE = 120
    record_bot_heartbeat(shard_id=0, latency_ms=40, guild_count=3)
    record_bot_heartbeat(shard_id=1, latency_ms=45, guild_count=2)
    BotHeartbeat.objects.filter(shard_id=1).update(seen_at=timezone.now() - timedelta(seconds=300))

    response = client.get("/healthz")

    assert response.status_code == 503
    bot = response.json()["checks"]["bot"]
    assert (bot["running"], bot["shards"], bot["stale_shards"], bot["guilds"]) == (False, 2, [1], 5)
    assert bot["heartbeat_age_seconds"] >= 300


def test_fresh_bot_heartbeat_is_healthy_when_the_bot_is_required(client: Client, settings) -> None:
    settings.HEALTH_REQUIRE_BOT = True
    record_bot_heartbeat(shard_id=0, latency_ms=40, guild_count=3, session="abc")
    record_bot_heartbeat(shard_id=0, latency_ms=42, guild_count=4, session="abc")

    response = client.get("/healthz")

    assert response.status_code == 200
    bot = response.json()["checks"]["bot"]
    assert (bot["running"], bot["shards"], bot["guilds"]) == (True, 1, 4)
    assert BotHeartbeat.objects.get().latency_ms == 42


def test_overdue_schedules_are_unhealthy_when_the_cluster_is_required(
    client: Client, settings, schedule_due_in
) -> None:
    settings.HEALTH_REQUIRE_CLUSTER = True
    settings.HEALTH_CLUSTER_MAX_LAG = 300
    schedule_due_in(timedelta(minutes=-10))

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["cluster"]["ok"] is False


def test_schedules_on_time_mean_a_cluster_is_running(client: Client, settings, schedule_due_in) -> None:
    settings.HEALTH_REQUIRE_CLUSTER = True
    schedule_due_in(timedelta(seconds=-20))

    response = client.get("/healthz")

    assert response.status_code == 200
    cluster = response.json()["checks"]["cluster"]
    assert cluster["running"] is True and cluster["clusters_seen"] is None  # stats are per process without Redis


def test_without_schedules_a_required_cluster_does_not_fail_health(client: Client, settings) -> None:
    settings.HEALTH_REQUIRE_CLUSTER = True
    Schedule.objects.all().delete()

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["checks"]["cluster"]["running"] is None


def test_stale_guilds_are_listed_but_do_not_make_health_fail(client: Client) -> None:
    now = timezone.now()
    late = make_guild(last_synced_at=now - timedelta(minutes=61), sync_interval=timedelta(minutes=30))
    never = make_guild(last_synced_at=None)
    make_guild(last_synced_at=now - timedelta(minutes=59), sync_interval=timedelta(minutes=30))
    make_guild(last_synced_at=None, sync_enabled=False)
    make_guild(last_synced_at=None, is_active=False)

    response = client.get("/healthz")

    assert response.status_code == 200
    guilds = response.json()["checks"]["guilds"]
    assert guilds == {"ok": True, "stale_guilds": 2, "stale_guild_ids": [str(never.pk), str(late.pk)]}


def test_stale_guild_list_is_capped_at_20_ids(client: Client) -> None:
    for _ in range(25):
        make_guild(last_synced_at=None)

    guilds = client.get("/healthz").json()["checks"]["guilds"]

    assert guilds["stale_guilds"] == 25
    assert len(guilds["stale_guild_ids"]) == 20
