"""The bot's discord.py client: gateway events in, GuildHub services out.

Member events are taken raw (see guildhub.discord.rawevents) because the bot
runs without discord.py's member cache: a million members stay in our
database, not in this process. Database work runs through sync_to_async, off
the event loop, so heartbeats never wait on a write.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import discord
from asgiref.sync import sync_to_async
from django.utils import timezone

from guildhub.bot.commands import GuildHubCommands
from guildhub.discord.clients import GatewayClient
from guildhub.discord.guilds import READ_ERRORS, GuildInfo, member_from_json
from guildhub.discord.rawevents import install_raw_handler
from guildhub.heartbeat import forget_bot_shards_from, record_bot_heartbeat
from members import services
from members.gateway_sync import run_chunked_member_sync
from members.models import Guild
from syncjobs import services as jobs
from syncjobs.models import SyncJob

log = logging.getLogger(__name__)

# A guild seen again after a reconnect is re-chunked only if its cache is older than this.
RESYNC_ON_CONNECT_AFTER = timedelta(minutes=5)
HEARTBEAT_SECONDS = 15.0


def guild_info(guild: discord.Guild) -> GuildInfo:
    return GuildInfo(
        id=guild.id,
        name=guild.name,
        icon=guild.icon.key if guild.icon else "",
        approximate_member_count=guild.member_count,
    )


class GuildHubBot(GatewayClient):
    """Gateway client built by `guildhub.discord.clients.build_gateway_client(GuildHubBot)`.

    Sharded (see GatewayClient), so every gateway connection follows
    `GET /gateway/bot` at DISCORD_API_BASE: the emulator, or Discord.
    """

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.tree = discord.app_commands.CommandTree(self)
        self.tree.add_command(GuildHubCommands())
        self.chunk_queue: asyncio.Queue[int] = asyncio.Queue()
        self.background: set[asyncio.Task] = set()
        self.uninstallers = []

    # -- lifecycle ---------------------------------------------------------

    async def setup_hook(self) -> None:
        await super().setup_hook()
        for event, handler in (
            ("GUILD_MEMBER_ADD", self.on_raw_member_upsert),
            ("GUILD_MEMBER_UPDATE", self.on_raw_member_upsert),
            ("GUILD_MEMBER_REMOVE", self.on_raw_member_removal),
        ):
            self.uninstallers.append(install_raw_handler(self, event, handler))
        self.spawn(self.chunk_worker(), name="chunk-sync")
        self.spawn(self.heartbeat_loop(), name="heartbeat")
        try:
            await self.tree.sync()
        except discord.HTTPException as exc:
            log.warning("could not register slash commands: %s", exc)

    async def close(self) -> None:
        for task in list(self.background):
            task.cancel()
        await asyncio.gather(*self.background, return_exceptions=True)
        await super().close()

    def spawn(self, coro, *, name: str) -> asyncio.Task:
        """A background task the bot keeps a reference to and cancels on close."""
        task = asyncio.create_task(coro, name=name)
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        return task

    async def on_ready(self) -> None:
        log.info("Bot connected as %s in %d guilds on %d shard(s)", self.user, len(self.guilds), self.shard_count or 1)

    # -- guilds ------------------------------------------------------------

    async def on_guild_available(self, guild: discord.Guild) -> None:
        stored = await sync_to_async(services.upsert_guild)(guild_info(guild))
        fresh = stored.last_synced_at and timezone.now() - stored.last_synced_at < RESYNC_ON_CONNECT_AFTER
        if not fresh:
            self.chunk_queue.put_nowait(guild.id)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        log.info("Bot joined guild %s (id %s)", guild.name, guild.id)
        await sync_to_async(services.upsert_guild)(guild_info(guild))
        self.chunk_queue.put_nowait(guild.id)

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        log.info("Bot left guild %s (id %s)", guild.name, guild.id)
        await sync_to_async(services.deactivate_guild)(guild.id)

    async def chunk_worker(self) -> None:
        """Stream one guild at a time into the cache (Discord allows one full list per guild per 30 s)."""
        while True:
            guild_id = await self.chunk_queue.get()
            try:
                await self.chunk_sync(guild_id)
            except Exception:
                log.exception("chunked member sync of guild %s failed", guild_id)

    async def chunk_sync(self, guild_id: int) -> SyncJob | None:
        guild = await sync_to_async(Guild.objects.get)(pk=guild_id)
        job, created = await sync_to_async(jobs.request_sync)(
            guild=guild, trigger=SyncJob.Trigger.BOT, requested_by="bot", strategy="gateway"
        )
        if not created and job.status == SyncJob.Status.RUNNING:
            return None  # a worker is already syncing this guild
        job = await run_chunked_member_sync(job.pk, self)
        log.info("guild %s: gateway member sync #%s %s, %s members", guild_id, job.pk, job.status, job.processed)
        return job

    # -- live member events --------------------------------------------------

    def on_raw_member_upsert(self, data: dict) -> bool:
        # In discord.py's socket reader: an exception here would end the connection.
        try:
            guild_id, member = int(data["guild_id"]), member_from_json(data)
        except READ_ERRORS as exc:
            log.warning("ignored a member event GuildHub cannot read (%r)", exc)
            return False
        self.spawn(sync_to_async(services.apply_member_event)(guild_id, member), name=f"member-{member.user_id}")
        return False  # discord.py still dispatches its own events

    def on_raw_member_removal(self, data: dict) -> bool:
        try:
            guild_id, user_id = int(data["guild_id"]), int(data["user"]["id"])
        except READ_ERRORS as exc:
            log.warning("ignored a member removal GuildHub cannot read (%r)", exc)
            return False
        self.spawn(sync_to_async(services.apply_member_removal)(guild_id, user_id), name=f"member-{user_id}")
        return False

    # -- heartbeat -------------------------------------------------------------

    async def heartbeat_loop(self) -> None:
        """Tell /healthz the bot is alive, per shard."""
        await self.wait_until_ready()
        await sync_to_async(forget_bot_shards_from)(self.shard_count or 1)
        while True:
            for shard_id, latency in self.latencies:
                guild_count = sum(1 for g in self.guilds if g.shard_id == shard_id)
                latency_ms = None if latency != latency else int(latency * 1000)  # NaN before the first ack
                await sync_to_async(record_bot_heartbeat)(
                    shard_id=shard_id, latency_ms=latency_ms, guild_count=guild_count
                )
            await asyncio.sleep(HEARTBEAT_SECONDS)
