"""Run the bot until SIGINT or SIGTERM, and turn Discord's refusals into advice."""

from __future__ import annotations

import asyncio
import logging
import signal

import aiohttp
import discord
from django.conf import settings

from guildhub.bot.client import GuildHubBot
from guildhub.discord.clients import bot_token, build_gateway_client
from guildhub.discord.errors import DiscordError

log = logging.getLogger(__name__)

INTENT_ADVICE = (
    "Discord refused the gateway connection (close code 4014, disallowed intents): the bot needs the "
    "privileged Server Members intent, which is not enabled for this application. Open the Developer Portal "
    "(https://discord.com/developers/applications), choose the application, Bot, Privileged Gateway Intents, "
    "turn on Server Members Intent, save, and start runbot again."
)
LOGIN_ADVICE = (
    "Discord rejected the bot token ({detail}). Copy the token again from the Developer Portal "
    "(Bot, Reset Token) into DISCORD_TOKEN."
)


class BotCannotRun(DiscordError):
    """Discord refused the bot or could not be reached; the message says what to do."""


def run_bot(token: str | None = None) -> None:
    """Connect to the gateway and run until SIGINT/SIGTERM; raise BotCannotRun when Discord says no."""
    asyncio.run(_run(bot_token(token)))


async def _run(token: str) -> None:
    client = build_gateway_client(GuildHubBot)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    gateway = asyncio.create_task(client.start(token), name="discord-gateway")
    stopped = asyncio.create_task(stop.wait(), name="stop-signal")
    try:
        await asyncio.wait({gateway, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if gateway.done():
            _raise_for_exit(gateway)
            log.info("Discord closed the gateway connection; exiting")
        else:
            log.info("Stop requested: closing the Discord connection")
    finally:
        stopped.cancel()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await client.close()
        # After close() nothing is left to clean up, but an AutoShardedClient still
        # retrying a shard that never connected would sleep and retry for ever.
        gateway.cancel()
        await asyncio.gather(gateway, return_exceptions=True)


def _raise_for_exit(gateway: asyncio.Task[None]) -> None:
    """Re-raise the gateway task's exception as advice a person can act on."""
    try:
        gateway.result()
    except discord.PrivilegedIntentsRequired:
        raise BotCannotRun(INTENT_ADVICE) from None
    except discord.LoginFailure as exc:
        raise BotCannotRun(LOGIN_ADVICE.format(detail=f"401 Unauthorized: {exc}")) from None
    except discord.ConnectionClosed as exc:
        if exc.code == 4004:
            raise BotCannotRun(LOGIN_ADVICE.format(detail="gateway close code 4004, authentication failed")) from None
        raise BotCannotRun(f"Discord closed the gateway connection with code {exc.code}: {exc}") from None
    except (aiohttp.ClientError, OSError, discord.GatewayNotFound) as exc:
        raise BotCannotRun(f"Cannot reach Discord at {settings.DISCORD_API_BASE}: {exc}") from None
    except discord.HTTPException as exc:
        raise BotCannotRun(f"Discord answered {exc.status} at {settings.DISCORD_API_BASE}: {exc.text}") from None
