"""Guilds, members and users for the picker and dashboard tests, written through the real upsert."""

from __future__ import annotations

from django.contrib.auth.models import User

from guildhub.discord.guilds import MemberData
from members import services
from members.models import Guild, GuildAccess

GUILD_ID = 700000000000000001
OTHER_GUILD_ID = 700000000000000002
HOSTILE_NAME = "<img src=x onerror=alert(1)>"

# (user id, username, global name, nick, bot)
MEMBERS = [
    (800000000000000001, "alice", "Alice Liddell", None, False),
    (800000000000000002, "alistair", None, "Ali", False),
    (800000000000000003, "bob", "Bob", None, False),
    (800000000000000004, "percent", "100% real_name", None, False),
    (800000000000000005, "quoted", 'O\'Brien "the" back\\slash', None, False),
    (800000000000000006, "hostile", HOSTILE_NAME, "<script>alert(2)</script>", False),
    (800000000000000007, "guildhub-bot", "GuildHub", None, True),
]


def member_data(user_id: int, username: str, global_name: str | None, nick: str | None, bot: bool) -> MemberData:
    return MemberData(
        user_id=user_id,
        username=username,
        global_name=global_name,
        nick=nick,
        display_name=nick or global_name or username,
        is_bot=bot,
        avatar=None,
        role_ids=(),
        joined_at=None,
    )


def make_guild(guild_id: int = GUILD_ID, name: str = "Picker Guild", members=MEMBERS) -> Guild:
    guild = Guild.objects.create(id=guild_id, name=name)
    services.upsert_members(guild.id, [member_data(*m) for m in members])
    return guild


def make_user(username: str, *, superuser: bool = False, guilds: tuple[Guild, ...] = ()) -> User:
    if superuser:
        user = User.objects.create_superuser(username, f"{username}@example.com", "pw-for-tests-1")
    else:
        user = User.objects.create_user(username, f"{username}@example.com", "pw-for-tests-1")
    for guild in guilds:
        GuildAccess.objects.create(user=user, guild=guild)
    return user
