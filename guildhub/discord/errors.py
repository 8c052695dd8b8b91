"""Errors GuildHub raises about Discord, with messages a person can act on.

discord.py's exceptions stop at this package: callers get these instead.
"""

from __future__ import annotations

import discord


class DiscordError(Exception):
    """Base class for Discord problems GuildHub reports to users."""


class DiscordNotConfigured(DiscordError):
    """No bot token or API base configured."""


class BadToken(DiscordError):
    """Discord refused the bot token."""


class UnknownGuild(DiscordError):
    """The guild does not exist, or the bot is not in it."""


class MissingAccess(DiscordError):
    """Discord answered 403: an intent, a permission or the role hierarchy is in the way."""


class DiscordUnavailable(DiscordError):
    """Discord kept failing (5xx, timeouts, dropped connections) after our retries."""


MEMBERS_INTENT_HELP = (
    "Discord refused the member list (403 Missing Access). Enable the Server Members intent for this "
    "application: Discord Developer Portal → your application → Bot → Privileged Gateway Intents."
)


def translate(exc: BaseException, *, guild_id: int | None = None, action: str = "") -> DiscordError:
    """A GuildHub error, with advice, for a discord.py exception."""
    where = f" for guild {guild_id}" if guild_id else ""
    if isinstance(exc, DiscordError):
        return exc
    if isinstance(exc, discord.LoginFailure):
        return BadToken("Discord rejected the bot token (401): check DISCORD_TOKEN.")
    if isinstance(exc, discord.NotFound):
        if exc.code == 10004 or guild_id:
            return UnknownGuild(
                f"Discord does not know guild {guild_id}, or the bot is not in it: invite the bot first."
                if guild_id
                else f"Not found: {exc.text}"
            )
        return DiscordError(f"Not found{where}: {exc.text} (code {exc.code})")
    if isinstance(exc, discord.Forbidden):
        if exc.code == 50001 and action == "list_members":
            return MissingAccess(MEMBERS_INTENT_HELP)
        if exc.code == 50013:
            return MissingAccess(
                f"Missing permissions{where} (50013): give the bot Manage Roles and move its role above "
                "the roles it manages."
            )
        return MissingAccess(f"Discord denied access{where} ({exc.code}): {exc.text}")
    if isinstance(exc, discord.DiscordServerError):
        return DiscordUnavailable(f"Discord kept answering {exc.status}{where}; will retry on the next run.")
    if isinstance(exc, discord.HTTPException):
        return DiscordError(f"Discord answered {exc.status}{where}: {exc.text}")
    return DiscordUnavailable(f"Could not reach Discord{where}: {exc.__class__.__name__}: {exc}")
