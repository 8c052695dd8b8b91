"""GET /api/stats: totals over every sync run and over the last 24 hours."""

from datetime import timedelta

import pytest
from django.utils import timezone

from guildhub.models import ApiToken
from syncjobs.models import SyncJob
from tests.factories import finished_job, make_guild, make_job

pytestmark = pytest.mark.django_db

S = SyncJob.Status


@pytest.fixture
def runs():
    guild, other = make_guild(), make_guild()
    old = finished_job(guild, processed=1000, api_calls=7)
    SyncJob.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    finished_job(guild, processed=100, api_calls=10, rate_limit_hits=1)
    # A pass that used its time budget, then finished by a run resuming it: the
    # resuming run starts from the 50 members the first one processed.
    first = finished_job(guild, status=S.PARTIAL, processed=50, api_calls=3, retries=1, checkpoint={"after": "50"})
    finished_job(guild, processed=120, api_calls=4, checkpoint={"resumed_from": first.pk, "after": "120"})
    finished_job(guild, status=S.FAILED, api_calls=2, rate_limit_hits=2, retries=3)
    finished_job(guild, status=S.CANCELLED, processed=10, api_calls=1)
    finished_job(guild, kind=SyncJob.Kind.CHANNELS, processed=999, api_calls=5)
    make_job(other, status=S.QUEUED)


def test_anonymous_caller_gets_401(client, runs):
    assert client.get("/api/stats").status_code == 401


def test_stats_answer_a_bearer_token(client, runs, admin_user):
    token = ApiToken(user=admin_user, name="grafana")
    key = token.set_new_key()
    token.save()

    assert client.get("/api/stats", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200


def test_stats_count_runs_by_status_and_sum_their_work(admin_client, runs, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):  # the session, its user, two aggregates
        body = admin_client.get("/api/stats").json()

    assert body["last_24h"] == {
        "runs": 7,
        "by_status": {"queued": 1, "running": 0, "succeeded": 3, "partial": 1, "failed": 1, "cancelled": 1},
        "success_rate": 0.8,  # (3 succeeded + 1 partial) of 5 finished; cancelled runs left out
        "api_calls": 25,
        "rate_limit_hits": 3,
        "retries": 4,
        "members_processed": 230,  # 100 + 120 (the resumed pass, once) + 10; channel runs are not members
    }
    all_time = body["all_time"]
    assert (all_time["runs"], all_time["by_status"]["succeeded"]) == (8, 4)
    assert all_time["success_rate"] == round(5 / 6, 4)
    assert (all_time["api_calls"], all_time["members_processed"]) == (32, 1230)
    assert body["generated_at"]


def test_stats_without_any_run_have_no_success_rate(admin_client):
    body = admin_client.get("/api/stats").json()

    assert body["all_time"]["runs"] == 0
    assert body["all_time"]["success_rate"] is None
    assert body["all_time"]["members_processed"] == 0
