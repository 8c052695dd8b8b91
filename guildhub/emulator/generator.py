"""Deterministic synthetic Discord data, computed on demand from a seed.

Nothing here is stored: member `i` of a guild, or message `j` of a channel, is a
pure function of (seed, guild, index). That is how a guild of a million members
costs no memory and no start-up time, and why two runs with one seed agree.
Ids grow with the index, so "the members after user id X" is a binary search.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from functools import lru_cache

DISCORD_EPOCH_MS = 1_420_070_400_000

# Generated users were "created" from 2016 on; each index owns a slot of 2**32
# ids so ids are unique, strictly increasing and look like real snowflakes.
USER_ID_BASE = ((1_451_606_400_000 - DISCORD_EPOCH_MS) << 22) | 1
USER_ID_SLOT = 1 << 32

# Generated messages were sent from 2024 on, one slot of MESSAGE_SPACING_MS each.
MESSAGE_BASE_MS = 1_704_067_200_000
MESSAGE_SPACING_MS = 37_000

# fmt: off
FIRST_WORDS = [
    "shadow", "pixel", "luna", "nova", "echo", "frost", "ember", "storm", "mango", "otter",
    "raven", "cosmic", "silent", "lucky", "neon", "velvet", "arcade", "maple", "quartz", "zephyr",
    "crimson", "atlas", "boba", "cinder", "delta", "fable", "gecko", "harbor", "indigo", "jade",
    "karma", "lotus", "mystic", "nimbus", "orbit", "pepper", "quill", "rusty", "sable", "tango",
]
SECOND_WORDS = [
    "wolf", "fox", "cat", "dragon", "knight", "panda", "tiger", "bear", "hawk", "byte",
    "coder", "gamer", "runner", "rider", "smith", "witch", "wizard", "ninja", "pilot", "bard",
    "moth", "lynx", "koala", "sprout", "comet", "golem", "sage", "viper", "yeti", "kraken",
]
GIVEN_NAMES = [
    "Alex", "Sam", "Jordan", "Taylor", "Mia", "Noah", "Léa", "Zoë", "José", "Mateo",
    "Aiko", "Hiro", "Yuki", "Olga", "Søren", "Ingrid", "Björn", "Chloé", "Amélie", "Renée",
    "Дмитрий", "Анна", "Αλέξανδρος", "محمد", "فاطمة", "יעל", "李华", "王芳", "김민준", "Nguyễn",
    "Priya", "Arjun", "Ngozi", "Kwame", "Şebnem", "Łukasz", "Ødegaard", "Ñandú", "Ümit", "Émile",
]
EMOJI = ["🔥", "✨", "🐉", "🎮", "🌙", "💜", "🍕", "🚀", "👾", "🌸", "⚡", "🦊"]
# Strings that break naive dashboards: markup, quoting, LIKE wildcards, control
# characters, right-to-left override, maximum length. They appear in global
# names and nicknames, which Discord lets users fill with almost anything.
HOSTILE_STRINGS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "\" onmouseover=\"alert(1)",
    "Robert'); DROP TABLE members;--",
    "100% real_name",
    "%_%_%",
    "back\\slash\\user",
    "\u202eesrever\u202c name",
    "{{ 7*7 }} ${7*7}",
    "x" * 32,
    "ẞ" * 32,
    "@everyone",
    "<@123456789012345678>",
    "　full width　",
    "Zalgo Z̵̢͎a̸l̷g̶o̴",
]
CHANNEL_NAMES = [
    "general", "announcements", "off-topic", "memes", "help", "introductions", "events", "music",
    "gaming", "art", "dev-talk", "support", "feedback", "trading", "lfg", "bot-commands",
]
ROLE_NAMES = [
    "Moderator", "Helper", "VIP", "Member", "Verified", "Artist", "Developer", "Event Team",
    "Supporter", "Veteran", "Newcomer", "Streamer", "Muted", "Gamer", "Booster", "Trial Mod",
]
MESSAGE_WORDS = [
    "hello", "anyone", "here", "playing", "tonight", "the", "new", "update", "is", "great",
    "bug", "fixed", "thanks", "lol", "gg", "when", "event", "starts", "check", "this", "out",
    "server", "role", "please", "help", "with", "my", "setup", "🔥", "café", "naïve", "👍",
]
# fmt: on


def digest(*parts: object) -> bytes:
    """64 stable pseudo-random bytes for the given parts."""
    return _digest("|".join(map(str, parts)))


def _digest(text: str) -> bytes:
    """digest() of parts already joined: the member hot path spells its parts out in an f-string."""
    return hashlib.blake2b(text.encode(), digest_size=64).digest()


def pick(seq: list, byte_value: int):
    return seq[byte_value % len(seq)]


def snowflake_at(ms: int, low: int = 0) -> int:
    """A snowflake for a Unix time in milliseconds (low 22 bits free for uniqueness)."""
    return ((ms - DISCORD_EPOCH_MS) << 22) | (low & 0x3FFFFF)


def snowflake_time(snowflake: int) -> datetime:
    return datetime.fromtimestamp(((snowflake >> 22) + DISCORD_EPOCH_MS) / 1000, tz=UTC)


def iso(dt: datetime) -> str:
    return dt.isoformat(timespec="microseconds")


_UNIX_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@lru_cache(maxsize=8192)
def _iso_day(days: int) -> str:
    return date.fromordinal(_UNIX_EPOCH_ORDINAL + days).isoformat()


def iso_ms(ms: int) -> str:
    """iso() of a UTC time in Unix milliseconds, without building a datetime (a quarter of the cost)."""
    days, rest = divmod(ms, 86_400_000)
    seconds, millis = divmod(rest, 1000)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    return f"{_iso_day(days)}T{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}000+00:00"


def user_id(index: int, seed: int) -> int:
    offset = int.from_bytes(_digest(f"uid|{seed}|{index}")[:4], "big")
    return USER_ID_BASE + index * USER_ID_SLOT + offset


def user_index(uid: int) -> int:
    """The generated index whose slot contains `uid` (may be out of range)."""
    return (uid - USER_ID_BASE) // USER_ID_SLOT


def user_object(
    uid: int,
    username: str,
    *,
    discriminator: str = "0",
    global_name: str | None = None,
    avatar: str | None = None,
    bot: bool = False,
) -> dict:
    """A Discord user object; `bot` appears only for bots, as Discord sends it."""
    user = {
        "id": str(uid),
        "username": username,
        "discriminator": discriminator,
        "global_name": global_name,
        "avatar": avatar,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
        "collectibles": None,
        "primary_guild": None,
    }
    if bot:
        user["bot"] = True
    return user


def generated_user(index: int, seed: int, uid: int | None = None) -> dict:
    """The Discord user object of generated user `index` (global across guilds); `uid` if already known."""
    d = _digest(f"user|{seed}|{index}")
    uid = user_id(index, seed) if uid is None else uid
    is_bot = d[0] < 5  # about 2 %
    first, second = pick(FIRST_WORDS, d[1]), pick(SECOND_WORDS, d[2])
    style = d[3] % 6
    if style == 0:
        username = f"{first}{second}"
    elif style == 1:
        username = f"{first}_{second}{d[4] % 100}"
    elif style == 2:
        username = f"{first}.{second}"
    elif style == 3:
        username = f"x{first}{second}x"
    elif style == 4:
        username = f"{first}{d[4]:02d}{d[5] % 10}"
    else:
        username = f"the.{second}.{first}"
    # Usernames are unique on Discord: the index keeps ours unique too.
    username = f"{username}{index}" if len(username) + len(str(index)) <= 32 else f"u{index}"
    discriminator = "0"
    if is_bot:
        username = f"{pick(FIRST_WORDS, d[6]).title()} Bot {index}"
        discriminator = f"{1000 + d[7] * 31 % 9000:04d}"
    global_name = None
    if not is_bot and d[8] % 10 >= 2:  # 80 % set a display name
        kind = d[9] % 20
        if kind == 0:
            global_name = pick(HOSTILE_STRINGS, d[10])
        elif kind < 4:
            global_name = f"{pick(GIVEN_NAMES, d[10])} {pick(EMOJI, d[11])}"
        elif kind < 12:
            global_name = pick(GIVEN_NAMES, d[10])
        else:
            global_name = f"{first.title()} {second.title()}"
    avatar = d[12:28].hex() if d[28] % 4 else None
    if avatar and d[29] % 16 == 0:
        avatar = "a_" + avatar  # animated
    return user_object(uid, username, discriminator=discriminator, global_name=global_name, avatar=avatar, bot=is_bot)


def generated_member(index: int, seed: int, guild_id: int, role_ids: list[int], uid: int | None = None) -> dict:
    """The guild member object of generated member `index` of a guild."""
    user = generated_user(index, seed, uid)
    d = _digest(f"member|{seed}|{guild_id}|{index}")
    nick = None
    nick_kind = d[0] % 10
    if nick_kind == 0:
        nick = pick(HOSTILE_STRINGS, d[1])
    elif nick_kind < 3:
        nick = f"{pick(GIVEN_NAMES, d[1])} | {pick(SECOND_WORDS, d[2])}"
    roles = []
    if role_ids:
        for k in range(d[3] % 4):
            role = role_ids[d[4 + k] % len(role_ids)]
            if role not in roles:
                roles.append(role)
    joined_ms = 1_546_300_800_000 + int.from_bytes(d[10:15], "big") % (220_000_000_000)
    return member_object(
        user,
        nick=nick,
        roles=[str(r) for r in roles],
        joined_at=iso_ms(joined_ms),
    )


def member_object(user: dict, *, nick: str | None, roles: list[str], joined_at: str) -> dict:
    return {
        "user": user,
        "nick": nick,
        "avatar": None,
        "banner": None,
        "roles": roles,
        "joined_at": joined_at,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
        "unusual_dm_activity_until": None,
    }


def message_id(index: int, channel_id: int) -> int:
    return snowflake_at(MESSAGE_BASE_MS + index * MESSAGE_SPACING_MS, channel_id)


def generated_message_content(index: int, seed: int, channel_id: int) -> tuple[str, int, int, int]:
    """(content, author pick, reaction count, attachment count) of a generated message."""
    d = digest("message", seed, channel_id, index)
    words = [pick(MESSAGE_WORDS, b) for b in d[1 : 2 + d[0] % 24]]
    if d[30] % 50 == 0:
        words.append(pick(HOSTILE_STRINGS, d[31]))
    reactions = d[40] % 4 if d[41] % 5 == 0 else 0
    attachments = d[42] % 3 if d[43] % 8 == 0 else 0
    return " ".join(words), int.from_bytes(d[32:36], "big"), reactions, attachments
