"""One place that builds discord.py clients and points them at DISCORD_API_BASE.

discord.py keeps its REST base URL in a class attribute (`discord.http.Route.BASE`);
it is set here and nowhere else. Workers and commands use REST-only clients (no
gateway); the bot builds a gateway client from the same settings. Both carry the
shared rate limiter (see ratelimit.py) through aiohttp's request tracing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import discord
import yarl
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

from guildhub.discord.errors import DiscordNotConfigured, translate
from guildhub.discord.ratelimit import SharedRateLimiter

T = TypeVar("T")

# GuildHub never joins voice: discord.py's warnings about missing voice libraries are noise.
discord.VoiceClient.warn_nacl = False
discord.VoiceClient.warn_dave = False


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run Discord work from synchronous code (commands, tasks).

    The ORM calls it makes run in asgiref's worker thread; their connections are
    closed at the end so none outlives the call.
    """

    async def main() -> T:
        try:
            return await coro
        finally:
            await sync_to_async(connections.close_all)()

    return asyncio.run(main())


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
    # REST calls ignore intents; discord.py refuses member listing without this flag.
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


class GatewayClient(discord.AutoShardedClient):
    """A sharded gateway client whose every connection follows `GET /gateway/bot`.

    discord.py asks `/gateway/bot` only when it launches shards; a session
    Discord invalidates (op 9) is re-identified at its built-in default address.
    Learning the URL once at start-up makes that default the one Discord gave us.
    """

    async def setup_hook(self) -> None:
        _, url, _ = await self.http.get_bot_gateway()
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)


def build_gateway_client(client_class: type[discord.Client] = GatewayClient, **options) -> discord.Client:
    """A gateway client that never caches members: big guilds are streamed to the database.

    Sharded by default: only the sharded client asks `GET /gateway/bot` for the
    gateway URL (and shard count), as Discord wants; the plain client dials
    discord.py's built-in gateway address. Pass a GatewayClient subclass.
    """
    apply_api_base()
    options.setdefault("intents", gateway_intents())
    options.setdefault("member_cache_flags", discord.MemberCacheFlags.none())
    options.setdefault("chunk_guilds_at_startup", False)
    if "http_trace" not in options and settings.DISCORD_TOKEN:
        options["http_trace"] = SharedRateLimiter(settings.DISCORD_TOKEN).trace_config()
    return client_class(**options)


@asynccontextmanager
async def rest_client(
    token: str | None = None, api_base: str | None = None, *, shared_limits: bool = True
) -> AsyncIterator[discord.Client]:
    """A logged-in, REST-only client; closed on exit."""
    apply_api_base(api_base)
    token = bot_token(token)
    options = {}
    if shared_limits:
        options["http_trace"] = SharedRateLimiter(token).trace_config()
    client = discord.Client(intents=rest_intents(), member_cache_flags=discord.MemberCacheFlags.none(), **options)
    try:
        try:
            await client.login(token)
        except (discord.DiscordException, OSError) as exc:
            raise translate(exc) from exc
        yield client
    finally:
        await client.close()
