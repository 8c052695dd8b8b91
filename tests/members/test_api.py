"""The member JSON API: auth, grants, search results as JSON, hostile input."""

import pytest
from django.contrib.auth.models import User

from guildhub.models import ApiToken
from members import services
from members.models import Guild, GuildAccess
from tests.members.test_search import NAMES, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def guild():
    guild = Guild.objects.create(id=111111111111111111, name="API Guild")
    services.upsert_members(guild.id, [member(200000000000000000 + i, *names) for i, names in enumerate(NAMES)])
    return guild


@pytest.fixture
def moderator(guild):
    user = User.objects.create_user("mod", password="pw-for-tests-1")
    GuildAccess.objects.create(user=user, guild=guild)
    return user


def url(guild_id, query: str = "", **params) -> str:
    extra = "".join(f"&{k}={v}" for k, v in params.items())
    return f"/api/guilds/{guild_id}/members?q={query}{extra}"


def test_anonymous_callers_get_401_json_not_a_login_page(client, guild):
    response = client.get(url(guild.id, "ana"))
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"


def test_search_answers_ranked_hits_with_string_ids(client, guild, moderator):
    client.force_login(moderator)
    body = client.get(url(guild.id, "ana")).json()
    assert body["guild_id"] == "111111111111111111" and body["source"] == "cache"
    assert [hit["username"] for hit in body["results"]] == ["ana", "anabelle", "banana_split"]
    assert body["results"][0]["user_id"] == "200000000000000000"


def test_bearer_tokens_work_and_wrong_ones_do_not(client, guild, moderator):
    token = ApiToken(user=moderator, name="dashboard")
    key = token.set_new_key()
    token.save()
    ok = client.get(url(guild.id, "zoe"), HTTP_AUTHORIZATION=f"Bearer {key}")
    assert ok.status_code == 200 and ok.json()["results"][0]["username"] == "zoe.w"
    assert client.get(url(guild.id, "zoe"), HTTP_AUTHORIZATION="Bearer nope").status_code == 401


@pytest.mark.parametrize("guild_id", ["999999999999999999", "abc", "1" * 40, "-5"])
def test_unknown_malformed_and_ungranted_guilds_are_404(client, moderator, guild_id):
    client.force_login(moderator)
    assert client.get(url(guild_id, "a")).status_code == 404


def test_a_guild_without_a_grant_is_404_not_403(client, guild):
    stranger = User.objects.create_user("stranger", password="pw-for-tests-2")
    client.force_login(stranger)
    assert client.get(url(guild.id, "ana")).status_code == 404


def test_long_queries_and_bad_limits_are_400_with_a_message(client, guild, moderator):
    client.force_login(moderator)
    too_long = client.get(url(guild.id, "x" * 101))
    assert too_long.status_code == 400 and "100 characters" in too_long.json()["error"]
    assert client.get(url(guild.id, "a", limit="0")).status_code == 400
    assert client.get(url(guild.id, "a", limit="many")).status_code == 400


def test_member_detail_by_id(client, guild, moderator):
    client.force_login(moderator)
    body = client.get(f"/api/guilds/{guild.id}/members/200000000000000003").json()
    assert body["display_name"] == "Zoë Weiß"
    assert client.get(f"/api/guilds/{guild.id}/members/1").status_code == 404
    assert client.get(f"/api/guilds/{guild.id}/members/x").status_code == 404
