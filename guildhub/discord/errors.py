"""Errors GuildHub raises about Discord, with messages a person can act on."""


class DiscordError(Exception):
    """Base class for Discord problems GuildHub reports to users."""


class DiscordNotConfigured(DiscordError):
    """No bot token or API base configured."""
