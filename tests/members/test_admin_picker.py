"""The member picker in the Guild admin, and dashboard access granted in the admin."""

import pytest
from django.test import Client

from members.models import GuildAccess
from tests.members.picker_data import GUILD_ID, make_guild, make_user

pytestmark = pytest.mark.django_db

BOB = 800000000000000003
CHANGE_URL = f"/admin/members/guild/{GUILD_ID}/change/"


@pytest.fixture
def guild():
    return make_guild()


@pytest.fixture
def admin_client_(guild) -> Client:
    client = Client()
    client.force_login(make_user("root", superuser=True))
    return client


def change_form(**overrides) -> dict:
    data = {
        "name": "Picker Guild",
        "is_active": "on",
        "sync_enabled": "on",
        "sync_interval": "00:30:00",
        "sync_page_size": "1000",
        "sync_time_budget": "00:05:00",
        "contact_member_id": "",
        "_save": "Save",
    }
    return {**data, **overrides}


def test_guild_change_form_renders_the_picker_with_htmx(admin_client_, guild):
    guild.set_contact_member(guild.members.get(user_id=BOB))
    html = admin_client_.get(CHANGE_URL).content.decode()
    assert 'role="combobox"' in html and 'name="contact_member_id"' in html
    assert f'type="hidden" name="contact_member_id" value="{BOB}"' in html
    assert 'value="Bob"' in html
    assert f'hx-get="/guilds/{GUILD_ID}/members/options"' in html
    assert "vendor/htmx-2.0.11.min.js" in html and "js/member-picker.js" in html


def test_guild_add_form_has_no_picker_before_the_guild_exists(admin_client_):
    html = admin_client_.get("/admin/members/guild/add/").content.decode()
    assert 'name="contact_member_id"' in html and 'role="combobox"' not in html


def test_saving_a_picked_member_in_the_admin(admin_client_, guild):
    response = admin_client_.post(CHANGE_URL, change_form(contact_member_id=str(BOB)))
    assert response.status_code == 302
    guild.refresh_from_db()
    assert guild.contact_member_id == BOB


def test_the_admin_refuses_someone_who_is_not_a_member(admin_client_, guild):
    response = admin_client_.post(CHANGE_URL, change_form(contact_member_id="800000000000000099"))
    assert response.status_code == 200
    assert "is not a member of Picker Guild" in response.content.decode()
    guild.refresh_from_db()
    assert guild.contact_member_id is None


def test_dashboard_access_is_granted_in_the_admin(admin_client_, guild):
    moderator = make_user("mod")
    response = admin_client_.post(
        "/admin/members/guildaccess/add/", {"user": str(moderator.pk), "guild": str(GUILD_ID), "_save": "Save"}
    )
    assert response.status_code == 302
    assert GuildAccess.objects.filter(user=moderator, guild=guild).exists()
    dashboard = Client()
    dashboard.force_login(moderator)
    assert dashboard.get(f"/guilds/{GUILD_ID}/").status_code == 200
