"""One place that builds discord.py clients and points them at DISCORD_API_BASE.

discord.py keeps its REST base URL in a class attribute (`discord.http.Route.BASE`);
it is set here and nowhere else. Workers and commands use REST-only clients (no
gateway); the bot builds a gateway client from the same settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import discord
from django.conf import settings

from guildhub.discord.errors import DiscordNotConfigured


def apply_api_base(base: str | None = None) -> str:
    """Point every discord.py REST route at `base` (default: settings.DISCORD_API_BASE)."""
    base = (base or settings.DISCORD_API_BASE).rstrip("/")
    discord.http.Route.BASE = base
    return base


def bot_token(token: str | None = None) -> str:
    token = token if token is not None else settings.DISCORD_TOKEN
    if not token:
        raise DiscordNotConfigured("DISCORD_TOKEN is not set: add the bot token to the environment or .env")
    return token


def rest_intents() -> discord.Intents:
    # REST calls ignore intents; members is on so the same client can chunk if asked.
    intents = discord.Intents.none()
    intents.guilds = True
    intents.members = True
    return intents


def gateway_intents() -> discord.Intents:
    """Intents the bot identifies with: guilds and the privileged members intent."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.members = True
    return intents


def build_gateway_client(client_class: type[discord.Client] = discord.Client, **options) -> discord.Client:
    """A gateway client that never caches members: big guilds are streamed to the database."""
    apply_api_base()
    options.setdefault("intents", gateway_intents())
    options.setdefault("member_cache_flags", discord.MemberCacheFlags.none())
    options.setdefault("chunk_guilds_at_startup", False)
    return client_class(**options)


@asynccontextmanager
async def rest_client(token: str | None = None, api_base: str | None = None) -> AsyncIterator[discord.Client]:
    """A logged-in, REST-only client; closed on exit."""
    apply_api_base(api_base)
    client = discord.Client(intents=rest_intents(), member_cache_flags=discord.MemberCacheFlags.none())
    try:
        await client.login(bot_token(token))
        yield client
    finally:
        await client.close()
