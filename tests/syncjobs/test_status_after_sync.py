"""The status API after a real member sync against the emulator."""

import pytest

from guildhub.discord.clients import run_async
from members.models import Guild
from members.sync import run_member_sync
from syncjobs import services as jobs
from syncjobs.models import SyncJob

pytestmark = pytest.mark.django_db(transaction=True)


def test_status_api_reports_the_cached_members_and_the_succeeded_sync(discord_settings, emulator_guild, admin_client):
    guild = Guild.objects.create(id=emulator_guild.id, name="placeholder")
    job, _ = jobs.request_sync(guild=guild, trigger=SyncJob.Trigger.API)
    job = run_async(run_member_sync(job.pk))
    assert job.status == SyncJob.Status.SUCCEEDED, job.error_message

    body = admin_client.get(f"/api/guilds/{guild.pk}/sync-status").json()

    members_in_discord = len(emulator_guild.list_members(after=0, limit=10_000))
    assert body["guild_id"] == str(emulator_guild.id)
    assert body["name"] == emulator_guild.name
    assert (body["cached_members"], body["departed_members"]) == (members_in_discord, 0)
    assert (body["stale"], body["running"]) == (False, False)
    assert body["last_synced_at"] is not None
    assert body["job"]["id"] == str(job.pk)
    assert body["job"]["status"] == "succeeded"
    assert body["job"]["trigger"] == "api"
    assert body["job"]["processed"] == members_in_discord
    assert body["job"]["api_calls"] >= 3  # the guild, its roles, at least one page of members
