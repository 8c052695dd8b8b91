"""Contract tests: every REST route the emulator serves answers JSON that Discord's
own OpenAPI spec accepts, for realistic data and for its error answers.

discord-openapi.json beside this file is Discord's own OpenAPI 3.1 spec of API v10,
specs/openapi.json of https://github.com/discord/discord-api-spec (MIT licence, see
LICENSE.openapi); replace the file with a newer copy to re-check the emulator.

The schema of an answer is the spec's
`paths → {path} → {method} → responses → {status} → content → application/json → schema`;
statuses the operation does not list fall back to its `4XX` response (ErrorResponse)
and 429 to RatelimitedResponse. `#/components/...` references resolve against the
whole document through a `referencing` registry. One known disagreement between the
spec and Discord (string codes in form errors) is pinned down in
test_invalid_form_body_errors_carry_a_nested_errors_tree.
"""

import json
import re
from collections.abc import Callable
from datetime import datetime
from functools import cache
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import best_match
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from guildhub.emulator import rest
from guildhub.emulator.state import Interaction
from tests.emulator.test_rest import first_guild, http

SPEC_FILE = Path(__file__).with_name("discord-openapi.json")
SPEC_URI = "urn:discord:openapi:v10"


# -- the spec ----------------------------------------------------------------


@cache
def spec() -> dict:
    return json.loads(SPEC_FILE.read_text(encoding="utf-8"))


@cache
def registry() -> Registry:
    # An OpenAPI 3.1 document is not a JSON Schema itself, but its schemas are
    # 2020-12 ones: registering the whole document lets `#/components/…` resolve.
    return Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(spec()))


RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@cache
def format_checker() -> FormatChecker:
    """Formats that matter to a client; `double`, `nonce` and the like pass."""
    checker = FormatChecker(formats=())

    @checker.checks("date-time")
    def date_time(value: object) -> bool:
        # discord.py parses timestamps with datetime.fromisoformat: RFC 3339, with an offset.
        if not isinstance(value, str):
            return True
        return bool(RFC3339.match(value)) and datetime.fromisoformat(value).tzinfo is not None

    @checker.checks("uri")
    def uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return parts.scheme in {"http", "https", "ws", "wss"} and bool(parts.netloc)

    @checker.checks("snowflake")
    def snowflake(value: object) -> bool:
        return not isinstance(value, str) or (value.isdigit() and int(value) < 1 << 64)

    @checker.checks("int32")
    def int32(value: object) -> bool:
        return not isinstance(value, int) or -(1 << 31) <= value < 1 << 31

    @checker.checks("int64")
    def int64(value: object) -> bool:
        return not isinstance(value, int) or -(1 << 63) <= value < 1 << 63

    return checker


def escape(segment: str) -> str:
    """A JSON pointer segment (RFC 6901)."""
    return segment.replace("~", "~0").replace("/", "~1")


def spec_path(path: str) -> str:
    """The spec's path template for a concrete API path: `/guilds/1/members/search`
    → `/guilds/{guild_id}/members/search` (literal segments win over parameters)."""
    segments = path.strip("/").split("/")
    best, best_literals = None, -1
    for template in spec()["paths"]:
        parts = template.strip("/").split("/")
        if len(parts) != len(segments):
            continue
        literals = 0
        for part, segment in zip(parts, segments, strict=True):
            if part.startswith("{") and part.endswith("}"):
                continue
            if part != segment:
                break
            literals += 1
        else:
            if literals > best_literals:
                best, best_literals = template, literals
    assert best is not None, f"Discord's spec has no path for {path}"
    return best


def response_pointer(template: str, method: str, status: int) -> str | None:
    """JSON pointer to the schema of one answer, or None when the spec defines no body."""
    responses = spec()["paths"][template][method.lower()]["responses"]
    key = str(status) if str(status) in responses else f"{str(status)[0]}XX"
    assert key in responses, f"{method} {template} lists no {status} response in Discord's spec"
    base = f"/paths/{escape(template)}/{method.lower()}/responses/{escape(key)}"
    response = responses[key]
    if "$ref" in response:  # shared responses: ClientErrorResponse, ClientRatelimitedResponse
        base = response["$ref"].removeprefix("#")
        response = spec()["components"]["responses"][base.rsplit("/", 1)[1]]
    if "application/json" not in response.get("content", {}):
        return None
    return f"{base}/content/{escape('application/json')}/schema"


def errors_of(schema_pointer: str, data: object) -> list[str]:
    validator = Draft202012Validator(
        {"$ref": f"{SPEC_URI}#{schema_pointer}"}, registry=registry(), format_checker=format_checker()
    )
    errors = list(validator.iter_errors(data))
    if not errors:
        return []
    best = best_match(errors)
    return [f"{best.json_path}: {best.message[:500]}"] + [f"{e.json_path}: {e.message[:200]}" for e in errors[:10]]


def assert_valid(schema_pointer: str, data: object) -> None:
    errors = errors_of(schema_pointer, data)
    assert not errors, f"{schema_pointer}:\n" + "\n".join(errors)


# -- calling the emulator ------------------------------------------------------

# Every (method, route template) some test below checks; see test_every_emulator_route_has_a_contract_test.
COVERED: set[tuple[str, str]] = set()


def covers(*routes: tuple[str, str]) -> Callable:
    """Mark a test as the contract test of these emulator routes."""
    for method, path in routes:
        COVERED.add((method, rest.API_PREFIX + path))
    return lambda test: test


def call(
    emulator,
    method: str,
    path: str,
    *,
    query: dict | None = None,
    body: object = None,
    status: int = 200,
    token: str | None = "Bot test",
) -> object:
    """Call the emulator and check the answer against Discord's spec for that route and status."""
    url = f"{emulator.api_base}{path}" + (f"?{urlencode(query)}" if query else "")
    got, headers, data = http(method, url, body, token=token)
    assert got == status, f"{method} {path}: {got} {data}"
    pointer = response_pointer(spec_path(path), method, status)
    if pointer is None:
        assert data is None, f"{method} {path}: {status} must have an empty body, got {data!r}"
        assert headers.get("Content-Length", "0") == "0"
    else:
        assert headers["Content-Type"] == "application/json"
        assert_valid(pointer, data)
    return data


@pytest.fixture
def api(emulator):
    """The test emulator without rate limits (they get their own tests below)."""
    status, _, _ = http("PUT", f"{emulator.url}/_emulator/settings", {"profile": "off"})
    assert status == 200
    return emulator


def members_of(emulator, guild) -> list[dict]:
    return emulator.call(guild.list_members, after=0, limit=1000)


def new_interaction(emulator, guild) -> Interaction:
    """A slash command invocation, as the gateway would deliver it."""

    def make() -> Interaction:
        world = emulator.world
        channel = next(c for c in guild.channels.values() if c.type == 0)
        interaction = Interaction(
            id=world.new_id(),
            token=f"token{world.new_id()}",
            guild_id=guild.id,
            channel_id=channel.id,
            user_id=guild.owner_id,
            payload={"name": "sync", "options": []},
        )
        world.interactions[interaction.id] = interaction
        return interaction

    return emulator.call(make)


# -- the spec and the route table agree ----------------------------------------


def test_every_emulator_route_is_an_operation_of_discords_spec():
    for method, template in rest.ROUTES:
        path = template.removeprefix(rest.API_PREFIX)
        operations = spec()["paths"][spec_path(path)]
        assert method.lower() in operations, f"{method} {path} is not in Discord's spec"


def test_every_emulator_route_has_a_contract_test():
    assert set(rest.ROUTES) - COVERED == set()


def test_the_validator_rejects_what_discord_would_not_send(emulator):
    pointer = response_pointer("/guilds/{guild_id}/members/{user_id}", "GET", 200)
    member = emulator.call(first_guild(emulator).member, emulator.world.bot_id)
    assert errors_of(pointer, member) == []
    broken = [
        {**member, "joined_at": "2024-01-01 10:00"},  # not RFC 3339
        {**member, "joined_at": "2024-01-01T10:00:00"},  # no offset
        {**member, "roles": [1234]},  # snowflakes are strings
        {**member, "roles": [str(1 << 64)]},  # and fit in 64 bits
        {**member, "flags": 1 << 40},  # int32
        {key: value for key, value in member.items() if key != "joined_at"},
        {**member, "user": {**member["user"], "avatar_decoration_data": "x"}},
    ]
    for case in broken:
        assert errors_of(pointer, case), case


# -- the bot and its application -------------------------------------------------


@covers(("GET", "/users/@me"))
def test_current_user(api):
    me = call(api, "GET", "/users/@me")
    assert me["bot"] is True


@covers(("GET", "/users/@me/guilds"))
def test_current_user_guilds_with_and_without_counts_and_paged(api):
    guilds = call(api, "GET", "/users/@me/guilds")
    assert len(guilds) == 2 and "approximate_member_count" not in guilds[0]
    counted = call(api, "GET", "/users/@me/guilds", query={"with_counts": "true"})
    assert counted[0]["approximate_member_count"] == first_guild(api).member_count
    assert len(call(api, "GET", "/users/@me/guilds", query={"limit": 1, "after": guilds[0]["id"]})) == 1
    assert call(api, "GET", "/users/@me/guilds", query={"before": guilds[0]["id"]}) == []


@covers(("GET", "/oauth2/applications/@me"))
def test_current_application_with_and_without_the_members_intent(api):
    app = call(api, "GET", "/oauth2/applications/@me")
    assert app["id"] == str(api.world.bot_id) and app["flags"] & (1 << 14)
    api.world.members_intent_enabled = False
    assert call(api, "GET", "/oauth2/applications/@me")["flags"] & (1 << 14) == 0


@covers(("GET", "/gateway"), ("GET", "/gateway/bot"))
def test_gateway_urls(api):
    assert call(api, "GET", "/gateway")["url"].startswith("ws://")
    assert call(api, "GET", "/gateway/bot")["shards"] == 1


# -- guilds, members, roles, channels -------------------------------------------


@covers(("GET", "/guilds/{guild_id}"))
def test_guild_with_and_without_counts(api):
    for guild in api.world.guilds.values():
        plain = call(api, "GET", f"/guilds/{guild.id}")
        assert "approximate_member_count" not in plain
        counted = call(api, "GET", f"/guilds/{guild.id}", query={"with_counts": "true"})
        assert counted["approximate_member_count"] == guild.member_count


@covers(("GET", "/guilds/{guild_id}/members"))
def test_member_list_of_a_guild_with_every_kind_of_member(api):
    guild = first_guild(api)
    api.call(
        api.world.add_member,
        guild,
        username="nicknamed",
        global_name="Ünïcödé 🎉",
        nick="<b>Nick</b>",
        avatar="a_" + "0" * 32,
        roles=[guild.roles[1]["id"]],
    )
    members = call(api, "GET", f"/guilds/{guild.id}/members", query={"limit": 1000})
    assert len(members) == guild.member_count
    users = [m["user"] for m in members]
    # The page really holds the awkward cases the schema must accept.
    assert any(u["global_name"] is None for u in users)
    assert any(u.get("bot") for u in users)
    assert any((u["avatar"] or "").startswith("a_") for u in users)
    assert any(u["global_name"] and "<" in u["global_name"] for u in users) or any(
        m["nick"] and "<" in m["nick"] for m in members
    )
    assert any(m["nick"] for m in members) and any(m["roles"] for m in members)
    first = call(api, "GET", f"/guilds/{guild.id}/members")
    assert len(first) == 1  # Discord's default limit
    after = call(api, "GET", f"/guilds/{guild.id}/members", query={"limit": 10, "after": users[100]["id"]})
    assert after[0]["user"]["id"] == users[101]["id"]
    assert call(api, "GET", f"/guilds/{guild.id}/members", query={"after": 1 << 62}) == []


@covers(("GET", "/guilds/{guild_id}/members/search"))
def test_member_search(api):
    guild = first_guild(api)
    nicked = next(m for m in members_of(api, guild) if m["nick"] and m["nick"][0].isalpha())
    found = call(api, "GET", f"/guilds/{guild.id}/members/search", query={"query": nicked["nick"][:2], "limit": 1000})
    assert nicked["user"]["id"] in {m["user"]["id"] for m in found}
    assert call(api, "GET", f"/guilds/{guild.id}/members/search", query={"query": "zzzz-nobody"}) == []


@covers(("GET", "/guilds/{guild_id}/members/{user_id}"))
def test_single_members_bot_nicknamed_and_plain(api):
    guild = first_guild(api)
    members = members_of(api, guild)
    picks = [
        next(m for m in members if m["nick"]),
        next(m for m in members if m["user"].get("bot")),
        next(m for m in members if not m["nick"] and m["user"]["global_name"] is None),
        api.call(guild.member, api.world.bot_id),
    ]
    for member in picks:
        got = call(api, "GET", f"/guilds/{guild.id}/members/{member['user']['id']}")
        assert got["user"]["id"] == member["user"]["id"]


@covers(("PATCH", "/guilds/{guild_id}/members/{user_id}"))
def test_member_edits_nick_and_roles(api):
    guild = first_guild(api)
    uid = members_of(api, guild)[5]["user"]["id"]
    helper = next(r for r in guild.roles if r["name"] == "Helper")
    path = f"/guilds/{guild.id}/members/{uid}"
    edited = call(api, "PATCH", path, body={"nick": "Renamed ✨", "roles": [helper["id"]]})
    assert (edited["nick"], edited["roles"]) == ("Renamed ✨", [helper["id"]])
    cleared = call(api, "PATCH", path, body={"nick": None, "roles": []})
    assert (cleared["nick"], cleared["roles"]) == (None, [])


@covers(
    ("PUT", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}"),
    ("DELETE", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}"),
)
def test_single_role_changes_answer_204_with_an_empty_body(api):
    guild = first_guild(api)
    uid = members_of(api, guild)[7]["user"]["id"]
    helper = next(r for r in guild.roles if r["name"] == "Helper")
    path = f"/guilds/{guild.id}/members/{uid}/roles/{helper['id']}"
    for _ in range(2):  # idempotent
        assert call(api, "PUT", path, status=204) is None
    assert helper["id"] in api.call(guild.member, int(uid))["roles"]
    for _ in range(2):
        assert call(api, "DELETE", path, status=204) is None
    assert helper["id"] not in api.call(guild.member, int(uid))["roles"]


@covers(("GET", "/guilds/{guild_id}/roles"))
def test_roles_including_everyone_and_the_bots_managed_role(api):
    for guild in api.world.guilds.values():
        roles = call(api, "GET", f"/guilds/{guild.id}/roles")
        assert roles[0]["id"] == str(guild.id) and any(r["managed"] for r in roles)


@covers(("GET", "/guilds/{guild_id}/channels"), ("GET", "/channels/{channel_id}"))
def test_channels_category_text_and_voice(api):
    topics = []
    for guild in api.world.guilds.values():
        channels = call(api, "GET", f"/guilds/{guild.id}/channels")
        assert {c["type"] for c in channels} == {0, 2, 4}
        topics += [c["topic"] for c in channels if c["type"] == 0]
        for channel in channels:
            assert call(api, "GET", f"/channels/{channel['id']}") == channel
    assert None in topics and any(topics)


@covers(("GET", "/channels/{channel_id}/messages"))
def test_channel_history_with_reactions_attachments_and_every_anchor(api):
    guild = first_guild(api)
    channel = next(c for c in guild.channels.values() if c.type == 0 and c.message_count >= 250)
    member = members_of(api, guild)[3]
    http("POST", f"{api.url}/_emulator/channels/{channel.id}/messages", {"author_id": member["user"]["id"]})
    path = f"/channels/{channel.id}/messages"
    every = call(api, "GET", path, query={"limit": 100})
    every += call(api, "GET", path, query={"limit": 100, "before": every[-1]["id"]})
    every += call(api, "GET", path, query={"limit": 100, "before": every[-1]["id"]})
    assert any(m["reactions"] for m in every) and any(m["attachments"] for m in every)
    assert every[0]["author"]["id"] == member["user"]["id"]  # the posted one is the newest
    assert len(call(api, "GET", path)) == 50
    assert len(call(api, "GET", path, query={"after": 0, "limit": 5})) == 5
    assert len(call(api, "GET", path, query={"around": every[120]["id"], "limit": 9})) == 9
    voice = next(c for c in guild.channels.values() if c.type == 2)
    call(api, "GET", f"/channels/{voice.id}/messages")


# -- application commands and interactions --------------------------------------


@covers(
    ("GET", "/applications/{application_id}/commands"),
    ("PUT", "/applications/{application_id}/commands"),
    ("POST", "/applications/{application_id}/commands"),
    ("GET", "/applications/{application_id}/guilds/{guild_id}/commands"),
    ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands"),
    ("POST", "/applications/{application_id}/guilds/{guild_id}/commands"),
)
def test_application_commands_global_and_guild(api):
    app_id = api.world.bot_id
    guild = first_guild(api)
    option = {"type": 6, "name": "member", "description": "Who to sync", "required": False}
    for base in (f"/applications/{app_id}/commands", f"/applications/{app_id}/guilds/{guild.id}/commands"):
        assert call(api, "GET", base) == []
        put = call(api, "PUT", base, body=[{"name": "sync", "description": "Sync members now", "options": [option]}])
        assert [c["name"] for c in put] == ["sync"]
        created = call(api, "POST", base, body={"name": "status", "description": "Show status"}, status=201)
        updated = call(api, "POST", base, body={"name": "status", "description": "Show the status"})
        assert updated["id"] == created["id"]
        call(api, "POST", base, body={"name": "Sync roles", "type": 2}, status=201)  # a user command
        assert len(call(api, "GET", base)) == 3


@covers(("POST", "/interactions/{interaction_id}/{token}/callback"))
@pytest.mark.parametrize(
    ("response", "resource_type"),
    [
        ({"type": 4, "data": {"content": "Synced 12 members"}}, 4),
        ({"type": 4, "data": {"content": "only you", "flags": 64}}, 4),
        ({"type": 5}, None),
        ({"type": 5, "data": {"flags": 64}}, None),
    ],
)
def test_interaction_callback_with_response(api, response, resource_type):
    interaction = new_interaction(api, first_guild(api))
    path = f"/interactions/{interaction.id}/{interaction.token}/callback"
    answer = call(api, "POST", path, query={"with_response": "true"}, body=response)
    assert answer["interaction"]["id"] == str(interaction.id)
    assert (answer.get("resource") or {}).get("type") == resource_type


def test_interaction_callback_without_response_is_204(api):
    interaction = new_interaction(api, first_guild(api))
    path = f"/interactions/{interaction.id}/{interaction.token}/callback"
    assert call(api, "POST", path, body={"type": 5}, status=204) is None


@covers(
    ("POST", "/webhooks/{webhook_id}/{token}"),
    ("PATCH", "/webhooks/{webhook_id}/{token}/messages/{message_id}"),
    ("GET", "/webhooks/{webhook_id}/{token}/messages/{message_id}"),
)
def test_interaction_follow_ups_and_the_original_response(api):
    guild = first_guild(api)
    interaction = new_interaction(api, guild)
    call(api, "POST", f"/interactions/{interaction.id}/{interaction.token}/callback", body={"type": 5}, status=204)
    base = f"/webhooks/{api.world.bot_id}/{interaction.token}"
    original = call(api, "PATCH", f"{base}/messages/@original", body={"content": "Done: 12 members synced"})
    assert original["content"] == "Done: 12 members synced"
    call(api, "GET", f"{base}/messages/@original")
    embed = {"title": "Sync", "description": "12 members", "color": 0x5865F2}
    followup = call(api, "POST", base, body={"content": "details", "embeds": [embed], "flags": 64})
    assert followup["embeds"][0]["title"] == "Sync"
    call(api, "PATCH", f"{base}/messages/{followup['id']}", body={"content": "edited"})
    call(api, "GET", f"{base}/messages/{followup['id']}")


# -- error answers ---------------------------------------------------------------


def test_not_found_errors(api):
    guild = first_guild(api)
    member = members_of(api, guild)[0]["user"]["id"]
    bot = api.world.bot_id
    unknown = str(1 << 40)
    for method, path in [
        ("GET", f"/guilds/{unknown}"),
        ("GET", f"/guilds/{unknown}/members"),
        ("GET", f"/guilds/{guild.id}/members/{unknown}"),
        ("PATCH", f"/guilds/{guild.id}/members/{unknown}"),
        ("PUT", f"/guilds/{guild.id}/members/{member}/roles/{unknown}"),
        ("DELETE", f"/guilds/{guild.id}/members/{member}/roles/{unknown}"),
        ("GET", f"/guilds/{unknown}/roles"),
        ("GET", f"/guilds/{unknown}/channels"),
        ("GET", f"/channels/{unknown}"),
        ("GET", f"/channels/{unknown}/messages"),
        ("GET", f"/applications/{bot}/guilds/{unknown}/commands"),
        ("POST", f"/interactions/{unknown}/nope/callback"),
        ("POST", f"/webhooks/{bot}/nope"),
        ("GET", f"/webhooks/{bot}/nope/messages/{unknown}"),
    ]:
        body = {"type": 4} if "callback" in path else ({} if method in {"PATCH", "POST"} else None)
        assert call(api, method, path, body=body, status=404)["code"] != 0


def field_codes(tree: dict) -> list:
    """Every `_errors[].code` of an `errors` tree."""
    return [
        code
        for key, value in tree.items()
        for code in ([e["code"] for e in value] if key == "_errors" else field_codes(value))
    ]


def with_integer_field_codes(tree: dict) -> dict:
    """An `errors` tree with each `_errors[].code` replaced by an integer."""
    return {
        key: [{**e, "code": 0} for e in value] if key == "_errors" else with_integer_field_codes(value)
        for key, value in tree.items()
    }


def test_invalid_form_body_errors_carry_a_nested_errors_tree(api):
    """The spec types `_errors[].code` as an integer (InnerErrors → Error), but Discord sends
    string codes there ("BASE_TYPE_REQUIRED", "NUMBER_TYPE_MAX": see the form error example
    in Discord's reference docs), and so does the emulator. Everything else must validate:
    the body is checked as sent, then with those codes made integers."""
    pointer = response_pointer("/guilds/{guild_id}/members", "GET", 400)
    guild = first_guild(api)
    uid = members_of(api, guild)[0]["user"]["id"]
    app_id = api.world.bot_id
    text_channel = next(c for c in guild.channels.values() if c.type == 0)
    for method, path, query, body in [
        ("GET", f"/guilds/{guild.id}/members", {"limit": 1001}, None),
        ("GET", f"/guilds/{guild.id}/members", {"after": "x"}, None),
        ("GET", "/guilds/not-a-snowflake", None, None),
        ("GET", f"/guilds/{guild.id}/members/search", None, None),
        ("GET", f"/guilds/{guild.id}", {"with_counts": "maybe"}, None),
        ("PATCH", f"/guilds/{guild.id}/members/{uid}", None, {"roles": ["x"]}),
        ("PATCH", f"/guilds/{guild.id}/members/{uid}", None, {"nick": "x" * 33}),
        ("GET", f"/channels/{text_channel.id}/messages", {"limit": 0}, None),
        ("POST", f"/applications/{app_id}/commands", None, {"name": ""}),
        ("PUT", f"/applications/{app_id}/commands", None, [{"name": "x" * 33, "description": "d"}]),
    ]:
        url = f"{api.api_base}{path}" + (f"?{urlencode(query)}" if query else "")
        status, headers, error = http(method, url, body)
        assert (status, headers["Content-Type"], error["code"]) == (400, "application/json", 50035)
        codes = field_codes(error["errors"])
        assert codes and all(re.fullmatch(r"[A-Z_]+", code) for code in codes), error
        assert errors_of(pointer, error), "the spec now accepts string codes: validate these with call()"
        assert_valid(pointer, {**error, "errors": with_integer_field_codes(error["errors"])})


def test_other_client_errors(api):
    guild = first_guild(api)
    interaction = new_interaction(api, guild)
    callback = f"/interactions/{interaction.id}/{interaction.token}/callback"
    call(api, "POST", callback, body={"type": 4, "data": {"content": "hi"}}, status=204)
    assert call(api, "POST", callback, body={"type": 4}, status=400)["code"] == 40060
    category = next(c for c in guild.channels.values() if c.type == 4)
    assert call(api, "GET", f"/channels/{category.id}/messages", status=400)["code"] == 50024
    assert call(api, "GET", "/users/@me", token=None, status=401)["code"] == 0


def test_forbidden_errors(api):
    guild = first_guild(api)
    members = members_of(api, guild)
    owner_role = next(r for r in guild.roles if r["name"] == "Owner")
    uid = members[0]["user"]["id"]
    assert call(api, "PUT", f"/guilds/{guild.id}/members/{uid}/roles/{owner_role['id']}", status=403)["code"] == 50013
    patch = {"roles": [owner_role["id"]]}
    assert call(api, "PATCH", f"/guilds/{guild.id}/members/{uid}", body=patch, status=403)["code"] == 50013
    assert call(api, "GET", f"/applications/{1 << 40}/commands", status=403)["code"] == 50001
    api.world.members_intent_enabled = False
    assert call(api, "GET", f"/guilds/{guild.id}/members", status=403)["code"] == 50001
    api.call(setattr, guild, "bot_present", False)
    assert call(api, "GET", f"/guilds/{guild.id}", status=403)["code"] == 50001
    assert call(api, "GET", f"/channels/{next(iter(guild.channels))}", status=403)["code"] == 50001


def test_unknown_routes_and_methods_answer_discords_error_body(api):
    pointer = "/components/schemas/ErrorResponse"
    status, _, body = http("GET", f"{api.api_base}/no/such/route")
    assert status == 404
    assert_valid(pointer, body)
    status, _, body = http("DELETE", f"{api.api_base}/users/@me/guilds")
    assert status == 405
    assert_valid(pointer, body)


@pytest.mark.parametrize("scope", ["user", "global", "shared"])
def test_rate_limited_answers(emulator, scope):
    guild = first_guild(emulator)
    if scope == "user":
        status, _, _ = http("PUT", f"{emulator.url}/_emulator/settings", {"buckets": {"members_list": "1/60"}})
        assert status == 200
        call(emulator, "GET", f"/guilds/{guild.id}/members")
    else:
        faults = {"storm_seconds": 30, "storm_scope": scope, "route": "/members"}
        assert http("PUT", f"{emulator.url}/_emulator/faults", faults)[0] == 200
    limited = call(emulator, "GET", f"/guilds/{guild.id}/members", status=429)
    assert limited["global"] is (scope == "global") and limited["retry_after"] > 0
