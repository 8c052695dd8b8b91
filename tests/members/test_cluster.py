"""A real django-q2 cluster (`manage.py qcluster` as a subprocess) runs member syncs end to end."""

import importlib
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.apps import apps
from django_q.models import Schedule

from members.models import Guild, Member
from members.tasks import queue_member_sync
from syncjobs.models import SyncJob

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@contextmanager
def qcluster(database_url: str, api_base: str):
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DISCORD_TOKEN": "test-token",
        "DISCORD_API_BASE": api_base,
        "Q_WORKERS": "1",
        "DJANGO_SETTINGS_MODULE": "guildhub.settings",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        # SIGTERM to the cluster's main process only: it stops its workers itself
        # (a SIGTERM to the whole group can leave django-q2 hanging).
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def wait_for(check, *, timeout: float, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if process.poll() is not None:
            raise AssertionError(f"qcluster exited: {process.stdout.read().decode(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            process.terminate()
            output = process.communicate(timeout=20)[0].decode(errors="replace")
            raise AssertionError(f"not done within {timeout}s; qcluster said:\n{output[-3000:]}")
        time.sleep(0.25)


def test_sync_now_is_run_by_the_cluster(database_url, discord_settings, emulator, emulator_guild):
    guild = Guild.objects.create(id=emulator_guild.id, name=emulator_guild.name)
    job, created = queue_member_sync(guild, trigger=SyncJob.Trigger.DASHBOARD, requested_by="alice")
    assert created
    with qcluster(database_url, emulator.api_base) as process:
        wait_for(lambda: SyncJob.objects.get(pk=job.pk).status == "succeeded", timeout=60, process=process)
    assert Member.objects.filter(guild=guild).count() == emulator_guild.member_count


def test_the_schedule_queues_a_due_guild_and_the_cluster_syncs_it(
    database_url, discord_settings, emulator, emulator_guild
):
    # The tables were flushed for this transactional test: lay the schedules down as the migration does.
    importlib.import_module("members.migrations.0002_sync_schedules").create_schedules(apps, None)
    assert Schedule.objects.filter(func="members.tasks.enqueue_due_member_syncs").exists()
    guild = Guild.objects.create(id=emulator_guild.id, name=emulator_guild.name)
    with qcluster(database_url, emulator.api_base) as process:
        # django-q2's scheduler wakes every 30 seconds.
        wait_for(
            lambda: SyncJob.objects.filter(guild=guild, trigger="schedule", status="succeeded").exists(),
            timeout=90,
            process=process,
        )
    guild.refresh_from_db()
    assert guild.last_synced_at is not None
    assert Member.objects.filter(guild=guild).count() == emulator_guild.member_count
