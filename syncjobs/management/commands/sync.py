"""`manage.py sync --guild ID`: sync a guild's members now, in the foreground or on the cluster."""

from __future__ import annotations

import getpass
import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from guildhub.discord.clients import rest_client, run_async
from guildhub.discord.errors import DiscordError
from guildhub.discord.guilds import GuildReader
from guildhub.discord.retry import RetryPolicy
from members.models import Guild
from members.services import upsert_guild
from members.sync import run_member_sync
from members.tasks import enqueue
from syncjobs import services as jobs
from syncjobs.models import SyncJob

EXIT_FAILED = 1
EXIT_PARTIAL = 2


def fetch_guild(guild_id: int) -> Guild:
    """Ask Discord for a guild GuildHub has not seen yet, and remember it."""

    async def fetch():
        async with rest_client() as client:
            return await GuildReader(client, guild_id, policy=RetryPolicy.from_settings()).guild()

    return upsert_guild(run_async(fetch()))


class Command(BaseCommand):
    help = "Sync guild members from Discord into the cache (foreground with a progress bar, or --async)."

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--guild", action="append", default=[], metavar="ID", help="Discord guild id (repeatable)")
        target.add_argument("--all", action="store_true", help="every active guild in the cache")
        parser.add_argument("--async", dest="queue", action="store_true", help="queue it for the cluster and return")
        parser.add_argument("--full", action="store_true", help="ignore the checkpoint of an unfinished pass")
        parser.add_argument(
            "--budget",
            type=int,
            metavar="SECONDS",
            help="set the guild's time budget per run (saved, as in the admin) before syncing",
        )

    def handle(self, *args, **options) -> None:
        guilds = self.guilds(options)
        if not guilds:
            raise CommandError("no active guilds in the cache: sync one with --guild ID first")
        worst = 0
        for guild in guilds:
            if options["budget"]:
                guild.sync_time_budget = timedelta(seconds=options["budget"])
                guild.save(update_fields=["sync_time_budget"])
            job, created = jobs.request_sync(
                guild=guild, trigger=SyncJob.Trigger.CLI, requested_by=getpass.getuser(), full=options["full"]
            )
            if options["queue"]:
                if created:
                    enqueue(job)
                verb = "queued" if created else "already " + job.status
                self.stdout.write(f"{guild}: member sync #{job.pk} {verb}")
                continue
            if job.status == SyncJob.Status.RUNNING and not created:
                self.stdout.write(f"{guild}: sync #{job.pk} is already running elsewhere; following it")
                job = self.follow(job)
            else:
                job = self.run(job)
            worst = max(worst, self.report(job))
        if worst:
            raise SystemExit(worst)

    def guilds(self, options) -> list[Guild]:
        if options["all"]:
            return list(Guild.objects.filter(is_active=True))
        guilds = []
        for raw in options["guild"]:
            if not raw.isdigit() or not 0 < int(raw) < 1 << 63:
                raise CommandError(f"{raw!r} is not a Discord guild id (a number like 1234567890123456789)")
            guild = Guild.objects.filter(pk=int(raw)).first()
            if guild is None:
                try:
                    guild = fetch_guild(int(raw))
                except DiscordError as exc:
                    raise CommandError(str(exc)) from None
            guilds.append(guild)
        return guilds

    def bar(self, job: SyncJob) -> tqdm:
        return tqdm(
            total=job.expected or None,
            initial=job.processed,
            unit=" members",
            desc=f"{job.guild.name[:30]}",
            dynamic_ncols=True,
            disable=None,  # no bar when stderr is not a terminal
        )

    def run(self, job: SyncJob) -> SyncJob:
        bar = None

        def progress(current: SyncJob) -> None:
            nonlocal bar
            if bar is None:
                bar = self.bar(current)
            if current.expected and bar.total != current.expected:
                bar.total = current.expected
            bar.update(current.processed - bar.n)

        try:
            return run_async(run_member_sync(job.pk, progress=progress))
        finally:
            if bar is not None:
                bar.close()

    def follow(self, job: SyncJob) -> SyncJob:
        with self.bar(job) as bar:
            while job.is_active:
                time.sleep(0.5)
                job.refresh_from_db()
                bar.total = job.expected or bar.total
                bar.update(job.processed - bar.n)
        return job

    def report(self, job: SyncJob) -> int:
        rate = f"{job.rate:,.0f} members/s" if job.rate else "-"
        line = (
            f"{job.guild}: sync #{job.pk} {job.status}: {job.processed:,} members "
            f"({job.created_count:,} new, {job.updated_count:,} changed, {job.departed_count:,} departed) "
            f"in {job.duration.total_seconds() if job.duration else 0:.1f}s, {rate}, "
            f"{job.api_calls} API calls, {job.rate_limit_hits} rate-limited, {job.retries} retries"
        )
        if job.status == SyncJob.Status.SUCCEEDED:
            self.stdout.write(self.style.SUCCESS(line))
            return 0
        if job.status == SyncJob.Status.PARTIAL:
            self.stdout.write(self.style.WARNING(f"{line}\n  {job.error_message}"))
            return EXIT_PARTIAL
        self.stderr.write(self.style.ERROR(f"{line}\n  {job.error_message}"))
        return EXIT_FAILED
