"""The admin of the project-wide tables: API tokens (key shown once), bot heartbeat, rate-limit buckets."""

import pytest

from guildhub.heartbeat import record_bot_heartbeat
from guildhub.models import ApiToken, RateLimitBucket

pytestmark = pytest.mark.django_db

TOKENS = "/admin/guildhub/apitoken/"


def test_creating_a_token_shows_its_key_once_and_stores_only_its_hash(admin_client, admin_user):
    response = admin_client.post(f"{TOKENS}add/", {"name": "grafana", "user": admin_user.pk})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = response.context["key"]
    assert key.startswith("gh_") and len(key) > 40
    assert key in response.content.decode()
    token = ApiToken.objects.get()
    assert (token.name, token.user) == ("grafana", admin_user)
    assert key not in (token.key_hash, token.key_prefix) and token.key_hash == ApiToken.hash(key)
    assert ApiToken.objects.authenticate(key) == token
    # Shown once: neither the list nor the token's page has it.
    assert key not in admin_client.get(TOKENS).content.decode()
    assert key not in admin_client.get(f"{TOKENS}{token.pk}/change/").content.decode()


def test_two_tokens_get_different_keys(admin_client, admin_user):
    keys = {admin_client.post(f"{TOKENS}add/", {"name": n, "user": admin_user.pk}).context["key"] for n in "ab"}

    assert len(keys) == 2 and ApiToken.objects.count() == 2


def test_bot_heartbeats_and_rate_limit_buckets_are_listed_read_only(admin_client):
    record_bot_heartbeat(shard_id=0, latency_ms=41, guild_count=2)
    RateLimitBucket.objects.create(key="global:abc", stamps=[1.0, 2.0])

    heartbeats = admin_client.get("/admin/guildhub/botheartbeat/")
    buckets = admin_client.get("/admin/guildhub/ratelimitbucket/")

    assert heartbeats.status_code == 200 and "41" in heartbeats.content.decode()
    assert buckets.status_code == 200 and "global:abc" in buckets.content.decode()
    assert admin_client.get("/admin/guildhub/ratelimitbucket/add/").status_code == 403
    assert admin_client.get("/admin/guildhub/botheartbeat/add/").status_code == 403
