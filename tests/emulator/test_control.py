"""The emulator's control API: playing Discord's side in tests and the demo."""

import http.client as http_client
import time

import pytest

from guildhub.emulator.control import is_loopback
from tests.emulator.test_rest import first_guild, http


def test_state_lists_guilds_channels_and_the_bot(emulator):
    status, _, state = http("GET", f"{emulator.url}/_emulator/state")
    assert status == 200
    assert state["bot"]["bot"] is True
    assert [g["member_count"] for g in state["guilds"]] == [301, 41]
    assert {c["type"] for c in state["guilds"][0]["channels"]} == {0, 2, 4}


def test_members_join_change_and_leave_through_the_control_api(emulator):
    guild = first_guild(emulator)
    base = f"{emulator.url}/_emulator/guilds/{guild.id}/members"
    status, _, joined = http("POST", base, {"username": "control_user", "global_name": "Control", "nick": None})
    assert status == 201
    user_id = joined["user"]["id"]
    api = f"{emulator.api_base}/guilds/{guild.id}/members/{user_id}"
    assert http("GET", api)[2]["user"]["global_name"] == "Control"
    assert http("PATCH", f"{base}/{user_id}", {"nick": "Nick"})[0] == 200
    assert http("GET", api)[2]["nick"] == "Nick"
    assert http("DELETE", f"{base}/{user_id}")[0] == 200
    assert http("GET", api)[2]["code"] == 10007
    assert http("PATCH", f"{base}/{user_id}", {"nick": "x"})[0] == 404
    assert http("POST", base, {"bogus": 1})[0] == 400


def test_posted_messages_are_the_newest_in_history(emulator):
    guild = first_guild(emulator)
    channel = next(c for c in guild.channels.values() if c.type == 0)
    status, _, message = http("POST", f"{emulator.url}/_emulator/channels/{channel.id}/messages", {"content": "hi"})
    assert status == 201
    newest = http("GET", f"{emulator.api_base}/channels/{channel.id}/messages?limit=1")[2]
    assert newest[0]["id"] == message["id"] and newest[0]["content"] == "hi"
    status, _, bulk = http("POST", f"{emulator.url}/_emulator/channels/{channel.id}/messages", {"count": 50})
    assert status == 201 and bulk["posted"] == 50


def test_counters_count_requests_per_route_and_reset(emulator):
    for _ in range(3):
        http("GET", f"{emulator.api_base}/users/@me")
    counters = http("GET", f"{emulator.url}/_emulator/counters")[2]
    assert counters["requests"]["GET /api/v10/users/@me"] == 3
    assert counters["bytes_sent"] > 0
    http("POST", f"{emulator.url}/_emulator/counters/reset")
    assert http("GET", f"{emulator.url}/_emulator/counters")[2]["total_requests"] == 0


def test_latency_and_route_scoped_faults(emulator):
    http("PUT", f"{emulator.url}/_emulator/faults", {"latency": 0.3, "route": "/users/@me"})
    started = time.monotonic()
    http("GET", f"{emulator.api_base}/users/@me")
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    http("GET", f"{emulator.api_base}/gateway/bot")
    assert time.monotonic() - started < 0.3


def test_dropped_connections_close_without_an_answer(emulator):
    http("PUT", f"{emulator.url}/_emulator/faults", {"drop_rate": 1.0, "route": "/users/@me"})
    connection = http_client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    connection.request("GET", "/api/v10/users/@me", headers={"Authorization": "Bot x"})
    with pytest.raises((http_client.RemoteDisconnected, ConnectionError)):
        connection.getresponse()


def test_the_members_intent_and_rate_limit_profile_can_be_switched(emulator):
    guild = first_guild(emulator)
    status, _, settings = http("PUT", f"{emulator.url}/_emulator/settings", {"members_intent": False})
    assert status == 200 and settings["members_intent"] is False
    assert http("GET", f"{emulator.api_base}/guilds/{guild.id}/members")[0] == 403
    assert http("PUT", f"{emulator.url}/_emulator/settings", {"profile": "nope"})[0] == 400
    assert http("PUT", f"{emulator.url}/_emulator/settings", {"buckets": {"messages": "1/5"}})[0] == 200


@pytest.mark.parametrize(
    ("remote", "allowed"), [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("10.0.0.5", False), ("", False)]
)
def test_the_control_api_answers_loopback_only(remote, allowed):
    assert is_loopback(remote) is allowed
