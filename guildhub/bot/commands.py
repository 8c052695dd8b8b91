"""Slash commands: `/guildhub sync` and `/guildhub status`, for moderators in Discord."""

from __future__ import annotations

import discord
from asgiref.sync import sync_to_async
from discord import app_commands

from members.models import Guild
from members.tasks import queue_member_sync
from syncjobs.models import SyncJob


def sync_now(guild_id: int, requested_by: str) -> str:
    guild = Guild.objects.filter(pk=guild_id, is_active=True).first()
    if guild is None:
        return "GuildHub does not know this server yet; it is added when the bot connects."
    job, created = queue_member_sync(guild, trigger=SyncJob.Trigger.BOT, requested_by=requested_by)
    if created:
        return f"Member sync #{job.pk} queued."
    return f"Member sync #{job.pk} is already {job.status} ({job.processed:,} members so far)."


def status_text(guild_id: int) -> str:
    guild = Guild.objects.filter(pk=guild_id).first()
    if guild is None:
        return "GuildHub does not know this server yet."
    cached = guild.members.filter(departed_at__isnull=True).count()
    last = f"<t:{int(guild.last_synced_at.timestamp())}:R>" if guild.last_synced_at else "never"
    job = guild.sync_jobs.filter(kind=SyncJob.Kind.MEMBERS).first()
    line = f"{cached:,} members cached; last full sync {last}."
    if job is not None:
        progress = f" ({job.progress:.0%})" if job.progress is not None and job.is_active else ""
        line += f"\nLatest sync #{job.pk}: {job.status}{progress}."
    return line


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class GuildHubCommands(app_commands.Group, name="guildhub", description="GuildHub member cache"):
    @app_commands.command(name="sync", description="Sync this server's members into GuildHub now")
    async def sync(self, interaction: discord.Interaction) -> None:
        text = await sync_to_async(sync_now)(interaction.guild_id, str(interaction.user))
        await interaction.response.send_message(text, ephemeral=True)

    @app_commands.command(name="status", description="How fresh GuildHub's copy of this server is")
    async def status(self, interaction: discord.Interaction) -> None:
        text = await sync_to_async(status_text)(interaction.guild_id)
        await interaction.response.send_message(text, ephemeral=True)
