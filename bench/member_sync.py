"""Member sync benchmark: GuildHub's REST and gateway strategies against the emulator.

For each guild size, database and strategy it measures, side by side in one run:

- end-to-end members/s of a first sync into an empty cache (login or gateway
  connect included), in a fresh subprocess whose peak RSS (ru_maxrss) is read
  at the end, with the CPU it, the emulator and PostgreSQL used;
- API calls and 429s, from the emulator's /_emulator/counters and the SyncJob row;
- the ratio to a floor: for REST, pages / limit * per of the emulator's
  members_list bucket, the time the bucket arithmetic alone forces; for the
  gateway, the time to stream every chunk with nothing parsed or stored;
- a re-sync after 1 % of the members changed their nickname (through the
  emulator's control API), right after the first sync, and its speed-up over
  the first sync; then the scheduled case: another 1 % changes, the database
  does its own maintenance (PostgreSQL: VACUUM ANALYZE, what autovacuum does
  within a minute of a big write, see Databases.maintain), and a settled
  re-sync, on which the 3x target is judged;
- the hand-written approach (pages of 100, a 500 ms pause, one update_or_create
  per member: bench/handwritten_sync.py) next to GuildHub on a smaller guild;
- the verdict on each target of issue 3.

Every scenario gets a fresh emulator process (`manage.py emulator`, so it shares
neither the GIL nor memory with the measured sync) and a fresh database migrated
with `manage.py migrate`: a SQLite file in a temporary directory, or a new
database on a throwaway PostgreSQL cluster (tests/pgcluster.py).

The REST strategy runs with the members_list bucket scaled from Discord's
10 per 10 s to 10 per 1 s (REST_BUCKET below): at Discord's rate a million
members take 1000 s whatever the engine does. What matters is the ratio to the
floor. For the same reason the full run re-syncs REST only up to 100k members.
The emulator's one-full-member-list-per-30-s rule is lifted so that the
gateway re-sync can follow the first sync at once.

Run it from the repository root:

    .venv/bin/python bench/member_sync.py            # 100k and 1M members, SQLite and PostgreSQL
    .venv/bin/python bench/member_sync.py --quick    # 20k members, SQLite only, under 2 minutes

`--sizes`, `--dbs`, `--strategies` and `--baseline-size` narrow a run, e.g. to
repeat one scenario; `--json FILE` keeps the raw figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from figures import say, table  # bench/ is on sys.path when a benchmark runs
from processes import Process, cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MANAGE = str(ROOT / "manage.py")
SEED = 42
TOKEN = "bench-token"  # noqa: S105 (the emulator accepts any token)
# Discord's members_list bucket (10 per 10 s) with a ten times shorter window;
# --rest-bucket 10/10 runs Discord's own.
REST_BUCKET = (10, 1.0)
PAGE_SIZE = 1000  # GuildHub's default sync_page_size
CHANGED_SHARE = 100  # one member in a hundred changes before the re-sync
DEFAULT_BUCKET_SECONDS = 5.5  # Discord's default bucket window (5 s, the emulator's too), and a margin
WORKER_TIMEOUT = 900  # seconds for one sync before it counts as failed
# A REST re-sync pages through every member again, so it cannot beat the floor
# (100 s at 1M members here, 1000 s on Discord); above this size the full run
# leaves it out unless --all-resyncs asks for it.
REST_RESYNC_MAX = 100_000

# Targets of issue 3.
GATEWAY_1M_SECONDS = 60.0
FLOOR_TOLERANCE = 1.10
RESYNC_SPEEDUP = 3.0
PEAK_RSS_MB = 300.0


# -- the measured side: one sync in this process ------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def run_worker(kind: str, guild_id: int) -> dict:
    """Run one sync of `kind` (rest, gateway, handwritten) in this process and return its figures."""
    import django

    django.setup()
    from bench.handwritten_sync import handwritten_sync
    from guildhub.discord.clients import run_async
    from members.gateway_sync import sync_members_over_gateway
    from members.models import Guild, Member
    from members.sync import run_member_sync
    from syncjobs import services as jobs
    from syncjobs.models import SyncJob

    guild, _ = Guild.objects.get_or_create(id=guild_id, defaults={"name": "bench"})
    rss_before = peak_rss_mb()
    started = time.perf_counter()
    if kind == "handwritten":
        processed = run_async(handwritten_sync(guild_id))
        job = None
    elif kind == "stream":
        processed = run_async(stream_only(guild_id))
        job = None
    else:
        job, _ = jobs.request_sync(guild=guild, trigger=SyncJob.Trigger.CLI, strategy=kind)
        engine = run_member_sync if kind == "rest" else sync_members_over_gateway
        job = run_async(engine(job.pk))
        processed = job.processed
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = peak_rss_mb()  # before the count below: SQLite's memory map would add the pages it reads
    return {
        "seconds": seconds,
        "processed": processed,
        "status": job.status if job else "succeeded",
        "error": job.error_message if job else "",
        "job_api_calls": job.api_calls if job else None,
        "job_429s": job.rate_limit_hits if job else None,
        "created": job.created_count if job else None,
        "updated": job.updated_count if job else None,
        "cached": Member.objects.filter(guild_id=guild_id, departed_at__isnull=True).count(),
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }


async def stream_only(guild_id: int) -> int:
    """The gateway strategy's transport alone: connect, request every member, count the chunks, store nothing.

    The gateway's counterpart of the REST floor: what the emulator and
    discord.py's decoding cost before GuildHub parses or writes anything.
    """
    from guildhub.discord.clients import bot_token, build_gateway_client
    from guildhub.discord.rawevents import install_raw_handler, request_all_members
    from members.gateway_sync import GuildArrival

    nonce, received, members = "bench-stream", [0], [0]
    done = asyncio.Event()

    def on_chunk(data: dict) -> bool:
        if data.get("nonce") != nonce:
            return False
        received[0] += 1
        members[0] += len(data.get("members", []))
        if received[0] >= int(data.get("chunk_count", 1)):
            done.set()
        return True

    client = build_gateway_client()
    arrival = GuildArrival(client, guild_id)  # as the sync does: no 2 s wait for other guilds
    runner = asyncio.create_task(client.start(bot_token()))
    try:
        await asyncio.wait_for(arrival.wait(), 60)
        uninstall = install_raw_handler(client, "GUILD_MEMBERS_CHUNK", on_chunk)
        await request_all_members(client, guild_id, nonce=nonce)
        await asyncio.wait_for(done.wait(), 600)
        uninstall()
        return members[0]
    finally:
        await client.close()
        await asyncio.gather(runner, return_exceptions=True)


# -- the orchestrating side ----------------------------------------------------


def http_json(url: str, *, method: str = "GET", body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 (http on loopback)
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        return json.load(response)


class Emulator:
    """`manage.py emulator` in a process of its own, with one guild of `members` members."""

    def __init__(self, members: int, workdir: Path, bucket: tuple[int, float]) -> None:
        self.members = members
        limit, per = bucket
        command = [
            sys.executable,
            MANAGE,
            "emulator",
            "--port={port}",
            f"--seed={SEED}",
            f"--members={members}",
            "--channels=1",
            "--messages=10",
            "--profile=discord",
            f"--bucket=members_list={limit}/{per:g}",
            # Discord allows one full member list per guild per 30 s; the re-sync
            # follows the first sync at once, so the benchmark lifts that rule.
            "--member-request-interval=0",
            # Members served from JSON encoded at start, as Discord serves them from memory: the
            # generator would otherwise spend more of these two cores than the sync under test.
            "--member-json",
        ]
        self.server = Process(command, base_env(), workdir / "emulator-{port}.log", "/_emulator/state")
        self.url = self.server.url
        self.guild_id = int(http_json(f"{self.url}/_emulator/state")["guilds"][0]["id"])
        self.last_run_started: float | None = None

    @property
    def api_base(self) -> str:
        return f"{self.url}/api/v10"

    def reset_counters(self) -> None:
        http_json(f"{self.url}/_emulator/counters/reset", method="POST")

    def wait_for_fresh_buckets(self) -> None:
        """Start a run at least one window of Discord's default bucket (5 per 5 s) after the last.

        Every run logs in and asks for /gateway/bot on routes that bucket limits. Runs of a
        small guild follow each other within seconds, and the third would wait seconds for
        the second's window: the wait of a run that starts right after two others, not the
        sync's. The time waited here is not counted.
        """
        if self.last_run_started is not None:
            time.sleep(max(0.0, self.last_run_started + DEFAULT_BUCKET_SECONDS - time.monotonic()))
        self.last_run_started = time.monotonic()

    def counters(self) -> dict:
        return http_json(f"{self.url}/_emulator/counters")

    def cpu_seconds(self) -> float:
        return self.server.cpu_seconds()

    def change_nicknames(self, user_ids: list[int]) -> float:
        """PATCH each member's nickname through the control API; returns the seconds it took."""
        started = time.perf_counter()
        asyncio.run(self._patch_all(user_ids))
        return time.perf_counter() - started

    async def _patch_all(self, user_ids: list[int]) -> None:
        import aiohttp

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as session:

            async def patch(user_id: int) -> None:
                url = f"{self.url}/_emulator/guilds/{self.guild_id}/members/{user_id}"
                async with session.patch(url, json={"nick": f"renamed {user_id % 100_000}"}) as response:
                    response.raise_for_status()

            for start in range(0, len(user_ids), 1000):
                await asyncio.gather(*(patch(uid) for uid in user_ids[start : start + 1000]))

    def stop(self) -> None:
        self.server.stop()


def changed_member_ids(members: int, guild_id: int, *, offset: int = 0) -> list[int]:
    """Every hundredth generated member of the emulator's guild, from `offset` (the same seed gives the same ids)."""
    from guildhub.emulator import generator
    from guildhub.emulator.state import GuildSpec, World

    guild = World(seed=SEED, guilds=[GuildSpec(members=0)]).guilds[guild_id]
    return [generator.user_id(index, guild.seed) for index in range(offset, members, CHANGED_SHARE)]


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DISCORD_API_BASE", "REDIS_URL")}
    env.update(DJANGO_SETTINGS_MODULE="guildhub.settings", DISCORD_TOKEN=TOKEN, LOG_LEVEL="WARNING")
    return env


class Databases:
    """Fresh, migrated databases: SQLite files in a temporary directory, PostgreSQL on a throwaway cluster."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.cluster = None
        self.count = 0

    def postgres(self):
        if self.cluster is None:
            from tests.pgcluster import PostgresCluster

            self.cluster = PostgresCluster.start()
        return self.cluster

    @contextlib.contextmanager
    def fresh(self, backend: str) -> Iterator[str]:
        """A DATABASE_URL to a new, migrated database; dropped afterwards."""
        self.count += 1
        name = f"bench_{self.count}"
        if backend == "sqlite":
            path = self.workdir / f"{name}.sqlite3"
            url = f"sqlite:///{path}"
        else:
            cluster = self.postgres()
            self._postgres_command(f"CREATE DATABASE {name}")
            url = f"postgres://{cluster.user}@{cluster.host}:{cluster.port}/{name}"
        subprocess.run(
            [sys.executable, MANAGE, "migrate", "--no-input", "-v0"],
            cwd=ROOT,
            env={**base_env(), "DATABASE_URL": url},
            check=True,
        )
        try:
            yield url
        finally:
            if backend == "sqlite":
                for leftover in self.workdir.glob(f"{name}.sqlite3*"):
                    leftover.unlink()
            else:
                self._postgres_command(f"DROP DATABASE {name} WITH (FORCE)")

    def maintain(self, backend: str, database_url: str) -> float:
        """What the database does by itself between two scheduled syncs; returns the seconds it took.

        PostgreSQL: VACUUM ANALYZE, which autovacuum runs within a minute or so of a big write
        (its insert threshold). Until then every row a first sync wrote still needs its hint
        bits set and its page marked all-visible, at the cost of the first query that reads it.
        SQLite has nothing of the kind.
        """
        if backend != "postgres":
            return 0.0
        import psycopg

        started = time.perf_counter()
        with psycopg.connect(database_url, autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE members_member")
        return time.perf_counter() - started

    def server_cpu_seconds(self, backend: str) -> float:
        """CPU the PostgreSQL server used so far (its backends count once they exit); 0 for SQLite, in-process."""
        if backend != "postgres" or self.cluster is None:
            return 0.0
        return cpu_seconds(self.cluster.process.pid, reaped_children=True)

    def _postgres_command(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.cluster.dsn(), autocommit=True) as connection:
            connection.execute(sql)

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()


def run_sync(kind: str, emulator: Emulator, databases: Databases, backend: str, database_url: str) -> dict:
    """One sync in a fresh subprocess; its figures plus the emulator's view of the traffic."""
    workdir = databases.workdir
    emulator.wait_for_fresh_buckets()
    emulator.reset_counters()
    emulator_cpu, server_cpu = emulator.cpu_seconds(), databases.server_cpu_seconds(backend)
    env = {**base_env(), "DATABASE_URL": database_url, "DISCORD_API_BASE": emulator.api_base}
    command = [sys.executable, __file__, "--worker", kind, "--guild", str(emulator.guild_id)]
    log_path = workdir / "worker.log"
    try:
        with open(log_path, "a") as log:
            done = subprocess.run(
                command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True, timeout=WORKER_TIMEOUT
            )
        result = json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as exc:
        result = failed_result(f"worker died or timed out ({exc.__class__.__name__}); see {log_path}")
    counters = emulator.counters()
    result.update(
        api_calls=counters["total_requests"],
        rate_limited=counters["rate_limited"],
        emulator_cpu_seconds=emulator.cpu_seconds() - emulator_cpu,
        db_server_cpu_seconds=databases.server_cpu_seconds(backend) - server_cpu,
        load=os.getloadavg()[0],
    )
    return result


def failed_result(message: str) -> dict:
    return {
        "seconds": 0.0,
        "processed": 0,
        "status": "failed",
        "error": message,
        "job_api_calls": None,
        "job_429s": None,
        "created": None,
        "updated": None,
        "cached": 0,
        "rss_before_mb": 0.0,
        "peak_rss_mb": 0.0,
        "cpu_seconds": 0.0,
    }


@dataclass
class Scenario:
    strategy: str  # rest, gateway, stream (gateway transport only) or handwritten
    db: str
    members: int  # generated members; the emulator adds the bot
    first: dict = field(default_factory=dict)
    resync: dict = field(default_factory=dict)  # right after the first sync
    changed: int = 0
    settled: dict = field(default_factory=dict)  # another 1% later, after the database's own maintenance
    settled_changed: int = 0
    maintenance_seconds: float = 0.0
    stream_seconds: float | None = None  # the stream-only time for this size (gateway rows)
    resync_wanted: bool = True
    bucket: tuple[int, float] = REST_BUCKET  # the emulator's members_list bucket: limit, seconds

    @property
    def label(self) -> str:
        return f"{self.strategy} {self.db} {self.members:,}"

    @property
    def floor_seconds(self) -> float | None:
        """REST: the members_list bucket's floor, pages / limit * per. Gateway: the stream-only time."""
        if self.strategy == "rest":
            limit, per = self.bucket
            pages = (self.members + 1) // PAGE_SIZE + 1  # the last, short page ends the pass
            return pages / limit * per
        if self.strategy == "gateway":
            return self.stream_seconds
        return None

    @property
    def settled_ok(self) -> bool:
        """The settled re-sync succeeded and updated exactly the members changed before it."""
        return self.settled.get("status") == "succeeded" and self.settled.get("updated") == self.settled_changed

    @property
    def succeeded(self) -> bool:
        return all(r.get("status", "succeeded") == "succeeded" for r in (self.first, self.resync, self.settled))


def run_scenario(scenario: Scenario, databases: Databases, *, resync: bool) -> Scenario:
    say(f"{scenario.label}: starting (load {os.getloadavg()[0]:.2f})")
    emulator = Emulator(scenario.members, databases.workdir, scenario.bucket)
    try:
        with databases.fresh(scenario.db) as url:
            scenario.first = run_sync(scenario.strategy, emulator, databases, scenario.db, url)
            say(f"  first sync: {describe(scenario.first)}")
            if resync and scenario.first["status"] == "succeeded":
                changed = changed_member_ids(scenario.members, emulator.guild_id)
                seconds = emulator.change_nicknames(changed)
                scenario.changed = len(changed)
                say(f"  changed {len(changed):,} nicknames through the control API in {seconds:.1f} s")
                scenario.resync = run_sync(scenario.strategy, emulator, databases, scenario.db, url)
                say(f"  re-sync: {describe(scenario.resync)}")
                # The scheduled case: the next sync comes an interval later (30 minutes by default),
                # after the database's routine maintenance, and another 1% has changed.
                if scenario.resync["status"] == "succeeded":
                    changed = changed_member_ids(scenario.members, emulator.guild_id, offset=CHANGED_SHARE // 2)
                    emulator.change_nicknames(changed)
                    scenario.settled_changed = len(changed)
                    scenario.maintenance_seconds = databases.maintain(scenario.db, url)
                    scenario.settled = run_sync(scenario.strategy, emulator, databases, scenario.db, url)
                    say(
                        f"  settled re-sync (maintenance {scenario.maintenance_seconds:.1f} s before it): "
                        f"{describe(scenario.settled)}"
                    )
    finally:
        emulator.stop()
    return scenario


def describe(result: dict) -> str:
    text = (
        f"{result['status']}, {result['processed']:,} members in {result['seconds']:.1f} s "
        f"({rate(result):,.0f}/s), peak RSS {result['peak_rss_mb']:.0f} MB, "
        f"{result['api_calls']} API calls, {result['rate_limited']} 429s, CPU {result['cpu_seconds']:.0f} s "
        f"(emulator {result['emulator_cpu_seconds']:.0f} s, PostgreSQL {result['db_server_cpu_seconds']:.0f} s), "
        f"load {result['load']:.1f}"
    )
    if result.get("updated") is not None:
        text += f", {result['created']:,} created, {result['updated']:,} updated"
    if result["error"]:
        text += f" -- {result['error']}"
    return text


def rate(result: dict) -> float:
    return result["processed"] / result["seconds"] if result.get("seconds") else 0.0


# -- the report -----------------------------------------------------------------


SYNC_HEADERS = [
    "strategy",
    "db",
    "members",
    "first s",
    "members/s",
    "peak MB",
    "API calls emu/job",
    "429 emu/job",
    "floor s",
    "x floor",
    "re-sync s",
    "updated/changed",
    "re-sync 429",
    "speed-up",
    "settled re-sync s",
    "settled speed-up",
    "CPU s sync/emu/pg",
    "load",
]


def sync_row(s: Scenario) -> list[str]:
    first, again, floor = s.first, s.resync, s.floor_seconds
    if first["status"] != "succeeded":
        return [s.strategy, s.db, f"{s.members:,}", first["status"], *["-"] * (len(SYNC_HEADERS) - 4)]
    resynced = again.get("status") == "succeeded"
    settled, settled_ok = s.settled, s.settled_ok
    return [
        s.strategy,
        s.db,
        f"{s.members:,}",
        f"{first['seconds']:.1f}",
        f"{rate(first):,.0f}",
        f"{first['peak_rss_mb']:.0f}",
        f"{first['api_calls']}/{first['job_api_calls'] if first['job_api_calls'] is not None else '-'}",
        f"{first['rate_limited']}/{first['job_429s'] if first['job_429s'] is not None else '-'}",
        f"{floor:.1f}" if floor else "-",
        f"{first['seconds'] / floor:.2f}" if floor else "-",
        f"{again['seconds']:.1f}" if resynced else again.get("status", "-" if s.resync_wanted else "skipped"),
        f"{again['updated']:,}/{s.changed:,}" if resynced else "-",
        str(again["rate_limited"]) if resynced else "-",
        f"{first['seconds'] / again['seconds']:.1f}x" if resynced else "-",
        f"{settled['seconds']:.1f}" if settled_ok else "-",
        f"{first['seconds'] / settled['seconds']:.1f}x" if settled_ok else "-",
        f"{first['cpu_seconds']:.0f}/{first['emulator_cpu_seconds']:.0f}/{first['db_server_cpu_seconds']:.0f}",
        f"{first['load']:.1f}",
    ]


BASELINE_HEADERS = [
    "approach",
    "db",
    "members",
    "seconds",
    "members/s",
    "peak MB",
    "API calls",
    "429",
    "speed-up vs hand-written",
]


def baseline_rows(scenarios: list[Scenario]) -> list[list[str]]:
    reference = next((s.first for s in scenarios if s.strategy == "handwritten"), {})
    rows = []
    for s in scenarios:
        r = s.first
        ok = r["status"] == "succeeded" and reference.get("status") == "succeeded"
        rows.append(
            [
                s.strategy,
                s.db,
                f"{s.members:,}",
                f"{r['seconds']:.1f}" if r["status"] == "succeeded" else r["status"],
                f"{rate(r):,.0f}",
                f"{r['peak_rss_mb']:.0f}",
                str(r["api_calls"]),
                str(r["rate_limited"]),
                f"{reference['seconds'] / r['seconds']:.1f}x" if ok else "-",
            ]
        )
    return rows


def verdicts(scenarios: list[Scenario]) -> list[list[str]]:
    """Each target of issue 3 against each scenario it applies to."""
    rows = []
    for s in scenarios:
        first, again = s.first, s.resync
        ok = first["status"] == "succeeded"
        where = f"{s.strategy}, {s.db}, {s.members:,}"
        if s.strategy == "gateway" and s.members >= 1_000_000:
            rows.append(
                verdict(
                    f"gateway syncs 1M members in < {GATEWAY_1M_SECONDS:.0f} s ({s.db})",
                    f"{first['seconds']:.1f} s" if ok else first["status"],
                    ok and first["seconds"] < GATEWAY_1M_SECONDS,
                )
            )
        if s.strategy == "rest":
            floor = s.floor_seconds
            hits = first["rate_limited"] + again.get("rate_limited", 0)
            rows.append(
                verdict(
                    f"REST within 10% of the floor, no 429 ({s.db}, {s.members:,})",
                    f"{first['seconds'] / floor:.2f}x floor, {hits} 429s" if ok else first["status"],
                    ok and first["seconds"] <= floor * FLOOR_TOLERANCE and hits == 0,
                )
            )
        if again:
            # Judged on the scheduled re-sync (after the database's maintenance); the one right after
            # the first sync is reported beside it.
            resynced = again["status"] == "succeeded"
            speedup = first["seconds"] / again["seconds"] if resynced else 0.0
            settled, settled_ok = s.settled, s.settled_ok
            settled_speedup = first["seconds"] / settled["seconds"] if settled_ok else 0.0
            measured = (
                f"{settled_speedup:.1f}x, {settled['updated']:,}/{s.settled_changed:,} rows updated"
                if settled_ok
                else settled.get("status", "not run")
            )
            if resynced:
                measured += f" (right after the first sync {speedup:.1f}x, {again['updated']:,}/{s.changed:,})"
            rows.append(
                verdict(
                    f"1%-changed re-sync >= {RESYNC_SPEEDUP:.0f}x faster ({where})",
                    measured,
                    settled_ok and settled_speedup >= RESYNC_SPEEDUP,
                )
            )
        if s.members >= 1_000_000:
            peak = max(first["peak_rss_mb"], again.get("peak_rss_mb", 0.0), s.settled.get("peak_rss_mb", 0.0))
            rows.append(
                verdict(
                    f"peak memory < {PEAK_RSS_MB:.0f} MB at 1M ({s.strategy}, {s.db})",
                    f"{peak:.0f} MB",
                    s.succeeded and peak < PEAK_RSS_MB,
                )
            )
    return rows


def verdict(target: str, measured: str, passed: bool) -> list[str]:
    return [target, measured, "PASS" if passed else "FAIL"]


def source_revision() -> str:
    try:
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"commit {commit}" + (" with uncommitted changes" if dirty else "")


def report(scenarios: list[Scenario], baseline: list[Scenario], started: float, bucket: tuple[int, float]) -> str:
    limit, per = bucket
    synced = [s for s in scenarios if s.strategy != "stream"]
    parts = [
        f"Member sync benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {source_revision()}, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}, {time.monotonic() - started:.0f} s in all.",
        f"Emulator profile 'discord' with members_list={limit}/{per:g}: one page per {per / limit:g} s "
        "(Discord: 10/10, one per second); the ratio to that floor is what matters.",
        "floor s: REST, pages / limit * per of the members_list bucket; gateway, the time to stream every chunk "
        "with nothing parsed or stored (the emulator plus discord.py's decoding).",
        "The re-sync follows a change of nickname for 1 member in 100 right after the first sync; the settled "
        "re-sync follows another 1% and the database's own maintenance (PostgreSQL: VACUUM ANALYZE, what "
        "autovacuum does within a minute of a big write; SQLite: none), the case of a scheduled re-sync, "
        "and is what the 3x target is judged on. 'skipped': a REST re-sync above "
        f"{REST_RESYNC_MAX:,} members, which pages through everyone again and cannot beat the floor (--all-resyncs).",
        "CPU s: used by the sync process / the emulator / the PostgreSQL server (SQLite runs in the sync process).",
        "",
    ]
    if synced:
        parts += [table(SYNC_HEADERS, [sync_row(s) for s in synced]), ""]
    if baseline:
        parts += [
            "Hand-written baseline (pages of 100, a 0.5 s pause, update_or_create per member) next to GuildHub, "
            "same emulator, same database backend:",
            "",
            table(BASELINE_HEADERS, baseline_rows(baseline)),
            "",
        ]
    rows = verdicts(synced)
    if rows:
        parts += ["Targets:", "", table(["target", "measured", "result"], rows)]
    return "\n".join(parts)


# -- main -----------------------------------------------------------------------


def plan(args: argparse.Namespace) -> tuple[list[Scenario], list[Scenario]]:
    """The scenarios to run: per size, the stream-only reference, then each database and strategy."""
    sizes = args.sizes or ([20_000] if args.quick else [100_000, 1_000_000])
    dbs = args.dbs or (["sqlite"] if args.quick else ["sqlite", "postgres"])
    scenarios = []
    for size in sizes:
        if "gateway" in args.strategies:
            scenarios.append(Scenario("stream", dbs[0], size, resync_wanted=False, bucket=args.rest_bucket))
        for db in dbs:
            for strategy in args.strategies:
                resync = strategy != "rest" or size <= REST_RESYNC_MAX or args.all_resyncs
                scenarios.append(Scenario(strategy, db, size, resync_wanted=resync, bucket=args.rest_bucket))
    baseline_size = args.baseline_size if args.baseline_size is not None else (2_000 if args.quick else 10_000)
    baseline = []
    if baseline_size:
        baseline = [
            Scenario(strategy, dbs[0], baseline_size, bucket=args.rest_bucket)
            for strategy in ("handwritten", *args.strategies)
        ]
    return scenarios, baseline


def run_all(scenarios: list[Scenario], baseline: list[Scenario], workdir: Path) -> None:
    databases = Databases(workdir)
    try:
        for scenario in baseline:
            run_scenario(scenario, databases, resync=False)
        streams: dict[int, float] = {}
        for scenario in scenarios:
            scenario.stream_seconds = streams.get(scenario.members)
            run_scenario(scenario, databases, resync=scenario.resync_wanted)
            if scenario.strategy == "stream" and scenario.first["status"] == "succeeded":
                streams[scenario.members] = scenario.first["seconds"]
    finally:
        databases.stop()


def parse_bucket(text: str) -> tuple[int, float]:
    limit, _, per = text.partition("/")
    return int(limit), float(per)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20k members, SQLite only (under 2 minutes)")
    parser.add_argument("--sizes", type=lambda text: [int(s) for s in text.split(",")], help="e.g. 100000,1000000")
    parser.add_argument("--dbs", type=lambda text: text.split(","), help="sqlite,postgres")
    parser.add_argument("--strategies", type=lambda text: text.split(","), default=["rest", "gateway"])
    parser.add_argument("--baseline-size", type=int, help="members for the hand-written comparison (0: skip)")
    parser.add_argument(
        "--rest-bucket",
        type=parse_bucket,
        default=REST_BUCKET,
        metavar="LIMIT/SECONDS",
        help="the emulator's members_list bucket (default 10/1; Discord's is 10/10)",
    )
    parser.add_argument(
        "--all-resyncs", action="store_true", help=f"also re-sync REST above {REST_RESYNC_MAX:,} members (slow)"
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    parser.add_argument("--worker", choices=["rest", "gateway", "stream", "handwritten"], help=argparse.SUPPRESS)
    parser.add_argument("--guild", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.worker:
        print(json.dumps(run_worker(args.worker, args.guild)))
        return 0
    # A kill (timeout, CI) unwinds like Ctrl-C: emulators stopped, the PostgreSQL cluster removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    scenarios, baseline = plan(args)
    workdir = Path(tempfile.mkdtemp(prefix="guildhub-bench-"))
    say(f"Member sync benchmark: {source_revision()}, load average {os.getloadavg()[0]:.2f}, logs in {workdir}")
    run_all(scenarios, baseline, workdir)
    print("\n" + report(scenarios, baseline, started, args.rest_bucket))
    if args.json:
        args.json.write_text(json.dumps([asdict(s) for s in baseline + scenarios], indent=2))
    if all(s.succeeded for s in baseline + scenarios):
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        say(f"Some runs failed: logs kept in {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
