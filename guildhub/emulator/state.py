"""The emulator's world: guilds, roles, channels, members, messages, interactions.

Generated data is computed on demand (see generator.py); only what changes at
run time is stored: added or edited members, removed ids, posted messages. All
of it lives on the emulator's event loop thread; other threads go through
`EmulatorServer.call`.
"""

from __future__ import annotations

import heapq
import itertools
import time
from bisect import bisect_right, insort
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from guildhub.emulator import generator as gen
from guildhub.emulator.member_json import MemberJson, json_array, page_json
from guildhub.emulator.responses import encode_json

Listener = Callable[[str, dict], None]

INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT


def first_index_above(size: int, key: Callable[[int], int], value: int) -> int:
    """Index of the first element of an ascending virtual sequence greater than `value`."""
    lo, hi = 0, size
    while lo < hi:
        mid = (lo + hi) // 2
        if key(mid) <= value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@dataclass
class GuildSpec:
    """What to generate for one guild."""

    name: str = "GuildHub Demo"
    members: int = 1000
    channels: int = 5
    messages: int = 200
    roles: int = 8


@dataclass
class Channel:
    id: int
    guild_id: int
    name: str
    type: int  # 0 text, 2 voice, 4 category
    position: int
    parent_id: int | None
    topic: str | None
    seed: int
    generated: int = 0
    posted: list[dict] = field(default_factory=list)

    @property
    def message_count(self) -> int:
        return self.generated + len(self.posted)

    def message_id_at(self, k: int) -> int:
        if k < self.generated:
            return gen.message_id(k, self.id)
        return int(self.posted[k - self.generated]["id"])

    def message_at(self, k: int, guild: Guild) -> dict:
        if k >= self.generated:
            return self.posted[k - self.generated]
        content, author_pick, reactions, attachments = gen.generated_message_content(k, self.seed, self.id)
        author = guild.member_by_index(author_pick % guild.generated) if guild.generated else None
        author_user = author["user"] if author else guild.bot_user
        mid = gen.message_id(k, self.id)
        return message_object(
            mid,
            channel_id=self.id,
            author=author_user,
            content=content,
            timestamp=gen.snowflake_time(mid),
            reactions=reactions,
            attachments=attachments,
        )

    def history(
        self, guild: Guild, *, limit: int, before: int | None, after: int | None, around: int | None
    ) -> list[dict]:
        """Messages as Discord returns them: newest first, at most `limit`."""
        n = self.message_count
        if around is not None:
            centre = first_index_above(n, self.message_id_at, around - 1)
            start = max(0, centre - limit // 2)
            stop = min(n, start + limit)
            start = max(0, stop - limit)
        elif after is not None:
            start = first_index_above(n, self.message_id_at, after)
            stop = min(n, start + limit)
        else:
            stop = first_index_above(n, self.message_id_at, before - 1) if before is not None else n
            start = max(0, stop - limit)
        return [self.message_at(k, guild) for k in range(stop - 1, start - 1, -1)]

    def to_json(self) -> dict:
        data = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "permission_overwrites": [],
            "flags": 0,
            "nsfw": False,
        }
        if self.type == 0:
            data.update(
                topic=self.topic,
                last_message_id=str(self.message_id_at(self.message_count - 1)) if self.message_count else None,
                rate_limit_per_user=0,
                last_pin_timestamp=None,
            )
        elif self.type == 2:
            data.update(bitrate=64000, user_limit=0, rtc_region=None, rate_limit_per_user=0)
        return data


def message_object(
    mid: int,
    *,
    channel_id: int,
    author: dict,
    content: str,
    timestamp: datetime,
    reactions: int = 0,
    attachments: int = 0,
) -> dict:
    return {
        "id": str(mid),
        "type": 0,
        "channel_id": str(channel_id),
        "author": author,
        "content": content,
        "timestamp": gen.iso(timestamp),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "mention_channels": [],
        "attachments": [
            {
                "id": str(mid + 1 + i),
                "filename": f"image{i}.png",
                "size": 1024 * (i + 1),
                "url": f"https://cdn.discordapp.com/attachments/{channel_id}/{mid + 1 + i}/image{i}.png",
                "proxy_url": f"https://media.discordapp.net/attachments/{channel_id}/{mid + 1 + i}/image{i}.png",
                "content_type": "image/png",
                "width": 64,
                "height": 64,
            }
            for i in range(attachments)
        ],
        "embeds": [],
        "reactions": [
            {
                "count": 1 + i,
                "count_details": {"burst": 0, "normal": 1 + i},
                "me": False,
                "me_burst": False,
                "emoji": {"id": None, "name": gen.EMOJI[i % len(gen.EMOJI)]},
                "burst_colors": [],
            }
            for i in range(reactions)
        ],
        "pinned": False,
        "flags": 0,
        "components": [],
    }


@dataclass
class Guild:
    id: int
    name: str
    seed: int
    owner_id: int
    bot_user: dict
    generated: int = 0
    roles: list[dict] = field(default_factory=list)
    channels: dict[int, Channel] = field(default_factory=dict)
    removed: set[int] = field(default_factory=set)  # generated user ids that left
    overrides: dict[int, dict] = field(default_factory=dict)  # generated members edited at run time
    extra: dict[int, dict] = field(default_factory=dict)  # members not generated (bot, added)
    extra_ids: list[int] = field(default_factory=list)  # sorted keys of `extra`
    icon: str | None = None
    bot_present: bool = True
    member_json: MemberJson | None = None  # the generated members' JSON, kept when the world is asked to

    # -- members ---------------------------------------------------------

    @property
    def role_ids(self) -> list[int]:
        """Roles generated members hold: the ordinary ones, below the bot's own role."""
        bot_position = max((r["position"] for r in self.roles if r["managed"]), default=len(self.roles))
        return [
            int(r["id"])
            for r in self.roles
            if int(r["id"]) != self.id and not r["managed"] and r["position"] < bot_position
        ]

    def member_by_index(self, index: int, uid: int | None = None, role_ids: list[int] | None = None) -> dict:
        uid = gen.user_id(index, self.seed) if uid is None else uid
        if role_ids is None:
            role_ids = self.role_ids
        return self.overrides.get(uid) or gen.generated_member(index, self.seed, self.id, role_ids, uid)

    def generated_index(self, uid: int) -> int | None:
        index = gen.user_index(uid)
        if 0 <= index < self.generated and gen.user_id(index, self.seed) == uid:
            return index
        return None

    def member(self, uid: int) -> dict | None:
        if uid in self.extra:
            return self.extra[uid]
        index = self.generated_index(uid)
        if index is None or uid in self.removed:
            return None
        return self.member_by_index(index)

    @property
    def member_count(self) -> int:
        return self.generated - len(self.removed) + len(self.extra)

    def iter_member_ids(self, after: int = 0) -> Iterator[int]:
        """Every member's user id above `after`, ascending."""
        start = first_index_above(self.generated, lambda i: gen.user_id(i, self.seed), after)
        generated = (gen.user_id(i, self.seed) for i in range(start, self.generated))
        generated = (uid for uid in generated if uid not in self.removed)
        extra = itertools.islice(self.extra_ids, bisect_right(self.extra_ids, after), None)
        return heapq.merge(generated, extra)

    def list_members(self, *, after: int, limit: int) -> list[dict]:
        """Up to `limit` members with user ids above `after`, ascending.

        The hot path of member pages and chunks: a generated member's id and the
        guild's roles are worked out once, not again for each lookup.
        """
        role_ids = self.role_ids
        members = []
        for uid in itertools.islice(self.iter_member_ids(after), limit):
            extra = self.extra.get(uid)
            members.append(extra if extra is not None else self.member_by_index(gen.user_index(uid), uid, role_ids))
        return members

    def list_members_json(self, *, after: int, limit: int) -> tuple[bytes, int, int]:
        """list_members as one JSON array: (the array, how many members, the last one's user id or 0).

        From the member JSON store while it is current (see member_json.py); else generated.
        """
        if self.member_json is not None and self.member_json.current_for(self):
            return page_json(self, self.member_json, after=after, limit=limit)
        members = self.list_members(after=after, limit=limit)
        last = int(members[-1]["user"]["id"]) if members else 0
        return json_array(encode_json(member) for member in members), len(members), last

    def search_members(self, query: str, limit: int) -> list[dict]:
        """Discord's member search: case-insensitive prefix of username or nickname."""
        needle = query.casefold()
        found = []
        for uid in self.iter_member_ids():
            member = self.member(uid)
            names = (member["user"]["username"], member["nick"] or "")
            if any(name.casefold().startswith(needle) for name in names):
                found.append(member)
                if len(found) >= limit:
                    break
        return found

    def put_member(self, member: dict) -> None:
        uid = int(member["user"]["id"])
        if self.generated_index(uid) is not None:
            self.removed.discard(uid)
            self.overrides[uid] = member
        else:
            if uid not in self.extra:
                insort(self.extra_ids, uid)
            self.extra[uid] = member

    def remove_member(self, uid: int) -> dict | None:
        member = self.member(uid)
        if member is None:
            return None
        if uid in self.extra:
            del self.extra[uid]
            self.extra_ids.remove(uid)
        else:
            self.removed.add(uid)
            self.overrides.pop(uid, None)
        return member

    # -- roles -----------------------------------------------------------

    def role(self, role_id: int) -> dict | None:
        return next((r for r in self.roles if int(r["id"]) == role_id), None)

    def top_role_position(self, member: dict) -> int:
        positions = [r["position"] for r in self.roles if r["id"] in member["roles"]]
        return max(positions, default=0)

    # -- json ------------------------------------------------------------

    def to_json(self, *, with_counts: bool = False) -> dict:
        data = {
            "id": str(self.id),
            "name": self.name,
            "icon": self.icon,
            "icon_hash": self.icon,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(self.owner_id),
            "region": "deprecated",
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "widget_channel_id": None,
            "verification_level": 1,
            "default_message_notifications": 1,
            "explicit_content_filter": 0,
            "roles": self.roles,
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "max_presences": None,
            "max_members": 500000,
            "vanity_url_code": None,
            "description": None,
            "home_header": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": "en-US",
            "public_updates_channel_id": None,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw": False,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "safety_alerts_channel_id": None,
            "incidents_data": None,
        }
        if with_counts:
            data["approximate_member_count"] = self.member_count
            data["approximate_presence_count"] = self.member_count // 5
        return data

    def partial_json(self) -> dict:
        """The shape of `GET /users/@me/guilds` entries."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": self.icon,
            "banner": None,
            "owner": False,
            "permissions": "268438528",
            "features": [],
            "approximate_member_count": self.member_count,
            "approximate_presence_count": self.member_count // 5,
        }


@dataclass
class Interaction:
    id: int
    token: str
    guild_id: int
    channel_id: int
    user_id: int
    payload: dict
    responses: list[dict] = field(default_factory=list)


@dataclass
class Counters:
    requests: Counter = field(default_factory=Counter)  # "METHOD /route/template" -> n
    statuses: Counter = field(default_factory=Counter)
    rate_limited: int = 0
    global_rate_limited: int = 0
    server_errors: int = 0
    invalid_requests: int = 0
    bytes_sent: int = 0
    gateway_connections: int = 0
    gateway_identifies: int = 0
    gateway_resumes: int = 0
    member_chunk_requests: int = 0

    def to_json(self) -> dict:
        return {
            "requests": dict(self.requests),
            "total_requests": sum(self.requests.values()),
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "rate_limited": self.rate_limited,
            "global_rate_limited": self.global_rate_limited,
            "server_errors": self.server_errors,
            "invalid_requests": self.invalid_requests,
            "bytes_sent": self.bytes_sent,
            "gateway_connections": self.gateway_connections,
            "gateway_identifies": self.gateway_identifies,
            "gateway_resumes": self.gateway_resumes,
            "member_chunk_requests": self.member_chunk_requests,
        }


class World:
    """Everything the emulator knows, plus listeners for gateway dispatches."""

    BOT_USERNAME = "GuildHub Emulator"

    def __init__(
        self,
        *,
        seed: int = 42,
        guilds: list[GuildSpec] | None = None,
        members_intent: bool = True,
        member_json: bool = False,
    ) -> None:
        self.seed = seed
        self.keep_member_json = member_json  # see member_json.py
        self.members_intent_enabled = members_intent
        d = gen.digest("bot", seed)
        self.bot_id = gen.snowflake_at(1_600_000_000_000 + int.from_bytes(d[:3], "big"), 1)
        self.bot_user = gen.user_object(self.bot_id, self.BOT_USERNAME, discriminator="0001", bot=True)
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.interactions: dict[int, Interaction] = {}
        self.commands: dict[int | None, list[dict]] = {}
        self.listeners: list[Listener] = []
        self.audit_log: list[dict] = []
        self.counters = Counters()
        self._ids = itertools.count(1)
        for number, spec in enumerate(guilds if guilds is not None else [GuildSpec()]):
            self.add_guild(spec, number=number)

    # -- ids and events -------------------------------------------------

    def new_id(self) -> int:
        """A fresh snowflake for now, unique within this world."""
        return gen.snowflake_at(int(time.time() * 1000), next(self._ids))

    def record_audit(self, guild: Guild, reason: str | None, action: str, target_id: str, changes: dict) -> None:
        """Keep what a write did and the reason the client gave, as Discord's audit log does."""
        self.audit_log.append(
            {
                "guild_id": str(guild.id),
                "action": action,
                "target_id": target_id,
                "changes": changes,
                "reason": reason,
                "at": time.time(),
            }
        )

    def emit(self, event: str, data: dict) -> None:
        for listener in list(self.listeners):
            listener(event, data)

    # -- building -------------------------------------------------------

    def add_guild(self, spec: GuildSpec, *, number: int | None = None) -> Guild:
        number = len(self.guilds) if number is None else number
        guild_seed = int.from_bytes(gen.digest("guild", self.seed, number)[:6], "big")
        created_ms = 1_500_000_000_000 + guild_seed % 100_000_000_000
        guild_id = gen.snowflake_at(created_ms, number)
        guild = Guild(
            id=guild_id,
            name=spec.name if number == 0 or spec.name != "GuildHub Demo" else f"{spec.name} {number + 1}",
            seed=guild_seed,
            owner_id=0,
            bot_user=self.bot_user,
            generated=spec.members,
            icon=gen.digest("icon", guild_seed)[:16].hex(),
        )
        guild.roles = self._generate_roles(guild, spec.roles, created_ms)
        guild.owner_id = gen.user_id(0, guild_seed) if spec.members else self.bot_id
        bot_role = next(r for r in guild.roles if r["managed"])
        guild.put_member(
            gen.member_object(self.bot_user, nick=None, roles=[bot_role["id"]], joined_at=gen.iso(datetime.now(tz=UTC)))
        )
        self.guilds[guild_id] = guild
        self._generate_channels(guild, spec, created_ms)
        if self.keep_member_json:
            guild.member_json = MemberJson(guild)
        return guild

    def _generate_roles(self, guild: Guild, count: int, created_ms: int) -> list[dict]:
        def role(rid: int, name: str, position: int, *, colour: int = 0, managed: bool = False) -> dict:
            data = {
                "id": str(rid),
                "name": name,
                "description": None,
                "color": colour,
                "colors": {"primary_color": colour, "secondary_color": None, "tertiary_color": None},
                "hoist": False,
                "icon": None,
                "unicode_emoji": None,
                "position": position,
                "permissions": "1071698660929" if name != "@everyone" else "1071698529857",
                "managed": managed,
                "mentionable": False,
                "flags": 0,
            }
            if managed:
                data["tags"] = {"bot_id": str(self.bot_id)}
            return data

        roles = [role(guild.id, "@everyone", 0)]
        for k in range(count):
            rid = gen.snowflake_at(created_ms + 1000 * (k + 1), k)
            colour = int.from_bytes(gen.digest("colour", guild.seed, k)[:3], "big")
            roles.append(role(rid, gen.ROLE_NAMES[k % len(gen.ROLE_NAMES)], k + 1, colour=colour))
        # The bot's own role sits below one "Owner" role, so both outcomes of
        # Discord's hierarchy check (50013) can be exercised.
        roles.append(role(gen.snowflake_at(created_ms + 900_000, 1), "GuildHub", count + 1, managed=True))
        roles.append(role(gen.snowflake_at(created_ms + 950_000, 2), "Owner", count + 2, colour=0xE74C3C))
        return roles

    def _generate_channels(self, guild: Guild, spec: GuildSpec, created_ms: int) -> None:
        category = Channel(
            id=gen.snowflake_at(created_ms + 500, 100),
            guild_id=guild.id,
            name="Text Channels",
            type=4,
            position=0,
            parent_id=None,
            topic=None,
            seed=guild.seed,
        )
        self.add_channel(category)
        for k in range(spec.channels):
            name = gen.CHANNEL_NAMES[k % len(gen.CHANNEL_NAMES)]
            if k >= len(gen.CHANNEL_NAMES):
                name = f"{name}-{k // len(gen.CHANNEL_NAMES) + 1}"
            d = gen.digest("channel", guild.seed, k)
            # Busy and quiet channels side by side, as in real guilds.
            messages = spec.messages if k == 0 else spec.messages * (1 + d[0] % 4) // 4
            self.add_channel(
                Channel(
                    id=gen.snowflake_at(created_ms + 600 + k, 101 + k),
                    guild_id=guild.id,
                    name=name,
                    type=0,
                    position=k,
                    parent_id=category.id,
                    topic=f"All about {name}" if d[1] % 2 else None,
                    seed=guild.seed,
                    generated=messages,
                )
            )
        self.add_channel(
            Channel(
                id=gen.snowflake_at(created_ms + 700, 200),
                guild_id=guild.id,
                name="Lounge",
                type=2,
                position=spec.channels,
                parent_id=category.id,
                topic=None,
                seed=guild.seed,
            )
        )

    def add_channel(self, channel: Channel) -> None:
        self.guilds[channel.guild_id].channels[channel.id] = channel
        self.channels[channel.id] = channel

    # -- run-time changes (control API and tests) -----------------------

    def add_member(
        self,
        guild: Guild,
        *,
        user_id: int | None = None,
        username: str | None = None,
        global_name: str | None = None,
        nick: str | None = None,
        bot: bool = False,
        roles: list[str] | None = None,
        avatar: str | None = None,
    ) -> dict:
        uid = user_id or self.new_id()
        user = gen.user_object(
            uid, username or f"newcomer{uid % 100000}", global_name=global_name, avatar=avatar, bot=bot
        )
        member = gen.member_object(user, nick=nick, roles=list(roles or []), joined_at=gen.iso(datetime.now(tz=UTC)))
        guild.put_member(member)
        self.emit("GUILD_MEMBER_ADD", {**member, "guild_id": str(guild.id)})
        return member

    def update_member(self, guild: Guild, uid: int, changes: dict) -> dict | None:
        """Apply member-level (nick, roles) and user-level (username, global_name, avatar) changes."""
        current = guild.member(uid)
        if current is None:
            return None
        member = {**current, "user": dict(current["user"])}
        for key in ("nick", "roles", "communication_disabled_until"):
            if key in changes:
                member[key] = changes[key]
        for key in ("username", "global_name", "avatar"):
            if key in changes:
                member["user"][key] = changes[key]
        guild.put_member(member)
        self.emit("GUILD_MEMBER_UPDATE", {**member, "guild_id": str(guild.id)})
        return member

    def remove_member(self, guild: Guild, uid: int) -> dict | None:
        member = guild.remove_member(uid)
        if member is not None:
            self.emit("GUILD_MEMBER_REMOVE", {"guild_id": str(guild.id), "user": member["user"]})
        return member

    def post_message(self, channel: Channel, *, author: dict, content: str) -> dict:
        mid = self.new_id()
        message = message_object(
            mid, channel_id=channel.id, author=author, content=content, timestamp=gen.snowflake_time(mid)
        )
        message["guild_id"] = str(channel.guild_id)
        channel.posted.append(message)
        self.emit("MESSAGE_CREATE", message)
        return message
