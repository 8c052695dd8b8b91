"""The bot's discord.py client: one handler per gateway event GuildHub cares about."""

import logging

import discord

log = logging.getLogger(__name__)


class GuildHubBot(discord.AutoShardedClient):
    """Gateway client built by `guildhub.discord.clients.build_gateway_client(GuildHubBot)`.

    AutoShardedClient rather than Client: it asks `GET /gateway/bot` for the gateway
    URL and shard count, so the gateway follows DISCORD_API_BASE (the emulator, or
    Discord), where a plain Client connects to a hard-coded wss://gateway.discord.gg.
    It is also how the bot scales to large bots: one process, as many shards as
    Discord recommends.
    """

    async def on_ready(self) -> None:
        # Fires again after a reconnect that could not resume; the count is still right.
        log.info(
            "Bot connected as %s (id %s) in %d guilds on %d shard(s)",
            self.user,
            getattr(self.user, "id", "?"),
            len(self.guilds),
            self.shard_count or 1,
        )

    async def on_guild_join(self, guild: discord.Guild) -> None:
        log.info("Bot joined guild %s (id %s)", guild.name, guild.id)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        log.info("Bot left guild %s (id %s)", guild.name, guild.id)
