"""The collector's thresholds while syncs run: raised for the run, restored after, shared by concurrent runs."""

import gc
import threading

import pytest

from guildhub.discord.clients import run_async
from members import garbage_collection
from members.garbage_collection import BULK_THRESHOLD, fewer_collections
from members.gateway_sync import ChunkedMemberSync, sync_members_over_gateway
from members.models import Guild
from members.sync import MemberSync, run_member_sync
from syncjobs import services as jobs
from syncjobs.models import SyncJob


@pytest.fixture(autouse=True)
def default_thresholds():
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)
    assert garbage_collection._running == 0


def test_thresholds_are_raised_inside_and_restored_after():
    with fewer_collections():
        assert gc.get_threshold() == BULK_THRESHOLD
    assert gc.get_threshold() == (700, 10, 10)


def test_thresholds_are_restored_when_the_block_raises():
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("sync failed")
    assert gc.get_threshold() == (700, 10, 10)


def test_thresholds_someone_set_higher_are_kept():
    gc.set_threshold(100_000, 5, 1000)
    with fewer_collections():
        assert gc.get_threshold() == (100_000, BULK_THRESHOLD[1], 1000)
    assert gc.get_threshold() == (100_000, 5, 1000)


def test_concurrent_runs_restore_only_when_the_last_one_ends():
    first_in, second_out, observed = threading.Event(), threading.Event(), []

    def first():
        with fewer_collections():
            first_in.set()
            second_out.wait(5)
            observed.append(("first, after the second ended", gc.get_threshold()))

    thread = threading.Thread(target=first)
    thread.start()
    assert first_in.wait(5)
    with fewer_collections():
        observed.append(("second", gc.get_threshold()))
    second_out.set()
    thread.join(5)
    assert observed == [("second", BULK_THRESHOLD), ("first, after the second ended", BULK_THRESHOLD)]
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.django_db(transaction=True)
def test_rest_and_gateway_syncs_write_with_the_raised_thresholds(discord_settings, emulator_guild, monkeypatch):
    guild = Guild.objects.create(id=emulator_guild.id, name="placeholder")
    seen = []
    for engine, method in ((MemberSync, "_write_page"), (ChunkedMemberSync, "_write_chunks")):
        original = getattr(engine, method)

        def recording(self, *args, _original=original, **kwargs):
            seen.append((type(self).__name__, gc.get_threshold()))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(engine, method, recording)

    job, _ = jobs.request_sync(guild=guild, trigger=SyncJob.Trigger.CLI)
    assert run_async(run_member_sync(job.pk)).status == SyncJob.Status.SUCCEEDED
    assert gc.get_threshold() == (700, 10, 10)
    job, _ = jobs.request_sync(guild=guild, trigger=SyncJob.Trigger.CLI, strategy="gateway")
    assert run_async(sync_members_over_gateway(job.pk)).status == SyncJob.Status.SUCCEEDED
    assert gc.get_threshold() == (700, 10, 10)
    assert {name for name, _ in seen} == {"MemberSync", "ChunkedMemberSync"}
    assert {threshold for _, threshold in seen} == {BULK_THRESHOLD}
