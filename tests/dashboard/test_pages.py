"""The dashboard: login, guild list, guild page (contact member, sync panel, Sync now), job detail."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_q.models import OrmQ

from members.models import Guild
from syncjobs.models import SyncJob
from tests.members.picker_data import GUILD_ID, OTHER_GUILD_ID, make_guild, make_user

pytestmark = pytest.mark.django_db

ALICE = 800000000000000001


@pytest.fixture
def guild():
    return make_guild()


@pytest.fixture
def other_guild():
    return make_guild(OTHER_GUILD_ID, "Someone Else's Guild", members=[])


@pytest.fixture
def moderator(guild):
    return make_user("mod", guilds=(guild,))


@pytest.fixture
def mod_client(moderator) -> Client:
    client = Client()
    client.force_login(moderator)
    return client


def job(guild: Guild, **fields) -> SyncJob:
    fields.setdefault("trigger", SyncJob.Trigger.SCHEDULE)
    return SyncJob.objects.create(guild=guild, **fields)


# -- login -----------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", f"/guilds/{GUILD_ID}/", "/jobs/1/"])
def test_anonymous_users_are_sent_to_the_login_page(guild, url):
    response = Client().get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


def test_login_page_logs_in_and_goes_to_the_guild_list(moderator):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and b"Log in" in page.content
    token = page.cookies["csrftoken"].value
    response = client.post(
        "/accounts/login/", {"username": "mod", "password": "pw-for-tests-1", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.get("/").status_code == 200


# -- guild list ------------------------------------------------------------------------


def test_guild_list_shows_granted_guilds_with_members_last_sync_and_health(mod_client, guild, other_guild):
    Guild.objects.filter(pk=guild.pk).update(last_synced_at=timezone.now() - timedelta(minutes=3))
    html = mod_client.get("/").content.decode()
    assert "Picker Guild" in html and "Someone Else" not in html
    assert "3\xa0minutes ago" in html
    assert ">7 members<" in html  # cached
    assert "health-fresh" in html


def test_guild_list_health_says_stale_never_and_syncing(guild, other_guild):
    client = Client()
    client.force_login(make_user("root", superuser=True))
    Guild.objects.filter(pk=guild.pk).update(last_synced_at=timezone.now() - timedelta(hours=2))
    html = client.get("/").content.decode()
    assert "health-stale" in html and "health-never" in html
    job(other_guild, status=SyncJob.Status.RUNNING)
    assert "health-syncing" in client.get("/").content.decode()


def test_guild_list_for_a_user_without_grants_explains(db):
    client = Client()
    client.force_login(make_user("nobody"))
    assert b"Ask an administrator" in client.get("/").content


# -- guild page ------------------------------------------------------------------------


def test_guild_page_has_the_picker_form_and_the_sync_panel(mod_client, guild):
    html = mod_client.get(f"/guilds/{GUILD_ID}/").content.decode()
    assert "Pick a member" in html and 'role="combobox"' in html
    assert "js/member-picker.js" in html and "css/member-picker.css" in html
    assert 'id="sync-panel"' in html and "Sync now" in html


@pytest.mark.parametrize("guild_id", [str(OTHER_GUILD_ID), "123", "abc", "9" * 30, str(2**63), "-1"])
def test_guild_page_is_404_for_unknown_malformed_or_not_granted_ids(mod_client, other_guild, guild_id):
    assert mod_client.get(f"/guilds/{guild_id}/").status_code == 404
    assert mod_client.post(f"/guilds/{guild_id}/", {"member": str(ALICE)}).status_code == 404
    assert mod_client.post(f"/guilds/{guild_id}/sync").status_code == 404


def test_picking_a_member_saves_the_contact_member(mod_client, guild):
    response = mod_client.post(f"/guilds/{GUILD_ID}/", {"member": str(ALICE)}, follow=True)
    assert response.redirect_chain == [(f"/guilds/{GUILD_ID}/", 302)]
    assert "Saved: Alice Liddell (@alice)" in response.content.decode()
    guild.refresh_from_db()
    assert guild.contact_member_id == ALICE
    assert guild.contact_member.username == "alice"


def test_picking_nobody_clears_the_contact_member(mod_client, guild):
    Guild.objects.filter(pk=guild.pk).update(contact_member_id=ALICE)
    response = mod_client.post(f"/guilds/{GUILD_ID}/", {"member": ""}, follow=True)
    assert "Saved: no contact member." in response.content.decode()
    guild.refresh_from_db()
    assert guild.contact_member_id is None


def test_picking_a_stranger_shows_the_error_and_saves_nothing(mod_client, guild):
    response = mod_client.post(f"/guilds/{GUILD_ID}/", {"member": "800000000000000099"})
    assert response.status_code == 200
    assert "is not a member of Picker Guild" in response.content.decode()
    guild.refresh_from_db()
    assert guild.contact_member_id is None


def test_posts_need_the_csrf_token(moderator, guild):
    client = Client(enforce_csrf_checks=True)
    client.force_login(moderator)
    assert client.post(f"/guilds/{GUILD_ID}/", {"member": str(ALICE)}).status_code == 403
    assert client.post(f"/guilds/{GUILD_ID}/sync").status_code == 403
    guild.refresh_from_db()
    assert guild.contact_member_id is None and not SyncJob.objects.exists()

    token = client.get(f"/guilds/{GUILD_ID}/").cookies["csrftoken"].value
    response = client.post(f"/guilds/{GUILD_ID}/", {"member": str(ALICE), "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    # htmx sends the token in a header (base.html's hx-headers).
    response = client.post(f"/guilds/{GUILD_ID}/sync", headers={"HX-Request": "true", "X-CSRFToken": token})
    assert response.status_code == 200 and SyncJob.objects.count() == 1


# -- sync panel and Sync now -----------------------------------------------------------


def test_sync_now_queues_a_dashboard_sync_for_the_cluster(mod_client, guild):
    response = mod_client.post(f"/guilds/{GUILD_ID}/sync", headers={"HX-Request": "true"})
    assert response.status_code == 200
    created = SyncJob.objects.get()
    assert (created.trigger, created.requested_by, created.status) == ("dashboard", "mod", "queued")
    html = response.content.decode()
    assert f"Member sync #{created.pk} queued." in html
    assert OrmQ.objects.count() == 1  # handed to the worker cluster
    again = mod_client.post(f"/guilds/{GUILD_ID}/sync", headers={"HX-Request": "true"}).content.decode()
    assert f"Member sync #{created.pk} is already queued." in again
    assert SyncJob.objects.count() == 1


def test_sync_now_without_javascript_redirects_back_with_the_message(mod_client, guild):
    response = mod_client.post(f"/guilds/{GUILD_ID}/sync", follow=True)
    assert response.redirect_chain == [(f"/guilds/{GUILD_ID}/", 302)]
    assert "queued." in response.content.decode()


def test_sync_now_refuses_get(mod_client, guild):
    assert mod_client.get(f"/guilds/{GUILD_ID}/sync").status_code == 405


def test_sync_panel_polls_while_a_run_is_active_and_not_when_idle(mod_client, guild):
    htmx = {"HX-Request": "true"}
    idle = mod_client.get(f"/guilds/{GUILD_ID}/", headers=htmx).content.decode()
    assert idle.lstrip().startswith('<div id="sync-panel"') and "hx-trigger" not in idle

    running = job(guild, status=SyncJob.Status.RUNNING, started_at=timezone.now(), processed=150, expected=300)
    busy = mod_client.get(f"/guilds/{GUILD_ID}/", headers=htmx).content.decode()
    assert 'hx-trigger="every 1s"' in busy
    assert 'value="50.0"' in busy and "150 of 300 members" in busy

    SyncJob.objects.filter(pk=running.pk).update(status=SyncJob.Status.SUCCEEDED, finished_at=timezone.now())
    done = mod_client.get(f"/guilds/{GUILD_ID}/", headers=htmx).content.decode()
    assert "hx-trigger" not in done and "Succeeded" in done


def test_recent_runs_show_their_figures(mod_client, guild):
    now = timezone.now()
    job(
        guild,
        status=SyncJob.Status.PARTIAL,
        started_at=now - timedelta(seconds=20),
        finished_at=now,
        processed=2000,
        api_calls=3,
        rate_limit_hits=2,
        retries=1,
    )
    html = mod_client.get(f"/guilds/{GUILD_ID}/").content.decode()
    figures = ('data-label="Processed" class="num">2,000<', ">100/s<", ">20.0 s<", 'data-label="429s" class="num">2<')
    for figure in figures:
        assert figure in html


# -- job detail ------------------------------------------------------------------------


def test_job_page_shows_the_run_and_polls_only_while_active(mod_client, guild):
    run = job(guild, status=SyncJob.Status.RUNNING, started_at=timezone.now(), processed=10, api_calls=4)
    page = mod_client.get(f"/jobs/{run.pk}/").content.decode()
    assert f"sync #{run.pk}" in page and "Picker Guild" in page and 'hx-trigger="every 1s"' in page
    SyncJob.objects.filter(pk=run.pk).update(status=SyncJob.Status.FAILED, error_message="<b>boom</b>")
    partial = mod_client.get(f"/jobs/{run.pk}/", headers={"HX-Request": "true"}).content.decode()
    assert partial.lstrip().startswith('<section id="job-status"')
    assert "hx-trigger" not in partial and "&lt;b&gt;boom&lt;/b&gt;" in partial


@pytest.mark.parametrize("job_id", ["999999", "abc", "9" * 30, "-1"])
def test_job_page_is_404_for_unknown_or_malformed_ids(mod_client, job_id):
    assert mod_client.get(f"/jobs/{job_id}/").status_code == 404


def test_job_page_of_a_guild_not_granted_is_404(mod_client, other_guild):
    run = job(other_guild)
    assert mod_client.get(f"/jobs/{run.pk}/").status_code == 404
