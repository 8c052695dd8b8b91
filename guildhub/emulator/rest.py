"""Discord REST v10 routes GuildHub uses, answered from the World.

Each route is registered with its rate-limit bucket and the path parameter that
is its major parameter, as Discord keys buckets (see ratelimits.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote

from aiohttp import web

from guildhub.emulator import generator as gen
from guildhub.emulator.responses import (
    INTERACTION_ALREADY_ACKNOWLEDGED,
    UNKNOWN_CHANNEL,
    UNKNOWN_GUILD,
    UNKNOWN_INTERACTION,
    UNKNOWN_MEMBER,
    UNKNOWN_ROLE,
    UNKNOWN_WEBHOOK,
    DiscordHTTPError,
    bool_param,
    encoded_json_response,
    int_param,
    invalid_form,
    json_response,
    missing_access,
    missing_permissions,
    no_content,
    not_found,
    snowflake,
)
from guildhub.emulator.state import Channel, Guild, World

WORLD_KEY = web.AppKey("world", World)
API_PREFIX = "/api/v10"


@dataclass(frozen=True)
class RouteInfo:
    bucket: str
    major: tuple[str, ...]  # path parameters that key the bucket


ROUTES: dict[tuple[str, str], RouteInfo] = {}
routes = web.RouteTableDef()


def route(method: str, path: str, bucket: str, major: tuple[str, ...] = ()):
    def register(handler):
        ROUTES[(method, API_PREFIX + path)] = RouteInfo(bucket, major)
        return routes.route(method, API_PREFIX + path)(handler)

    return register


def world_of(request: web.Request) -> World:
    return request.app[WORLD_KEY]


def guild_of(request: web.Request) -> Guild:
    gid = snowflake(request.match_info["guild_id"], "guild_id")
    guild = world_of(request).guilds.get(gid)
    if guild is None:
        raise not_found(UNKNOWN_GUILD, "Guild")
    if not guild.bot_present:
        raise missing_access()
    return guild


def channel_of(request: web.Request) -> tuple[Guild, Channel]:
    cid = snowflake(request.match_info["channel_id"], "channel_id")
    world = world_of(request)
    channel = world.channels.get(cid)
    if channel is None:
        raise not_found(UNKNOWN_CHANNEL, "Channel")
    guild = world.guilds[channel.guild_id]
    if not guild.bot_present:
        raise missing_access()
    return guild, channel


def member_of(guild: Guild, raw_user_id: str) -> dict:
    member = guild.member(snowflake(raw_user_id, "user_id"))
    if member is None:
        raise not_found(UNKNOWN_MEMBER, "Member")
    return member


async def json_body(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DiscordHTTPError(400, 50109, "The request body contains invalid JSON.") from None
    if not isinstance(data, dict):
        raise invalid_form("_", "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    return data


def audit_reason(request: web.Request) -> str | None:
    """The X-Audit-Log-Reason header, which clients URL-encode."""
    reason = request.headers.get("X-Audit-Log-Reason")
    return unquote(reason) if reason else None


def require_members_intent(world: World) -> None:
    # Without the privileged Server Members intent Discord refuses member lists.
    if not world.members_intent_enabled:
        raise missing_access()


# -- the bot and its application ----------------------------------------


@route("GET", "/users/@me", "users_me")
async def get_me(request: web.Request) -> web.Response:
    world = world_of(request)
    return json_response({**world.bot_user, "verified": True, "mfa_enabled": False, "locale": "en-US", "email": None})


@route("GET", "/users/@me/guilds", "users_me_guilds")
async def get_my_guilds(request: web.Request) -> web.Response:
    limit = int_param(request.query, "limit", default=200, low=1, high=200)
    before = snowflake(request.query["before"], "before") if "before" in request.query else None
    after = snowflake(request.query.get("after", "0"), "after")
    guilds = sorted((g for g in world_of(request).guilds.values() if g.bot_present), key=lambda g: g.id)
    if before is not None:
        guilds = [g for g in guilds if g.id < before][-limit:]
    else:
        guilds = [g for g in guilds if g.id > after][:limit]
    with_counts = bool_param(request.query, "with_counts")
    data = []
    for guild in guilds:
        entry = guild.partial_json()
        if not with_counts:
            entry.pop("approximate_member_count")
            entry.pop("approximate_presence_count")
        data.append(entry)
    return json_response(data)


@route("GET", "/oauth2/applications/@me", "applications_me")
async def get_my_application(request: web.Request) -> web.Response:
    world = world_of(request)
    # Flags tell whether the privileged members intent is switched on in the portal.
    flags = (1 << 14) if world.members_intent_enabled else 0
    return json_response(
        {
            "id": str(world.bot_id),
            "name": world.BOT_USERNAME,
            "icon": None,
            "description": "GuildHub's Discord API emulator",
            "summary": "",
            "type": None,
            # Unset optional fields (cover_image, slug, guild_id, primary_sku_id, the
            # policy and install URLs, install_params) are absent, not null, as Discord sends them.
            "bot": world.bot_user,
            "rpc_origins": [],
            "bot_public": False,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": flags,
            "flags_new": str(flags),
            "owner": {**world.bot_user, "username": "emulator-owner", "bot": False},
            "team": None,
            "integration_types_config": {},
            "tags": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "approximate_guild_count": sum(1 for g in world.guilds.values() if g.bot_present),
            "approximate_user_install_count": 0,
            "approximate_user_authorization_count": 0,
            "eligible_oauth2_scopes": ["applications.commands", "bot"],
            "is_monetized": False,
            "is_verified": False,
            "is_discoverable": False,
            "storefront_available": False,
            "max_participants": None,
            "explicit_content_filter": 0,
        }
    )


def gateway_url(request: web.Request) -> str:
    # The websocket lives on the same host and port as REST, like a one-box Discord.
    return f"ws://{request.host}/gateway"


@route("GET", "/gateway", "gateway")
async def get_gateway(request: web.Request) -> web.Response:
    return json_response({"url": gateway_url(request)})


@route("GET", "/gateway/bot", "gateway_bot")
async def get_gateway_bot(request: web.Request) -> web.Response:
    return json_response(
        {
            "url": gateway_url(request),
            "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1},
        }
    )


# -- guilds, members, roles, channels -----------------------------------


@route("GET", "/guilds/{guild_id}", "guild", ("guild_id",))
async def get_guild(request: web.Request) -> web.Response:
    guild = guild_of(request)
    return json_response(guild.to_json(with_counts=bool_param(request.query, "with_counts")))


@route("GET", "/guilds/{guild_id}/members", "members_list", ("guild_id",))
async def list_members(request: web.Request) -> web.Response:
    guild = guild_of(request)
    require_members_intent(world_of(request))
    # Discord's default limit is 1: a classic source of "the picker shows one member".
    limit = int_param(request.query, "limit", default=1, low=1, high=1000)
    after = snowflake(request.query.get("after", "0"), "after")
    body, _, _ = guild.list_members_json(after=after, limit=limit)
    return encoded_json_response(body)


@route("GET", "/guilds/{guild_id}/members/search", "members_search", ("guild_id",))
async def search_members(request: web.Request) -> web.Response:
    guild = guild_of(request)
    query = request.query.get("query")
    if query is None:
        raise invalid_form("query", "BASE_TYPE_REQUIRED", "This field is required")
    if len(query) > 100:
        raise invalid_form("query", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    limit = int_param(request.query, "limit", default=1, low=1, high=1000)
    return json_response(guild.search_members(query, limit) if query else [])


@route("GET", "/guilds/{guild_id}/members/{user_id}", "member_get", ("guild_id",))
async def get_member(request: web.Request) -> web.Response:
    guild = guild_of(request)
    return json_response(member_of(guild, request.match_info["user_id"]))


@route("PATCH", "/guilds/{guild_id}/members/{user_id}", "member_patch", ("guild_id",))
async def modify_member(request: web.Request) -> web.Response:
    world = world_of(request)
    guild = guild_of(request)
    member = member_of(guild, request.match_info["user_id"])
    body = await json_body(request)
    changes: dict = {}
    bot_member = guild.member(world.bot_id)
    bot_top = guild.top_role_position(bot_member) if bot_member else 0
    if "nick" in body:
        nick = body["nick"]
        if nick is not None and (not isinstance(nick, str) or len(nick) > 32):
            raise invalid_form("nick", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
        if guild.top_role_position(member) >= bot_top and int(member["user"]["id"]) != world.bot_id:
            raise missing_permissions()
        changes["nick"] = nick or None
    if "roles" in body:
        roles = body["roles"]
        if not isinstance(roles, list) or not all(isinstance(r, str | int) for r in roles):
            raise invalid_form("roles", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
        wanted = []
        for index, raw in enumerate(roles):
            rid = snowflake(str(raw), f"roles.{index}")
            if guild.role(rid) is None:
                raise invalid_form(f"roles.{index}", "ROLE_INVALID", "Role not found.")
            if str(rid) not in wanted:
                wanted.append(str(rid))
        # Only the roles that change must be below the bot's highest role.
        for rid in set(wanted) ^ set(member["roles"]):
            role = guild.role(int(rid))
            if role is not None and (role["position"] >= bot_top or role["managed"]):
                raise missing_permissions()
        changes["roles"] = wanted
    for key in body:
        if key not in {"nick", "roles", "mute", "deaf", "channel_id", "communication_disabled_until", "flags"}:
            raise invalid_form(key, "BASE_TYPE_UNKNOWN", "Unknown field.")
    world.record_audit(guild, audit_reason(request), "member_update", member["user"]["id"], changes)
    updated = world.update_member(guild, int(member["user"]["id"]), changes) if changes else member
    return json_response(updated)


async def change_member_role(request: web.Request, *, add: bool) -> web.Response:
    world = world_of(request)
    guild = guild_of(request)
    member = member_of(guild, request.match_info["user_id"])
    rid = snowflake(request.match_info["role_id"], "role_id")
    role = guild.role(rid)
    if role is None:
        raise not_found(UNKNOWN_ROLE, "Role")
    bot_member = guild.member(world.bot_id)
    # The bot can only manage roles strictly below its own highest role.
    if role["managed"] or role["position"] >= (guild.top_role_position(bot_member) if bot_member else 0):
        raise missing_permissions()
    roles = list(member["roles"])
    if add and str(rid) not in roles:
        roles.append(str(rid))
    elif not add and str(rid) in roles:
        roles.remove(str(rid))
    if roles != member["roles"]:
        world.record_audit(
            guild,
            audit_reason(request),
            "member_role_add" if add else "member_role_remove",
            member["user"]["id"],
            {"role_id": str(rid)},
        )
        world.update_member(guild, int(member["user"]["id"]), {"roles": roles})
    return no_content()


@route("PUT", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", "member_roles", ("guild_id",))
async def add_member_role(request: web.Request) -> web.Response:
    return await change_member_role(request, add=True)


@route("DELETE", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", "member_roles", ("guild_id",))
async def remove_member_role(request: web.Request) -> web.Response:
    return await change_member_role(request, add=False)


@route("GET", "/guilds/{guild_id}/roles", "roles_list", ("guild_id",))
async def list_roles(request: web.Request) -> web.Response:
    return json_response(guild_of(request).roles)


@route("GET", "/guilds/{guild_id}/channels", "channels_list", ("guild_id",))
async def list_channels(request: web.Request) -> web.Response:
    guild = guild_of(request)
    return json_response([channel.to_json() for channel in guild.channels.values()])


@route("GET", "/channels/{channel_id}", "channel", ("channel_id",))
async def get_channel(request: web.Request) -> web.Response:
    _, channel = channel_of(request)
    return json_response(channel.to_json())


@route("GET", "/channels/{channel_id}/messages", "messages", ("channel_id",))
async def list_messages(request: web.Request) -> web.Response:
    guild, channel = channel_of(request)
    if channel.type not in (0, 2, 5):
        raise DiscordHTTPError(400, 50024, "Cannot execute action on this channel type")
    limit = int_param(request.query, "limit", default=50, low=1, high=100)
    anchors = {name: request.query[name] for name in ("before", "after", "around") if name in request.query}
    parsed = {name: snowflake(value, name) for name, value in anchors.items()}
    # Discord honours one anchor, in this order of precedence.
    around = parsed.get("around")
    before = parsed.get("before") if around is None else None
    after = parsed.get("after") if around is None and before is None else None
    return json_response(channel.history(guild, limit=limit, before=before, after=after, around=around))


# -- application commands and interactions ------------------------------


def commands_key(request: web.Request) -> int | None:
    world = world_of(request)
    if snowflake(request.match_info["application_id"], "application_id") != world.bot_id:
        raise missing_access()
    if "guild_id" in request.match_info:
        return guild_of(request).id
    return None


def command_object(world: World, scope: int | None, body: dict, existing: dict | None = None) -> dict:
    name = body.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        raise invalid_form("name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length.")
    command_type = body.get("type", 1)
    description = body.get("description", "")
    if command_type == 1 and not (isinstance(description, str) and 1 <= len(description) <= 100):
        raise invalid_form("description", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    command = {
        "id": existing["id"] if existing else str(world.new_id()),
        "application_id": str(world.bot_id),
        "version": str(world.new_id()),
        "default_member_permissions": body.get("default_member_permissions"),
        "type": command_type,
        "name": name,
        "name_localizations": body.get("name_localizations"),
        "description": description,
        "description_localizations": body.get("description_localizations"),
        "dm_permission": body.get("dm_permission", True),
        "contexts": body.get("contexts"),
        "integration_types": body.get("integration_types", [0]),
        "options": body.get("options", []),
        "nsfw": body.get("nsfw", False),
    }
    if scope is not None:
        command["guild_id"] = str(scope)
    return command


@route("GET", "/applications/{application_id}/commands", "commands")
@route("GET", "/applications/{application_id}/guilds/{guild_id}/commands", "commands", ("guild_id",))
async def list_commands(request: web.Request) -> web.Response:
    return json_response(world_of(request).commands.get(commands_key(request), []))


@route("PUT", "/applications/{application_id}/commands", "commands")
@route("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", "commands", ("guild_id",))
async def overwrite_commands(request: web.Request) -> web.Response:
    world = world_of(request)
    scope = commands_key(request)
    try:
        body = await request.json()
    except json.JSONDecodeError:
        raise DiscordHTTPError(400, 50109, "The request body contains invalid JSON.") from None
    if not isinstance(body, list):
        raise invalid_form("_", "LIST_TYPE_CONVERT", "Only iterables may be used in a ListType")
    current = {c["name"]: c for c in world.commands.get(scope, [])}
    world.commands[scope] = [command_object(world, scope, item, current.get(item.get("name"))) for item in body]
    return json_response(world.commands[scope])


@route("POST", "/applications/{application_id}/commands", "commands")
@route("POST", "/applications/{application_id}/guilds/{guild_id}/commands", "commands", ("guild_id",))
async def create_command(request: web.Request) -> web.Response:
    world = world_of(request)
    scope = commands_key(request)
    body = await json_body(request)
    commands = world.commands.setdefault(scope, [])
    existing = next((c for c in commands if c["name"] == body.get("name")), None)
    command = command_object(world, scope, body, existing)
    if existing:
        commands[commands.index(existing)] = command
        return json_response(command)
    commands.append(command)
    return json_response(command, status=201)


def interaction_of(request: web.Request):
    world = world_of(request)
    iid = snowflake(request.match_info["interaction_id"], "interaction_id")
    interaction = world.interactions.get(iid)
    if interaction is None or interaction.token != request.match_info["token"]:
        raise not_found(UNKNOWN_INTERACTION, "interaction")
    return interaction


async def read_payload(request: web.Request) -> dict:
    """A JSON body, or the `payload_json` part of a multipart body (files attached)."""
    if request.content_type.startswith("multipart/"):
        form = await request.post()
        return json.loads(form.get("payload_json", "{}"))
    return await json_body(request)


@route("POST", "/interactions/{interaction_id}/{token}/callback", "interaction_callback", ("interaction_id", "token"))
async def interaction_callback(request: web.Request) -> web.Response:
    interaction = interaction_of(request)
    body = await read_payload(request)
    if body.get("type") not in {1, 4, 5, 6, 7, 8, 9, 12}:
        raise invalid_form("type", "BASE_TYPE_CHOICES", "Value must be one of {1, 4, 5, 6, 7, 8, 9, 12}.")
    if any(r.get("kind") == "callback" for r in interaction.responses):
        raise DiscordHTTPError(400, INTERACTION_ALREADY_ACKNOWLEDGED, "Interaction has already been acknowledged.")
    interaction.responses.append({"kind": "callback", **body})
    if bool_param(request.query, "with_response"):
        world = world_of(request)
        data = body.get("data") or {}
        answer: dict = {"interaction": {"id": str(interaction.id), "type": 2, "activity_instance_id": None}}
        # Discord's spec knows a `resource` only for a message (4), a message update (7)
        # and an activity launch (12); deferrals, modals and pongs get the interaction
        # alone, and only responses that show a message name it (response_message_*).
        if body["type"] in (4, 5, 7):
            message = webhook_message(world, interaction, data)
            answer["interaction"].update(
                response_message_id=message["id"],
                response_message_loading=body["type"] == 5,
                response_message_ephemeral=bool(data.get("flags", 0) & 64),
            )
            if body["type"] != 5:
                answer["resource"] = {"type": body["type"], "message": message}
        return json_response(answer)
    return no_content()


def webhook_message(world: World, interaction, data: dict) -> dict:
    channel = world.channels.get(interaction.channel_id)
    message = {
        "id": str(world.new_id()),
        "type": 20,
        "channel_id": str(interaction.channel_id),
        "author": world.bot_user,
        "content": data.get("content", ""),
        "timestamp": gen.iso(gen.snowflake_time(world.new_id())),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        # Discord stores what a bot sends as a "rich" embed and says so in every embed it returns.
        "embeds": [{"type": "rich", **embed} for embed in data.get("embeds") or []],
        "pinned": False,
        "flags": data.get("flags", 0),
        "components": [],
        "webhook_id": str(world.bot_id),
        "application_id": str(world.bot_id),
    }
    if channel is not None:
        message["guild_id"] = str(channel.guild_id)
    return message


def followup_interaction(request: web.Request):
    world = world_of(request)
    if snowflake(request.match_info["webhook_id"], "webhook_id") != world.bot_id:
        raise not_found(UNKNOWN_WEBHOOK, "Webhook")
    token = request.match_info["token"]
    interaction = next((i for i in world.interactions.values() if i.token == token), None)
    if interaction is None:
        raise not_found(UNKNOWN_WEBHOOK, "Webhook")
    return world, interaction


@route("POST", "/webhooks/{webhook_id}/{token}", "webhook", ("webhook_id", "token"))
async def create_followup(request: web.Request) -> web.Response:
    world, interaction = followup_interaction(request)
    body = await read_payload(request)
    interaction.responses.append({"kind": "followup", **body})
    return json_response(webhook_message(world, interaction, body))


@route("PATCH", "/webhooks/{webhook_id}/{token}/messages/{message_id}", "webhook", ("webhook_id", "token"))
async def edit_followup(request: web.Request) -> web.Response:
    world, interaction = followup_interaction(request)
    body = await read_payload(request)
    interaction.responses.append({"kind": "edit", "message_id": request.match_info["message_id"], **body})
    return json_response(webhook_message(world, interaction, body))


@route("GET", "/webhooks/{webhook_id}/{token}/messages/{message_id}", "webhook", ("webhook_id", "token"))
async def get_followup(request: web.Request) -> web.Response:
    world, interaction = followup_interaction(request)
    return json_response(webhook_message(world, interaction, {}))
