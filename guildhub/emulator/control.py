"""The control API under /_emulator/: change the world, inject faults, read counters.

Tests and the demo use it to play Discord's side: members join and leave,
messages are posted, slash commands are run, and Discord has a bad day. It only
answers on loopback.
"""

from __future__ import annotations

import ipaddress
import json
import secrets

from aiohttp import web

from guildhub.emulator import rest
from guildhub.emulator.faults import FAULTS_KEY, Faults
from guildhub.emulator.ratelimits import LIMITER_KEY, PROFILES, BucketRule
from guildhub.emulator.state import Counters, GuildSpec, Interaction, World

routes = web.RouteTableDef()
PREFIX = "/_emulator"


def plain_json(data: object, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, ensure_ascii=False).encode(), status=status, content_type="application/json"
    )


def bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def not_found(message: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=json.dumps({"error": message}), content_type="application/json")


def is_loopback(remote: str | None) -> bool:
    try:
        return ipaddress.ip_address(remote or "").is_loopback
    except ValueError:
        return False


@web.middleware
async def loopback_only(request: web.Request, handler):
    if request.path.startswith(PREFIX) and not is_loopback(request.remote):
        raise web.HTTPForbidden(text="the emulator control API answers on loopback only")
    return await handler(request)


def world_of(request: web.Request) -> World:
    return request.app[rest.WORLD_KEY]


async def body_of(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except json.JSONDecodeError:
        raise bad_request("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise bad_request("body must be a JSON object")
    return data


def only_fields(body: dict, allowed: set[str]) -> None:
    unknown = set(body) - allowed
    if unknown:
        raise bad_request(f"unknown fields: {', '.join(sorted(unknown))}")


def id_param(request: web.Request, name: str) -> int:
    raw = request.match_info[name]
    if not raw.isdigit():
        raise bad_request(f"{name} must be a snowflake")
    return int(raw)


def guild_param(request: web.Request):
    guild = world_of(request).guilds.get(id_param(request, "guild_id"))
    if guild is None:
        raise not_found("unknown guild")
    return guild


def summary(world: World) -> dict:
    return {
        "bot": world.bot_user,
        "application_id": str(world.bot_id),
        "members_intent": world.members_intent_enabled,
        "guilds": [
            {
                "id": str(g.id),
                "name": g.name,
                "member_count": g.member_count,
                "bot_present": g.bot_present,
                "roles": g.roles,
                "channels": [
                    {"id": str(c.id), "name": c.name, "type": c.type, "message_count": c.message_count}
                    for c in g.channels.values()
                ],
            }
            for g in world.guilds.values()
        ],
    }


@routes.get(PREFIX + "/state")
async def get_state(request: web.Request) -> web.Response:
    return plain_json(summary(world_of(request)))


@routes.post(PREFIX + "/guilds")
async def create_guild(request: web.Request) -> web.Response:
    body = await body_of(request)
    try:
        spec = GuildSpec(**body)
    except TypeError as exc:
        raise bad_request(str(exc)) from None
    if not 0 <= spec.members <= 1_000_000:
        raise bad_request("members must be between 0 and 1000000")
    guild = world_of(request).add_guild(spec)
    return plain_json({"id": str(guild.id), "name": guild.name}, status=201)


@routes.patch(PREFIX + "/guilds/{guild_id}")
async def change_guild(request: web.Request) -> web.Response:
    guild = guild_param(request)
    body = await body_of(request)
    if "name" in body:
        guild.name = str(body["name"])
    if "bot_present" in body:
        guild.bot_present = bool(body["bot_present"])
    return plain_json({"id": str(guild.id), "name": guild.name, "bot_present": guild.bot_present})


@routes.post(PREFIX + "/guilds/{guild_id}/members")
async def add_member(request: web.Request) -> web.Response:
    guild = guild_param(request)
    body = await body_of(request)
    only_fields(body, {"user_id", "username", "global_name", "nick", "bot", "roles", "avatar"})
    if "user_id" in body:
        body["user_id"] = int(body["user_id"])
    member = world_of(request).add_member(guild, **body)
    return plain_json(member, status=201)


@routes.patch(PREFIX + "/guilds/{guild_id}/members/{user_id}")
async def update_member(request: web.Request) -> web.Response:
    guild = guild_param(request)
    body = await body_of(request)
    only_fields(body, {"username", "global_name", "nick", "roles", "avatar"})
    member = world_of(request).update_member(guild, id_param(request, "user_id"), body)
    if member is None:
        raise not_found("unknown member")
    return plain_json(member)


@routes.delete(PREFIX + "/guilds/{guild_id}/members/{user_id}")
async def remove_member(request: web.Request) -> web.Response:
    guild = guild_param(request)
    member = world_of(request).remove_member(guild, id_param(request, "user_id"))
    if member is None:
        raise not_found("unknown member")
    return plain_json(member)


@routes.post(PREFIX + "/channels/{channel_id}/messages")
async def post_message(request: web.Request) -> web.Response:
    world = world_of(request)
    channel = world.channels.get(id_param(request, "channel_id"))
    if channel is None:
        raise not_found("unknown channel")
    body = await body_of(request)
    guild = world.guilds[channel.guild_id]
    author = world.bot_user
    if "author_id" in body:
        member = guild.member(int(body["author_id"]))
        if member is None:
            raise bad_request("author is not a member of the channel's guild")
        author = member["user"]
    count = int(body.get("count", 1))
    if not 1 <= count <= 10_000:
        raise bad_request("count must be between 1 and 10000")
    content = str(body.get("content", "hello"))
    messages = [world.post_message(channel, author=author, content=content) for _ in range(count)]
    return plain_json(messages[-1] if count == 1 else {"posted": count, "last_id": messages[-1]["id"]}, status=201)


@routes.get(PREFIX + "/faults")
async def get_faults(request: web.Request) -> web.Response:
    return plain_json(request.app[FAULTS_KEY].faults.to_json())


@routes.put(PREFIX + "/faults")
async def set_faults(request: web.Request) -> web.Response:
    try:
        faults = Faults.from_json(await body_of(request))
    except (TypeError, ValueError) as exc:
        raise bad_request(str(exc)) from None
    request.app[FAULTS_KEY].set(faults)
    return plain_json(faults.to_json())


@routes.delete(PREFIX + "/faults")
async def clear_faults(request: web.Request) -> web.Response:
    request.app[FAULTS_KEY].set(Faults())
    return plain_json(Faults().to_json())


@routes.put(PREFIX + "/settings")
async def change_settings(request: web.Request) -> web.Response:
    body = await body_of(request)
    world = world_of(request)
    limiter = request.app[LIMITER_KEY]
    if "members_intent" in body:
        world.members_intent_enabled = bool(body["members_intent"])
    if "profile" in body or "buckets" in body:
        name = body.get("profile", limiter.profile.name)
        if name not in PROFILES:
            raise bad_request(f"profile must be one of {', '.join(PROFILES)}")
        try:
            overrides = {k: BucketRule.parse(v) for k, v in body.get("buckets", {}).items()}
        except ValueError:
            raise bad_request('buckets look like {"messages": "5/5"}') from None
        limiter.set_profile(PROFILES[name].with_buckets(overrides))
    return plain_json({"members_intent": world.members_intent_enabled, "profile": limiter.profile.name})


@routes.get(PREFIX + "/counters")
async def get_counters(request: web.Request) -> web.Response:
    return plain_json(world_of(request).counters.to_json())


@routes.post(PREFIX + "/counters/reset")
async def reset_counters(request: web.Request) -> web.Response:
    world_of(request).counters = Counters()
    return plain_json(world_of(request).counters.to_json())


@routes.get(PREFIX + "/audit-log")
async def get_audit_log(request: web.Request) -> web.Response:
    return plain_json(world_of(request).audit_log)


@routes.get(PREFIX + "/commands")
async def get_commands(request: web.Request) -> web.Response:
    commands = world_of(request).commands
    return plain_json({str(scope) if scope else "global": items for scope, items in commands.items()})


def gateway_of(request: web.Request):
    from guildhub.emulator import gateway

    return request.app[gateway.GATEWAY_KEY]


@routes.post(PREFIX + "/gateway/{action}")
async def gateway_action(request: web.Request) -> web.Response:
    gateway = gateway_of(request)
    action = request.match_info["action"]
    if action == "reconnect":
        count = await gateway.reconnect_all()
    elif action == "invalidate":
        body = await body_of(request)
        count = await gateway.invalidate_all(bool(body.get("resumable", False)))
    elif action == "drop":
        count = await gateway.drop_all()
    else:
        raise not_found("actions: reconnect, invalidate, drop")
    return plain_json({"sessions": count})


@routes.post(PREFIX + "/interactions")
async def create_interaction(request: web.Request) -> web.Response:
    world = world_of(request)
    body = await body_of(request)
    try:
        guild = world.guilds[int(body["guild_id"])]
    except (KeyError, ValueError):
        raise bad_request("guild_id of a known guild is required") from None
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise bad_request("name (the slash command) is required")
    text_channels = [c for c in guild.channels.values() if c.type == 0]
    channel_id = int(body.get("channel_id") or (text_channels[0].id if text_channels else guild.id))
    user_id = int(body.get("user_id") or guild.owner_id)
    if guild.member(user_id) is None:
        raise bad_request("user_id is not a member of the guild")
    interaction = Interaction(
        id=world.new_id(),
        token=secrets.token_urlsafe(48),
        guild_id=guild.id,
        channel_id=channel_id,
        user_id=user_id,
        payload={"name": name, "options": body.get("options", [])},
    )
    world.interactions[interaction.id] = interaction
    delivered = await gateway_of(request).dispatch_interaction(interaction)
    return plain_json({"id": str(interaction.id), "token": interaction.token, "delivered": delivered}, status=201)


@routes.get(PREFIX + "/interactions/{interaction_id}")
async def get_interaction(request: web.Request) -> web.Response:
    interaction = world_of(request).interactions.get(id_param(request, "interaction_id"))
    if interaction is None:
        raise not_found("unknown interaction")
    return plain_json({"id": str(interaction.id), "payload": interaction.payload, "responses": interaction.responses})


def setup_control(app: web.Application) -> None:
    app.middlewares.append(loopback_only)
    app.add_routes(routes)
