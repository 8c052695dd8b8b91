"""GET /api/guilds/<id>/sync-status: how fresh a guild's member cache is, and its current sync."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from guildhub.models import ApiToken
from syncjobs.models import SyncJob
from tests.factories import finished_job, make_guild, make_job, make_members

pytestmark = pytest.mark.django_db


def status_url(guild_id) -> str:
    return f"/api/guilds/{guild_id}/sync-status"


@pytest.fixture
def guild():
    guild = make_guild(name="Status Guild", last_synced_at=None)
    make_members(guild, 3)
    make_members(guild, 1, start=100, departed_at=timezone.now())
    return guild


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("moderator", is_staff=True))
    return client


def make_token(user, name="monitor") -> str:
    token = ApiToken(user=user, name=name)
    key = token.set_new_key()
    token.save()
    return key


def test_anonymous_caller_gets_401_json_not_a_login_redirect(client, guild):
    response = client.get(status_url(guild.pk))

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "error" in response.json()


def test_a_user_without_a_grant_gets_404_as_if_the_guild_did_not_exist(client, guild, django_user_model):
    client.force_login(django_user_model.objects.create_user("someone"))

    response = client.get(status_url(guild.pk))

    assert response.status_code == 404
    assert "error" in response.json()


def test_a_user_granted_the_guild_sees_its_status_but_not_global_statistics(client, guild, django_user_model):
    from members.models import GuildAccess

    moderator = django_user_model.objects.create_user("moderator")
    GuildAccess.objects.create(user=moderator, guild=guild)
    client.force_login(moderator)

    assert client.get(status_url(guild.pk)).status_code == 200
    assert client.get("/api/stats").status_code == 403


def test_bearer_token_authenticates_and_records_its_use(client, guild, admin_user):
    key = make_token(admin_user)

    response = client.get(status_url(guild.pk), HTTP_AUTHORIZATION=f"Bearer {key}")

    assert response.status_code == 200
    assert ApiToken.objects.get().last_used_at is not None


@pytest.mark.parametrize(
    "header", ["Bearer gh_wrong", "Bearer ", "Token {key}", "Bearer {key}x", "{key}", "Bearer " + "x" * 5000]
)
def test_wrong_or_malformed_bearer_token_gets_401(client, guild, admin_user, header):
    key = make_token(admin_user)

    response = client.get(status_url(guild.pk), HTTP_AUTHORIZATION=header.format(key=key))

    assert response.status_code == 401


def test_a_wrong_token_is_refused_even_with_a_valid_session(staff_client, guild):
    response = staff_client.get(status_url(guild.pk), HTTP_AUTHORIZATION="Bearer gh_wrong")

    assert response.status_code == 401


def test_token_of_a_deactivated_user_gets_401(client, guild, django_user_model):
    user = django_user_model.objects.create_user("gone", is_staff=True)
    key = make_token(user)
    user.is_active = False
    user.save()

    assert client.get(status_url(guild.pk), HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 401


@pytest.mark.parametrize("guild_id", ["123456789012345678", "abc", "12abc", "-1", "99999999999999999999", "1" * 40])
def test_unknown_or_malformed_guild_id_gets_404_json(staff_client, guild, guild_id):
    response = staff_client.get(status_url(guild_id))

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "error" in response.json()


def test_only_get_is_allowed(staff_client, guild):
    assert staff_client.post(status_url(guild.pk)).status_code == 405


def test_status_of_a_guild_never_synced_without_a_job(staff_client, guild):
    body = staff_client.get(status_url(guild.pk)).json()

    assert body == {
        "guild_id": str(guild.pk),
        "name": "Status Guild",
        "cached_members": 3,
        "departed_members": 1,
        "last_synced_at": None,
        "stale": True,
        "running": False,
        "job": None,
    }


def test_status_during_a_running_sync_shows_its_progress_rate_and_eta(staff_client, guild):
    finished_job(guild, processed=4)
    running = make_job(
        guild,
        status=SyncJob.Status.RUNNING,
        trigger=SyncJob.Trigger.DASHBOARD,
        started_at=timezone.now() - timedelta(seconds=10),
        processed=500,
        expected=1000,
        api_calls=5,
        rate_limit_hits=1,
        retries=2,
    )

    body = staff_client.get(status_url(guild.pk)).json()

    assert body["running"] is True
    job = body["job"]
    assert job["id"] == str(running.pk)
    assert (job["status"], job["trigger"], job["processed"], job["expected"]) == ("running", "dashboard", 500, 1000)
    assert job["progress"] == 0.5
    assert 45 <= job["rate"] <= 50
    assert 9 <= job["eta_seconds"] <= 11
    assert (job["api_calls"], job["rate_limit_hits"], job["retries"], job["error"]) == (5, 1, 2, None)
    assert abs(datetime.fromisoformat(job["started_at"]) - running.started_at) < timedelta(milliseconds=1)


def test_status_after_a_finished_sync_shows_the_latest_job(staff_client, guild):
    synced_at = timezone.now() - timedelta(minutes=5)
    guild.last_synced_at = synced_at
    guild.save()
    finished_job(guild, status=SyncJob.Status.FAILED, error_message="older")
    latest = finished_job(guild, seconds=20, processed=4, expected=4, api_calls=2)

    body = staff_client.get(status_url(guild.pk)).json()

    assert (body["stale"], body["running"]) == (False, False)
    assert abs(datetime.fromisoformat(body["last_synced_at"]) - synced_at) < timedelta(milliseconds=1)
    job = body["job"]
    assert (job["id"], job["status"], job["progress"], job["eta_seconds"], job["error"]) == (
        str(latest.pk),
        "succeeded",
        1.0,
        None,
        None,
    )
    assert job["rate"] == 0.2


def test_a_failed_sync_reports_its_error(staff_client, guild):
    finished_job(guild, status=SyncJob.Status.FAILED, error_message="Discord answered 403: Missing Access")

    job = staff_client.get(status_url(guild.pk)).json()["job"]

    assert (job["status"], job["error"]) == ("failed", "Discord answered 403: Missing Access")
