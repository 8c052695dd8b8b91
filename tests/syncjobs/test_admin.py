"""The sync runs' admin: a read-only history with progress, and a Cancel action."""

from datetime import timedelta

import pytest
from django.utils import timezone

from syncjobs.models import SyncJob
from tests.factories import finished_job, make_guild, make_job

pytestmark = pytest.mark.django_db

JOBS = "/admin/syncjobs/syncjob/"
S = SyncJob.Status


def cancel(client, *jobs: SyncJob) -> list[str]:
    response = client.post(JOBS, {"action": "cancel", "_selected_action": [j.pk for j in jobs]}, follow=True)
    assert response.status_code == 200
    return [str(message) for message in response.context["messages"]]


def test_job_list_shows_progress_rate_and_counters_without_a_query_per_row(admin_client, django_assert_max_num_queries):
    guild = make_guild(name="Busy Guild")
    make_job(
        guild,
        status=S.RUNNING,
        started_at=timezone.now() - timedelta(seconds=10),
        processed=500,
        expected=1000,
        api_calls=7,
        rate_limit_hits=3,
        retries=2,
    )
    for _ in range(30):
        finished_job(make_guild(), processed=10)

    with django_assert_max_num_queries(8):
        response = admin_client.get(JOBS)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 31
    content = response.content.decode()
    assert "Busy Guild" in content and "500 / 1,000" in content and "50%" in content


def test_job_list_filters_by_status_kind_and_trigger(admin_client):
    guild = make_guild()
    failed = finished_job(guild, status=S.FAILED, trigger=SyncJob.Trigger.CLI)
    finished_job(guild, kind=SyncJob.Kind.CHANNELS)

    by_status = admin_client.get(JOBS, {"status__exact": "failed"})
    by_kind = admin_client.get(JOBS, {"kind__exact": "channels"})
    by_trigger = admin_client.get(JOBS, {"trigger__exact": "cli"})

    assert [j.pk for j in by_status.context["cl"].result_list] == [failed.pk]
    assert [j.kind for j in by_kind.context["cl"].result_list] == ["channels"]
    assert [j.pk for j in by_trigger.context["cl"].result_list] == [failed.pk]


def test_cancel_stops_a_queued_run_at_once(admin_client):
    job = make_job(make_guild(), status=S.QUEUED)

    messages = cancel(admin_client, job)

    job.refresh_from_db()
    assert job.status == S.CANCELLED and job.finished_at is not None
    assert messages == [f"Sync #{job.pk} cancelled."]


def test_cancel_asks_a_running_run_to_stop_after_its_page(admin_client):
    job = make_job(make_guild(), status=S.RUNNING, started_at=timezone.now())

    messages = cancel(admin_client, job)

    job.refresh_from_db()
    assert (job.status, job.cancel_requested) == (S.RUNNING, True)
    assert messages == [f"Sync #{job.pk} stops after its current page."]


def test_cancel_leaves_finished_runs_alone(admin_client):
    done = finished_job(make_guild())
    queued = make_job(make_guild(), status=S.QUEUED)

    messages = cancel(admin_client, done, queued)

    done.refresh_from_db()
    assert done.status == S.SUCCEEDED and not done.cancel_requested
    assert messages == [f"Sync #{queued.pk} cancelled.", "1 run(s) had already ended; left as they were."]


def test_jobs_are_read_only_and_not_added_by_hand(admin_client):
    job = make_job(make_guild(), status=S.RUNNING, processed=5)

    view = admin_client.get(f"{JOBS}{job.pk}/change/")
    edit = admin_client.post(f"{JOBS}{job.pk}/change/", {"processed": "0"})

    assert view.status_code == 200 and b'name="_save"' not in view.content
    assert edit.status_code == 403
    assert admin_client.get(f"{JOBS}add/").status_code == 403
    job.refresh_from_db()
    assert job.processed == 5
