"""The emulated Discord gateway: the websocket that discord.py's DiscordWebSocket talks to.

Checked against discord.py 2.7.1 (gateway.py, client.py, shard.py, state.py) and
Discord's gateway documentation:

- `GET /gateway?v=10&encoding=json&compress=zlib-stream` upgrades to a websocket.
  With `zlib-stream` every message goes through one zlib stream per connection and
  ends with a Z_SYNC_FLUSH (`00 00 ff ff`), in binary frames; `zstd-stream` works
  the same way with zstd when a zstd module is importable; otherwise plain text.
- HELLO → IDENTIFY → READY (guilds unavailable) → GUILD_CREATE per guild of the
  shard; or RESUME → the dispatches the client missed → RESUMED.
- Heartbeats (op 1 → op 11), the client send limit (4008), Discord's close codes.
- REQUEST_GUILD_MEMBERS (op 8) answered by GUILD_MEMBERS_CHUNK dispatches of at
  most 1000 members, streamed a page at a time so a million-member guild is never
  in memory at once and heartbeats keep flowing meanwhile.
- World events (member add/update/remove, messages) and interactions become
  dispatches, for the sessions whose intents and shard cover them.
- Fault injection for the control API: reconnect (op 7), invalid session (op 9),
  dropped TCP connections.

Everything here runs on the emulator's event loop thread, like the World.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import yarl
from aiohttp import WSMsgType, web

from guildhub.emulator.responses import encode_json
from guildhub.emulator.state import (
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_PRESENCES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    Guild,
    Interaction,
    World,
)

try:  # the module discord.py itself prefers; it asks for zstd-stream only when one is importable
    import zstandard
except ImportError:  # pragma: no cover - depends on the environment
    zstandard = None

log = logging.getLogger(__name__)

# -- protocol constants ---------------------------------------------------

OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE_UPDATE = 3
OP_VOICE_STATE_UPDATE = 4
OP_RESUME = 6
OP_RECONNECT = 7
OP_REQUEST_GUILD_MEMBERS = 8
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11
OP_REQUEST_SOUNDBOARD_SOUNDS = 31
# Commands a client may send. Presence, voice state and soundboard requests are
# accepted and ignored: the emulator has no presences, voice or sounds.
CLIENT_OPS = {
    OP_HEARTBEAT,
    OP_IDENTIFY,
    OP_PRESENCE_UPDATE,
    OP_VOICE_STATE_UPDATE,
    OP_RESUME,
    OP_REQUEST_GUILD_MEMBERS,
    OP_REQUEST_SOUNDBOARD_SOUNDS,
}

CLOSE_GOING_AWAY = 1001
CLOSE_UNKNOWN_ERROR = 4000
CLOSE_UNKNOWN_OPCODE = 4001
CLOSE_DECODE_ERROR = 4002
CLOSE_NOT_AUTHENTICATED = 4003
CLOSE_AUTHENTICATION_FAILED = 4004
CLOSE_ALREADY_AUTHENTICATED = 4005
CLOSE_INVALID_SEQ = 4007
CLOSE_RATE_LIMITED = 4008
CLOSE_SESSION_TIMED_OUT = 4009
CLOSE_INVALID_SHARD = 4010
CLOSE_SHARDING_REQUIRED = 4011
CLOSE_INVALID_API_VERSION = 4012
CLOSE_INVALID_INTENTS = 4013
CLOSE_DISALLOWED_INTENTS = 4014

INTENT_GUILD_MESSAGES = 1 << 9
SUPPORTED_VERSIONS = {9, 10}
MAX_PAYLOAD_BYTES = 4096  # Discord closes with 4002 above this
MEMBER_CHUNK_SIZE = 1000
MAX_USER_IDS = 100
MAX_QUERY_RESULTS = 100
MAX_NONCE_BYTES = 32  # a longer nonce is ignored, as Discord does
MAX_GUILDS_PER_SHARD = 2500
APPLICATION_FLAG_GATEWAY_GUILD_MEMBERS = 1 << 14  # the same flag REST's /oauth2/applications/@me reports
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
PERMISSION_ADMINISTRATOR = 1 << 3
ALL_PERMISSIONS = (1 << 53) - 1

# World events the gateway forwards, with the intent each needs. Discord keys
# GUILD_UPDATE by `id`, every other guild event by `guild_id`.
EVENT_INTENTS = {
    "GUILD_MEMBER_ADD": INTENT_GUILD_MEMBERS,
    "GUILD_MEMBER_UPDATE": INTENT_GUILD_MEMBERS,
    "GUILD_MEMBER_REMOVE": INTENT_GUILD_MEMBERS,
    "MESSAGE_CREATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_UPDATE": INTENT_GUILD_MESSAGES,
    "MESSAGE_DELETE": INTENT_GUILD_MESSAGES,
    "GUILD_UPDATE": INTENT_GUILDS,
    "GUILD_ROLE_CREATE": INTENT_GUILDS,
    "GUILD_ROLE_UPDATE": INTENT_GUILDS,
    "GUILD_ROLE_DELETE": INTENT_GUILDS,
    "CHANNEL_CREATE": INTENT_GUILDS,
    "CHANNEL_UPDATE": INTENT_GUILDS,
    "CHANNEL_DELETE": INTENT_GUILDS,
}
# Without the message content intent Discord blanks these fields of other
# users' messages that do not mention the bot.
CONTENT_FIELDS = {"content": "", "embeds": [], "attachments": [], "components": []}


class GatewayClosed(Exception):
    """The connection a dispatch was meant for is gone."""


# -- compression ------------------------------------------------------------


def zlib_stream() -> Callable[[bytes], bytes]:
    """One zlib stream for the connection; each message ends with a sync flush (00 00 ff ff)."""
    stream = zlib.compressobj()
    return lambda data: stream.compress(data) + stream.flush(zlib.Z_SYNC_FLUSH)


def zstd_stream() -> Callable[[bytes], bytes] | None:
    """One zstd stream for the connection, flushed per message; None without a zstd module."""
    if zstandard is not None:
        stream = zstandard.ZstdCompressor().compressobj()
        return lambda data: stream.compress(data) + stream.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    try:  # Python 3.14's standard library, which discord.py also uses
        from compression.zstd import ZstdCompressor  # type: ignore[import-not-found]
    except ImportError:
        return None
    compressor = ZstdCompressor()
    return lambda data: compressor.compress(data, mode=ZstdCompressor.FLUSH_BLOCK)


def zstd_available() -> bool:
    return zstd_stream() is not None


# -- payloads -------------------------------------------------------------


def snowflake_of(value: object) -> int | None:
    """A snowflake from JSON (discord.py sends ints where Discord documents strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def shard_of(guild_id: int, shard_count: int) -> int:
    """Discord's sharding formula."""
    return (guild_id >> 22) % shard_count


def member_permissions(guild: Guild, member: dict) -> int:
    """The guild-level permissions of a member: @everyone plus their roles; all for the owner."""
    if int(member["user"]["id"]) == guild.owner_id:
        return ALL_PERMISSIONS
    wanted = {str(guild.id), *member["roles"]}
    permissions = 0
    for role in guild.roles:
        if role["id"] in wanted:
            permissions |= int(role["permissions"])
    return ALL_PERMISSIONS if permissions & PERMISSION_ADMINISTRATOR else permissions


def guild_create_payload(world: World, guild: Guild, *, large_threshold: int) -> dict:
    """A GUILD_CREATE as a bot gets it after READY.

    A large guild (more members than the identify's `large_threshold`) carries only
    the bot's own member, as Discord sends no offline members for those; a small one
    carries every member (at most 250, the highest threshold).
    """
    me = guild.member(world.bot_id)
    large = guild.member_count > large_threshold
    members = ([me] if me else []) if large else guild.list_members(after=0, limit=large_threshold)
    return {
        **guild.to_json(),
        "joined_at": me["joined_at"] if me else None,
        "large": large,
        "unavailable": False,
        "member_count": guild.member_count,
        "members": members,
        "channels": [channel.to_json() for channel in guild.channels.values()],
        "threads": [],
        "presences": [],
        "voice_states": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "embedded_activities": [],
        "lazy": True,
    }


def without_content(message: dict) -> dict:
    return {**message, **CONTENT_FIELDS}


def interaction_payload(world: World, interaction: Interaction) -> dict:
    """The INTERACTION_CREATE of a slash command (type 2 APPLICATION_COMMAND) in a guild.

    `interaction.payload` holds what the control API received:

    - `name` (str, required): the command's name;
    - `options` (list, optional): the options as Discord sends them, e.g.
      `[{"name": "guild", "type": 3, "value": "123"}]`;
    - `type` (int, optional): the command type, 1 (CHAT_INPUT) by default;
    - `command_id` (optional): the command's id; by default the id of the command
      of that name registered for the guild or globally (world.commands), else a
      stable made-up one;
    - `locale` (str, optional): the invoking user's locale, "en-US" by default.

    Raises ValueError when the guild or the invoking member does not exist.
    """
    guild = world.guilds.get(interaction.guild_id)
    if guild is None:
        raise ValueError(f"unknown guild {interaction.guild_id}")
    member = guild.member(interaction.user_id)
    if member is None:
        raise ValueError(f"user {interaction.user_id} is not a member of guild {guild.id}")
    spec = interaction.payload
    name = spec["name"]
    command = next(
        (c for scope in (guild.id, None) for c in world.commands.get(scope, []) if c.get("name") == name),
        None,
    )
    command_id = spec.get("command_id") or (command["id"] if command else interaction.id - 1)
    data = {"id": str(command_id), "name": name, "type": spec.get("type", 1), "options": spec.get("options", [])}
    if command is not None and command.get("guild_id"):
        data["guild_id"] = command["guild_id"]
    permissions = member_permissions(guild, member)
    bot_member = guild.member(world.bot_id)
    app_permissions = member_permissions(guild, bot_member) if bot_member else 0
    payload = {
        "id": str(interaction.id),
        "application_id": str(world.bot_id),
        "type": 2,
        "data": data,
        "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
        "guild_id": str(guild.id),
        "channel_id": str(interaction.channel_id),
        "member": {**member, "permissions": str(permissions)},
        "token": interaction.token,
        "version": 1,
        "app_permissions": str(app_permissions),
        "locale": spec.get("locale", "en-US"),
        "guild_locale": "en-US",
        "entitlements": [],
        "entitlement_sku_ids": [],
        "authorizing_integration_owners": {"0": str(guild.id)},  # installed to the guild
        "context": 0,  # GUILD
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,  # discord.py reads it unconditionally
    }
    channel = world.channels.get(interaction.channel_id)
    if channel is not None:
        payload["channel"] = {**channel.to_json(), "permissions": str(permissions)}
    return payload


# -- sessions and connections ------------------------------------------------


@dataclass(eq=False)
class Session:
    """What survives a dropped connection: identity, sequence, and the dispatches to replay."""

    id: str
    token: str
    intents: int
    shard_id: int
    shard_count: int
    large_threshold: int
    replay_limit: int
    seq: int = 0
    buffer: deque = field(default_factory=deque)
    evicted_seq: int = 0  # the newest sequence number dropped from `buffer`
    connection: Connection | None = None
    disconnected_at: float = 0.0

    def owns(self, guild_id: int) -> bool:
        return shard_of(guild_id, self.shard_count) == self.shard_id

    def wants(self, intent: int) -> bool:
        return bool(self.intents & intent)

    def next_dispatch(self, event: str, data: dict) -> dict:
        self.seq += 1
        return {"op": OP_DISPATCH, "t": event, "s": self.seq, "d": data}

    def dispatch(self, event: str, data: dict, *, replay: bool = True) -> dict:
        """Send a dispatch now if connected; keep it for a RESUME either way."""
        payload = self.next_dispatch(event, data)
        if replay:
            self.buffer.append(payload)
            while len(self.buffer) > self.replay_limit:
                self.evicted_seq = self.buffer.popleft()["s"]
        if self.connection is not None:
            self.connection.send(payload)
        return payload

    async def dispatch_and_wait(self, connection: Connection, event: str, data: dict) -> None:
        """Send a dispatch on `connection` and wait until it is written (backpressure).

        Not kept for replay: member chunks would otherwise pin a whole large guild in
        memory; a client that resumes mid-request asks again.
        """
        if self.connection is not connection:
            raise GatewayClosed
        await connection.send_and_wait(self.next_dispatch(event, data))


class Connection:
    """One websocket: framing, compression, the client's commands."""

    def __init__(
        self, gateway: Gateway, ws: web.WebSocketResponse, request: web.Request, *, version: int, compressor
    ) -> None:
        self.gateway = gateway
        self.world = gateway.world
        self.ws = ws
        self.request = request
        self.version = version
        self.compressor: Callable[[bytes], bytes] | None = compressor
        self.session: Session | None = None
        self.closed = False
        self.queue: asyncio.Queue[tuple[dict, asyncio.Future | None]] = asyncio.Queue()
        self.writer: asyncio.Task | None = None
        self.tasks: set[asyncio.Task] = set()
        self.window_start = 0.0
        self.window_count = 0

    # -- sending -----------------------------------------------------------

    def send(self, payload: dict) -> None:
        if not self.closed:
            self.queue.put_nowait((payload, None))

    async def send_and_wait(self, payload: dict) -> None:
        if self.closed:
            raise GatewayClosed
        done = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((payload, done))
        await done

    async def write_loop(self) -> None:
        # One writer per connection keeps frames in sequence order and the
        # compression stream consistent, whoever queued them.
        while True:
            payload, done = await self.queue.get()
            try:
                data = encode_json(payload)
                if self.compressor is None:
                    await self.ws.send_str(data.decode())
                else:
                    await self.ws.send_bytes(self.compressor(data))
            except (ConnectionError, RuntimeError) as exc:
                self.closed = True  # the socket is gone: nothing more can be sent
                if done is not None and not done.done():
                    done.set_exception(GatewayClosed(str(exc)))
                self.fail_pending()
                return
            if done is not None and not done.done():
                done.set_result(None)

    def fail_pending(self) -> None:
        while not self.queue.empty():
            _, done = self.queue.get_nowait()
            if done is not None and not done.done():
                done.set_exception(GatewayClosed("connection closed"))

    async def close(self, code: int, reason: str = "") -> None:
        """Close with a Discord close code (the reason goes into the close frame)."""
        if self.closed:
            return
        self.closed = True
        if self.writer is not None:
            self.writer.cancel()
        self.fail_pending()
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close(code=code, message=reason.encode()[:120])

    def abort(self) -> None:
        """Drop the TCP connection: no close frame, as when a network path dies."""
        self.closed = True
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    # -- receiving ---------------------------------------------------------

    async def run(self) -> None:
        self.writer = asyncio.create_task(self.write_loop())
        self.send(
            {
                "op": OP_HELLO,
                "d": {"heartbeat_interval": self.gateway.heartbeat_interval_ms, "_trace": ["guildhub-emulator"]},
                "s": None,
                "t": None,
            }
        )
        try:
            while not self.closed and not self.ws.closed:
                try:
                    msg = await self.ws.receive(timeout=self.gateway.heartbeat_timeout)
                except TimeoutError:
                    await self.close(CLOSE_SESSION_TIMED_OUT, "Session timed out")
                    break
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self.received(msg.data)
                else:  # close, closing, closed, error
                    break
        finally:
            self.teardown()

    def teardown(self) -> None:
        self.closed = True
        for task in (*self.tasks, self.writer):
            if task is not None:
                task.cancel()
        self.fail_pending()
        self.gateway.connections.discard(self)
        session = self.session
        if session is not None and session.connection is self:
            session.connection = None
            session.disconnected_at = time.monotonic()

    def take_send_slot(self) -> bool:
        """Discord's client send limit: `send_limit` commands per `send_window` seconds."""
        now = time.monotonic()
        if now - self.window_start >= self.gateway.send_window:
            self.window_start, self.window_count = now, 0
        self.window_count += 1
        return self.window_count <= self.gateway.send_limit

    async def received(self, raw: str | bytes) -> None:
        if not self.take_send_slot():
            await self.close(CLOSE_RATE_LIMITED, "You are being rate limited.")
            return
        if len(raw.encode() if isinstance(raw, str) else raw) > MAX_PAYLOAD_BYTES:
            await self.close(CLOSE_DECODE_ERROR, "Payload too large.")
            return
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("op"), int):
            await self.close(CLOSE_DECODE_ERROR, "Error while decoding payload.")
            return
        op, data = payload["op"], payload.get("d")
        if op not in CLIENT_OPS:
            await self.close(CLOSE_UNKNOWN_OPCODE, "Unknown opcode.")
        elif op == OP_HEARTBEAT:
            # Allowed before IDENTIFY: discord.py heartbeats as soon as it gets HELLO.
            self.send({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == OP_IDENTIFY:
            await self.identify(data)
        elif op == OP_RESUME:
            await self.resume(data)
        elif self.session is None:
            await self.close(CLOSE_NOT_AUTHENTICATED, "Not authenticated.")
        elif op == OP_REQUEST_GUILD_MEMBERS:
            # Its own task: a long member list must not hold up heartbeats.
            task = asyncio.create_task(self.request_members(data))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    # -- identify and resume ---------------------------------------------

    async def authenticate(self, data: object) -> str | None:
        """The token of an identify or resume payload, or None after closing the socket as Discord does."""
        if self.session is not None:
            await self.close(CLOSE_ALREADY_AUTHENTICATED, "Already authenticated.")
            return None
        if not isinstance(data, dict):
            await self.close(CLOSE_DECODE_ERROR, "Error while decoding payload.")
            return None
        token = self.gateway.check_token(data.get("token"))
        if token is None:
            await self.close(CLOSE_AUTHENTICATION_FAILED, "Authentication failed.")
        return token

    async def identify(self, data: object) -> None:
        world = self.world
        token = await self.authenticate(data)
        if token is None:
            return
        intents = data.get("intents")
        if not isinstance(intents, int) or isinstance(intents, bool) or intents < 0:
            await self.close(CLOSE_INVALID_INTENTS, "Invalid intent(s).")
            return
        # Only the Server Members intent has a switch in the emulator; presences
        # and message content count as enabled in the developer portal.
        if intents & INTENT_GUILD_MEMBERS and not world.members_intent_enabled:
            await self.close(CLOSE_DISALLOWED_INTENTS, "Disallowed intent(s).")
            return
        shard = data.get("shard", [0, 1])
        if not (
            isinstance(shard, list)
            and len(shard) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) for n in shard)
            and 0 <= shard[0] < shard[1]
        ):
            await self.close(CLOSE_INVALID_SHARD, "Invalid shard.")
            return
        shard_id, shard_count = shard
        guilds = [g for g in world.guilds.values() if g.bot_present and shard_of(g.id, shard_count) == shard_id]
        if len(guilds) > MAX_GUILDS_PER_SHARD:
            await self.close(CLOSE_SHARDING_REQUIRED, "Sharding required.")
            return
        # `compress` (per-payload zlib) is ignored: transport compression, which
        # discord.py always asks for, replaces it; presence needs no answer.
        large_threshold = data.get("large_threshold", 50)
        if not isinstance(large_threshold, int) or isinstance(large_threshold, bool):
            large_threshold = 50
        large_threshold = min(max(large_threshold, 50), 250)

        session = self.gateway.new_session(
            token=token,
            intents=intents,
            shard_id=shard_id,
            shard_count=shard_count,
            large_threshold=large_threshold,
        )
        self.attach(session)
        world.counters.gateway_identifies += 1
        ready = {
            "v": self.version,
            "user": world.bot_user,
            "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway.url_for(self.request),
            "shard": [shard_id, shard_count],
            "application": {
                "id": str(world.bot_id),
                "flags": APPLICATION_FLAG_GATEWAY_GUILD_MEMBERS if world.members_intent_enabled else 0,
            },
            "user_settings": {},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["emulator"],
            "auth": {},
            "_trace": ["guildhub-emulator"],
        }
        session.dispatch("READY", ready)
        if session.wants(INTENT_GUILDS):
            # Discord sends these lazily after READY, and only with the GUILDS intent.
            for guild in guilds:
                session.dispatch("GUILD_CREATE", guild_create_payload(world, guild, large_threshold=large_threshold))

    async def resume(self, data: object) -> None:
        token = await self.authenticate(data)
        if token is None:
            return
        seq = data.get("seq")
        if seq is None:  # discord.py resumes with null when it never saw a dispatch
            seq = 0
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            await self.close(CLOSE_DECODE_ERROR, "Error while decoding payload.")
            return
        session = self.gateway.resumable_session(data.get("session_id"))
        if session is None or session.token != token:
            self.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        if seq > session.seq:
            await self.close(CLOSE_INVALID_SEQ, "Invalid seq.")
            return
        if seq < session.evicted_seq:
            # Too much was missed to replay it: the client must identify anew.
            self.gateway.forget(session)
            self.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        previous = session.connection
        if previous is not None and previous is not self:
            # The old socket may not have noticed it is dead yet; the session moves here.
            previous.session = None
            self.gateway.background(previous.close(CLOSE_UNKNOWN_ERROR, "Session resumed elsewhere."))
        self.attach(session)
        self.world.counters.gateway_resumes += 1
        for payload in session.buffer:
            if payload["s"] > seq:
                self.send(payload)
        session.dispatch("RESUMED", {"_trace": ["guildhub-emulator"]}, replay=False)

    def attach(self, session: Session) -> None:
        self.session = session
        session.connection = self

    # -- member requests ---------------------------------------------------

    async def request_members(self, data: object) -> None:
        """Answer op 8 with GUILD_MEMBERS_CHUNK dispatches, as Discord does.

        `{guild_id, query, limit}` searches (prefix of username or nickname, at most
        100 results), `{guild_id, query: "", limit: 0}` lists everyone and needs the
        members intent, `{guild_id, user_ids}` looks up at most 100 ids and reports the
        rest in `not_found`. Requests Discord would ignore (unknown guild, another
        shard's guild, a full list without the members intent) get no answer.
        """
        session = self.session
        if session is None or not isinstance(data, dict):
            await self.close(CLOSE_DECODE_ERROR, "Error while decoding payload.")
            return
        guild_id = snowflake_of(data.get("guild_id"))
        if guild_id is None:
            await self.close(CLOSE_DECODE_ERROR, "Error while decoding payload.")
            return
        self.world.counters.member_chunk_requests += 1
        guild = self.world.guilds.get(guild_id)
        if guild is None or not guild.bot_present or not session.owns(guild_id):
            return
        nonce = data.get("nonce")
        if not isinstance(nonce, str) or len(nonce.encode()) > MAX_NONCE_BYTES:
            nonce = None
        # No presences exist in the emulator: everyone is offline, so the list is empty.
        presences = bool(data.get("presences")) and session.wants(INTENT_GUILD_PRESENCES)
        extra: dict = {}
        if nonce is not None:
            extra["nonce"] = nonce
        if presences:
            extra["presences"] = []

        try:
            user_ids = data.get("user_ids")
            if user_ids is not None:
                await self.members_by_id(session, guild, user_ids, extra)
                return
            query, limit = data.get("query"), data.get("limit")
            if not isinstance(query, str) or not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
                await self.close(CLOSE_DECODE_ERROR, "Error while decoding payload.")
                return
            if query:
                await self.members_by_query(session, guild, query, limit, extra)
                return
            if not session.wants(INTENT_GUILD_MEMBERS):
                return  # Discord answers nothing: the request just times out
            if limit == 0:
                retry_after = self.gateway.full_list_retry_after(guild.id)
                if retry_after:
                    meta = {"guild_id": str(guild.id), **({"nonce": nonce} if nonce else {})}
                    session.dispatch(
                        "RATE_LIMITED", {"opcode": OP_REQUEST_GUILD_MEMBERS, "retry_after": retry_after, "meta": meta}
                    )
                    return
            await self.stream_members(session, guild, limit, extra)
        except GatewayClosed:
            pass  # the client went away mid-answer; a resumed client asks again

    def chunk(self, guild: Guild, members: list[dict] | orjson.Fragment, index: int, count: int, extra: dict) -> dict:
        return {"guild_id": str(guild.id), "members": members, "chunk_index": index, "chunk_count": count, **extra}

    async def members_by_id(self, session: Session, guild: Guild, user_ids: object, extra: dict) -> None:
        ids = user_ids if isinstance(user_ids, list) else [user_ids]
        parsed = [snowflake_of(uid) for uid in ids]
        if not ids or None in parsed:
            await self.close(CLOSE_DECODE_ERROR, "Error while decoding payload.")
            return
        if len(parsed) > MAX_USER_IDS:
            log.warning("REQUEST_GUILD_MEMBERS with %d user_ids: only the first %d count", len(parsed), MAX_USER_IDS)
        members, not_found = [], []
        for uid in dict.fromkeys(parsed[:MAX_USER_IDS]):
            member = guild.member(uid)
            if member is None:
                not_found.append(str(uid))
            else:
                members.append(member)
        chunk = self.chunk(guild, members, 0, 1, extra)
        chunk["not_found"] = not_found
        await session.dispatch_and_wait(self, "GUILD_MEMBERS_CHUNK", chunk)

    async def members_by_query(self, session: Session, guild: Guild, query: str, limit: int, extra: dict) -> None:
        # Guild.search_members' semantics, scanned a page at a time so a million
        # members do not stall the loop.
        limit = min(limit or MAX_QUERY_RESULTS, MAX_QUERY_RESULTS)
        needle = query.casefold()
        found: list[dict] = []
        after = 0
        while len(found) < limit:
            page = guild.list_members(after=after, limit=MEMBER_CHUNK_SIZE)
            if not page:
                break
            for member in page:
                names = (member["user"]["username"], member["nick"] or "")
                if any(name.casefold().startswith(needle) for name in names):
                    found.append(member)
                    if len(found) >= limit:
                        break
            after = int(page[-1]["user"]["id"])
            await asyncio.sleep(0)
        await session.dispatch_and_wait(self, "GUILD_MEMBERS_CHUNK", self.chunk(guild, found, 0, 1, extra))

    async def stream_members(self, session: Session, guild: Guild, limit: int, extra: dict) -> None:
        """Every member (or the first `limit`), 1000 per chunk, one page in memory at a time.

        chunk_count is fixed up front from the member count, as the client needs it
        with the first chunk. Members who join while the list streams may be left
        out (they arrive as GUILD_MEMBER_ADD); if members leave, the last chunks come
        short or empty, so the client still sees chunk_index reach chunk_count - 1.
        """
        total = guild.member_count if limit == 0 else min(limit, guild.member_count)
        count = max(1, math.ceil(total / MEMBER_CHUNK_SIZE))
        after, sent = 0, 0
        for index in range(count):
            want = min(MEMBER_CHUNK_SIZE, total - sent)
            members, got, last = guild.list_members_json(after=after, limit=want) if want > 0 else (b"[]", 0, 0)
            if got:
                after = last
                sent += got
            # Fragment: the members' JSON goes into the chunk as it is, not decoded and encoded again.
            chunk = self.chunk(guild, orjson.Fragment(members), index, count, extra)
            await session.dispatch_and_wait(self, "GUILD_MEMBERS_CHUNK", chunk)


# -- the gateway --------------------------------------------------------------


class Gateway:
    """Every session and connection of the emulated gateway."""

    def __init__(
        self,
        world: World,
        *,
        token: str | None = None,
        heartbeat_interval_ms: int = 41_250,
        member_request_interval: float = 0.0,
        send_limit: int = 120,
        send_window: float = 60.0,
        replay_limit: int = 1000,
        resume_window: float = 300.0,
        heartbeat_timeout: float | None = None,
    ) -> None:
        """`member_request_interval`: seconds between two full member lists of one guild
        (Discord: 30 since August 2025; 0 turns the limit off). `heartbeat_timeout`:
        seconds of client silence before closing with 4009 (default: twice the
        heartbeat interval plus 10 s, lenient like Discord)."""
        self.world = world
        self.token = token
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.member_request_interval = member_request_interval
        self.send_limit = send_limit
        self.send_window = send_window
        self.replay_limit = replay_limit
        self.resume_window = resume_window
        self.heartbeat_timeout = (
            heartbeat_timeout if heartbeat_timeout is not None else 2 * heartbeat_interval_ms / 1000 + 10
        )
        self.sessions: dict[str, Session] = {}
        self.connections: set[Connection] = set()
        self.last_full_list: dict[int, float] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tasks: set[asyncio.Task] = set()

    def background(self, coro) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)  # a reference, so the task is not collected mid-run
        task.add_done_callback(self.tasks.discard)

    # -- urls ------------------------------------------------------------

    def url_for(self, base: str | web.BaseRequest) -> str:
        """The websocket URL for an HTTP base URL or a request: ws://host:port/gateway."""
        if isinstance(base, web.BaseRequest):
            scheme, authority = base.scheme, base.host
        else:
            url = yarl.URL(base)
            scheme, authority = url.scheme, url.raw_authority
        return f"{'wss' if scheme == 'https' else 'ws'}://{authority}/gateway"

    url = url_for

    # -- sessions ----------------------------------------------------------

    def check_token(self, token: object) -> str | None:
        """The token without a "Bot " prefix when it is acceptable, else None."""
        if not isinstance(token, str):
            return None
        token = token.removeprefix("Bot ").strip()
        if not token or (self.token and token != self.token):
            return None
        return token

    def new_session(self, **fields) -> Session:
        self.expire_sessions()
        session = Session(id=secrets.token_hex(16), replay_limit=self.replay_limit, **fields)
        self.sessions[session.id] = session
        return session

    def resumable_session(self, session_id: object) -> Session | None:
        self.expire_sessions()
        return self.sessions.get(session_id) if isinstance(session_id, str) else None

    def forget(self, session: Session) -> None:
        self.sessions.pop(session.id, None)
        if session.connection is not None:
            session.connection.session = None
            session.connection = None

    def expire_sessions(self) -> None:
        deadline = time.monotonic() - self.resume_window
        for session in list(self.sessions.values()):
            if session.connection is None and session.disconnected_at < deadline:
                del self.sessions[session.id]

    def live_sessions(self) -> list[Session]:
        """Connected sessions and those a client may still resume."""
        self.expire_sessions()
        return list(self.sessions.values())

    def connected(self) -> list[Connection]:
        return [c for c in self.connections if c.session is not None and not c.closed]

    def session_count(self) -> int:
        """Sessions with an open, identified connection."""
        return len(self.connected())

    def full_list_retry_after(self, guild_id: int) -> float:
        """Seconds until this guild's full member list may be requested again (0: now; records it)."""
        if self.member_request_interval <= 0:
            return 0.0
        now = time.monotonic()
        last = self.last_full_list.get(guild_id)
        if last is not None and now - last < self.member_request_interval:
            return round(self.member_request_interval - (now - last), 3)
        self.last_full_list[guild_id] = now
        return 0.0

    # -- websocket endpoint --------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(timeout=2.0, max_msg_size=1024 * 1024)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="The gateway speaks websocket: connect with a websocket client.\n")
        await ws.prepare(request)
        self.world.counters.gateway_connections += 1
        version_text = request.query.get("v", "10")
        version = int(version_text) if version_text.isdigit() else 0
        encoding = request.query.get("encoding", "json")
        compress = request.query.get("compress", "")
        compressor = None
        if compress == "zlib-stream":
            compressor = zlib_stream()
        elif compress == "zstd-stream":
            compressor = zstd_stream()  # plain text frames when no zstd module is here
        connection = Connection(self, ws, request, version=version, compressor=compressor)
        if version not in SUPPORTED_VERSIONS:
            await connection.close(CLOSE_INVALID_API_VERSION, "Invalid API version.")
            return ws
        if encoding != "json":
            await connection.close(CLOSE_DECODE_ERROR, "The emulator speaks encoding=json only.")
            return ws
        self.connections.add(connection)
        await connection.run()
        return ws

    # -- world events --------------------------------------------------------

    def on_world_event(self, event: str, data: dict) -> None:
        """World listener: forward events to the sessions whose intents and shard cover them."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is not loop:
                # Someone changed the world from another thread: deliver on the loop.
                loop.call_soon_threadsafe(self.deliver, event, data)
                return
        self.deliver(event, data)

    def deliver(self, event: str, data: dict) -> None:
        intent = EVENT_INTENTS.get(event)
        if intent is None:
            return
        guild_id = snowflake_of(data.get("id") if event == "GUILD_UPDATE" else data.get("guild_id"))
        if guild_id is None:
            return
        for session in self.live_sessions():
            if not (session.owns(guild_id) and session.wants(intent)):
                continue
            payload = data
            if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE") and not self.may_read(session, data):
                payload = without_content(data)
            session.dispatch(event, payload)

    def may_read(self, session: Session, message: dict) -> bool:
        bot_id = str(self.world.bot_id)
        return (
            session.wants(INTENT_MESSAGE_CONTENT)
            or (message.get("author") or {}).get("id") == bot_id
            or any(user.get("id") == bot_id for user in message.get("mentions", []))
        )

    # -- control API ------------------------------------------------------------

    async def dispatch_interaction(self, interaction: Interaction) -> int:
        """INTERACTION_CREATE to the sessions owning the guild; returns how many are connected.

        Sessions waiting to resume get it on RESUME. Raises ValueError when the guild
        or the invoking member does not exist (see interaction_payload).
        """
        payload = interaction_payload(self.world, interaction)
        delivered = 0
        for session in self.live_sessions():
            if session.owns(interaction.guild_id):
                session.dispatch("INTERACTION_CREATE", payload)
                delivered += session.connection is not None
        return delivered

    async def send_all(self, payload: dict) -> int:
        connections = self.connected()
        results = await asyncio.gather(*(c.send_and_wait(payload) for c in connections), return_exceptions=True)
        return sum(1 for result in results if not isinstance(result, BaseException))

    async def reconnect_all(self) -> int:
        """Op 7 RECONNECT to every identified connection; discord.py closes and resumes."""
        return await self.send_all({"op": OP_RECONNECT, "d": None, "s": None, "t": None})

    async def request_heartbeats(self) -> int:
        """Op 1 from the server: asks every client to heartbeat right away."""
        return await self.send_all({"op": OP_HEARTBEAT, "d": None, "s": None, "t": None})

    async def invalidate_all(self, resumable: bool) -> int:
        """Op 9 INVALID_SESSION to every identified connection.

        `resumable=True`: the client may RESUME; False: the sessions are forgotten and
        the clients must IDENTIFY again.
        """
        connections = self.connected()
        payload = {"op": OP_INVALID_SESSION, "d": bool(resumable), "s": None, "t": None}
        results = await asyncio.gather(*(c.send_and_wait(payload) for c in connections), return_exceptions=True)
        if not resumable:
            for connection in connections:
                if connection.session is not None:
                    self.forget(connection.session)
        return sum(1 for result in results if not isinstance(result, BaseException))

    async def drop_all(self) -> int:
        """Abort every websocket's TCP connection (no close frame); sessions stay resumable."""
        connections = list(self.connections)
        for connection in connections:
            connection.abort()
        return len(connections)

    async def close_all(self, code: int = CLOSE_GOING_AWAY, reason: str = "Emulator shutting down.") -> None:
        await asyncio.gather(*(c.close(code, reason) for c in list(self.connections)), return_exceptions=True)


GATEWAY_KEY = web.AppKey("gateway", Gateway)


def setup_gateway(
    app: web.Application,
    world: World,
    *,
    token: str | None,
    heartbeat_interval_ms: int = 41_250,
    member_request_interval: float = 0.0,
    **options,
) -> Gateway:
    """Serve the gateway at GET /gateway on `app` and forward the world's events to it.

    `token`: when set, IDENTIFY/RESUME with another token closes with 4004. Other
    keyword options go to Gateway (send_limit, replay_limit, resume_window, ...).
    """
    gateway = Gateway(
        world,
        token=token,
        heartbeat_interval_ms=heartbeat_interval_ms,
        member_request_interval=member_request_interval,
        **options,
    )
    app[GATEWAY_KEY] = gateway
    # discord.py's default gateway URL ends with a slash; accept both spellings.
    app.router.add_get("/gateway", gateway.handle)
    app.router.add_get("/gateway/", gateway.handle)
    world.listeners.append(gateway.on_world_event)

    async def on_startup(app: web.Application) -> None:
        gateway.loop = asyncio.get_running_loop()

    async def on_shutdown(app: web.Application) -> None:
        await gateway.close_all()

    async def on_cleanup(app: web.Application) -> None:
        if gateway.on_world_event in world.listeners:
            world.listeners.remove(gateway.on_world_event)

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return gateway
