"""Member search benchmark: the picker's search on a million members, and what users do today.

Measured side by side in one run, for each database (SQLite and PostgreSQL):

- the fill: generated members (guildhub.emulator.generator, the emulator's own
  guild and seed) written through `upsert_members` in batches of 1000, one
  transaction each, then VACUUM ANALYZE (PostgreSQL: what autovacuum does within a
  minute or so of a big write, and what lets the search's walk read its index alone)
  or ANALYZE + PRAGMA optimize (SQLite);
- server side: `search_members(guild, q, live_fallback=False)` for queries of
  1, 2, 3 and 5+ characters, of 3+ characters without a letter or digit, by id
  (a user id, a `<@id>` mention) and empty, drawn from the names in the data
  (prefixes, substrings, whole names, some matching nothing), QUERIES_PER_CLASS
  of each after a warm-up: p50, p95 and max;
- end to end: the web app with a logged-in session (a session row made by
  Django's test client, sent as the cookie) on the production server, gunicorn
  with the repository's gunicorn.conf.py (`--server threaded`: Django's threaded
  WSGI server, runserver's, in one process with TCP_NODELAY set, see
  worker_serve), in a process of its own; stock runserver, which adds 40 ms to
  every answer, is measured with one client. CLIENTS keep-alive loopback clients
  (coroutines on one asyncio loop, see fire) send a mix of the classes above to
  the picker's HTML options endpoint and to the JSON API: back to back (a closed
  loop: the most the server gives, and what the issue's target of p95 ≤ 50 ms
  under 20 concurrent clients is judged on), then paced at one request per PACE
  seconds each (people typing behind the picker's 150 ms debounce: reported
  beside it, against the same 50 ms for reference), then one client alone,
  then back to back again with user ids only (the cheapest answer: what the
  request cycle alone allows); a fixed number of requests and a time cap.

And the approach users have today: a page load that fetches the guild's member
list from Discord to fill a dropdown, with discord.py (`rest_client` and
`http.get_members`, pages of 1000) against the emulator (`manage.py emulator
--profile discord`, Discord's members bucket of 10 requests per 10 s) in a
process of its own; its time is divided by GuildHub's p50.

Run it from the repository root:

    .venv/bin/python bench/member_search.py            # 1M members, SQLite and PostgreSQL (~15-20 min)
    .venv/bin/python bench/member_search.py --quick    # 50k members, SQLite only (under 2 minutes)

`--members`, `--dbs`, `--requests`, `--skip-search`, `--skip-http` and
`--skip-discord` narrow a run, `--server` picks the web server; `--explain
QUERY` prints the plans of one query's statements after the fill; `--json FILE`
keeps the raw figures. Each database is fresh (a SQLite file in a temporary
directory, a throwaway PostgreSQL cluster from tests/pgcluster.py with
shared_buffers of 1GB, as a server with 4 GB of memory would have it;
`--pg-shared-buffers 128MB` measures PostgreSQL's shipped default), migrated
with `manage.py migrate`, and deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import runpy
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unicodedata
import urllib.parse
import urllib.request
from pathlib import Path

from figures import percentile, say, table  # bench/ is on sys.path when a benchmark runs
from processes import Process

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MANAGE = str(ROOT / "manage.py")
SEED = 42
TOKEN = "bench-token"  # noqa: S105 (the emulator accepts any token)
BATCH = 1000
DEPARTED_EVERY = 100  # one member in a hundred has left: kept for history, ranked last
QUERIES_PER_CLASS = 200
WARMUP_PER_CLASS = 30
CLASSES = ["1 char", "2 chars", "3 chars", "5+ chars", "3+ symbols", "id", "empty"]
SMALL_CLASSES = {"empty": 20, "3+ symbols": 50}  # the picker opening, and rare input: fewer queries
CLIENTS = 20
# PostgreSQL's own advice for a server of 1 GB of memory or more is a quarter of it; its shipped
# 128MB is sized to start anywhere. A million members' table and search indexes take about 0.7 GB,
# and with 128MB most of a search's row reads come from the OS cache instead (README, Scaling out).
PG_SHARED_BUFFERS = "1GB"
HTTP_REQUESTS = 1000
QUICK_REQUESTS = 600
HTTP_WARMUP = 100
HTTP_TIME_CAP = 30.0  # seconds per endpoint, mode and database
REQUEST_TIMEOUT = 10.0  # seconds; a request that takes longer counts as an error
PACE = 0.25  # seconds between one paced client's requests: a keystroke behind a short debounce
DISCORD_MEMBERS = 10_000
DISCORD_PAGE = 1000
DISCORD_BUCKET = (10, 10.0)  # members_list: requests per seconds, Discord's and the emulator's

# Targets of issue 4 (milliseconds).
SERVER_P95 = {"postgres": 10.0, "sqlite": 30.0}
E2E_P95 = 50.0


# -- statistics and reporting -------------------------------------------------


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "max": max(values),
    }


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


# -- queries drawn from the data ------------------------------------------------


def bench_guild():
    """The emulator's first guild for SEED: the same id, seed and roles as `manage.py emulator --seed 42`."""
    from guildhub.emulator.state import GuildSpec, World

    return next(iter(World(seed=SEED, guilds=[GuildSpec(members=0)]).guilds.values()))


def generated(index: int, guild) -> dict:
    from guildhub.emulator import generator

    return generator.generated_member(index, guild.seed, guild.id, guild.role_ids)


def names_of(member: dict) -> list[str]:
    user = member["user"]
    return [name for name in (user["username"], user.get("global_name"), member.get("nick")) if name]


NO_MATCH_CHARS = "ǂǁ¤§ⱥꙮ"  # one character that no generated name has
NO_MATCH_LETTERS = "qjzvkw"


def make_queries(kind: str, count: int, members: int, guild, rng: random.Random) -> list[str]:
    """`count` queries of one class, as a person would type them about random members of the data."""
    from guildhub.emulator import generator

    queries: list[str] = []
    while len(queries) < count:
        index = rng.randrange(members)
        member = generated(index, guild)
        roll = rng.random()
        if kind == "empty":
            queries.append("")
            continue
        if kind == "id":
            uid = generator.user_id(index, guild.seed)
            if roll < 0.1:  # an id nobody in the guild has
                uid = generator.user_id(members + rng.randrange(10**6), guild.seed)
            queries.append(f"<@{uid}>" if rng.random() < 0.25 else str(uid))
            continue
        name = rng.choice(names_of(member))
        if kind == "3+ symbols":  # no letter or digit: "<@", "%_%", "\" on", "'); " from the hostile names
            length = 3
            pieces = [name[i : i + 3] for i in range(len(name) - 2)]
            pieces = [p for p in pieces if not any(c.isalnum() or unicodedata.combining(c) for c in p)]
            if not pieces:
                continue
            query = rng.choice(pieces)
        elif kind == "1 char":
            query = rng.choice(NO_MATCH_CHARS) if roll < 0.1 else name[:1]
            length = 1
        elif kind in ("2 chars", "3 chars"):
            length = int(kind[0])
            if roll < 0.1:  # a typo: letters in an order no generated name has (almost surely)
                query = "".join(rng.choice(NO_MATCH_LETTERS) for _ in range(length))
            else:
                start = 0 if roll < 0.55 or len(name) <= length else rng.randrange(len(name) - length + 1)
                query = name[start : start + length]
        else:
            length = 5
            if roll < 0.1:
                query = "".join(rng.choice(NO_MATCH_LETTERS) for _ in range(rng.randint(6, 10)))
            elif roll < 0.3:
                query = name  # the whole name: an exact match
            elif roll < 0.65 or len(name) <= 8:
                query = name[: rng.randint(5, 10)]
            else:
                size = rng.randint(5, 8)
                start = rng.randrange(len(name) - size + 1)
                query = name[start : start + size]
        # The picker strips what is typed; keep only queries that stay in their class.
        stripped = query.strip()
        if (len(stripped) == length or (length == 5 and len(stripped) >= 5)) and stripped == query:
            queries.append(query)
    return queries


# -- worker: fill and server-side latency, in a process with DATABASE_URL set -----


def worker_fill(members: int, other_guilds: int = 0) -> dict:
    import django

    django.setup()
    from django.db import connection, transaction
    from django.db.models.functions import Mod
    from django.utils import timezone

    from guildhub.discord.guilds import member_from_json
    from members.models import Guild, Member
    from members.services import upsert_members

    spec = bench_guild()
    Guild.objects.create(id=spec.id, name=spec.name, approximate_member_count=members)
    started = time.perf_counter()
    for start in range(0, members, BATCH):
        batch = [member_from_json(generated(i, spec)) for i in range(start, min(start + BATCH, members))]
        with transaction.atomic():
            upsert_members(spec.id, batch)
    fill_seconds = time.perf_counter() - started
    # Members who left stay in the cache (history), ranked after present ones.
    departed_started = time.perf_counter()
    with transaction.atomic():
        Member.objects.alias(slot=Mod("id", DEPARTED_EVERY)).filter(guild_id=spec.id, slot=1).update(
            departed_at=timezone.now()
        )
    departed_seconds = time.perf_counter() - departed_started
    # Other guilds cached beside it, each holding the same members under its own id: the most
    # another guild can add to a search that reads every guild's matches. Copied in SQL (SQLite's
    # triggers keep its FTS5 index in step); the searches measured are the first guild's.
    copies_started = time.perf_counter()
    columns = ", ".join(f.column for f in Member._meta.concrete_fields if f.column not in ("id", "guild_id"))
    for n in range(1, other_guilds + 1):
        other = Guild.objects.create(id=spec.id + n, name=f"{spec.name} ({n})", approximate_member_count=members)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO members_member (guild_id, {columns}) "  # noqa: S608 (the model's own columns)
                f"SELECT %s, {columns} FROM members_member WHERE guild_id = %s",
                [other.id, spec.id],
            )
    copies_seconds = time.perf_counter() - copies_started
    analyze_started = time.perf_counter()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("VACUUM ANALYZE")
        else:
            cursor.execute("ANALYZE")
            cursor.execute("PRAGMA optimize")
    analyze_seconds = time.perf_counter() - analyze_started
    return {
        "fill_seconds": fill_seconds,
        "departed_seconds": departed_seconds,
        "other_guilds": other_guilds,
        "copies_seconds": copies_seconds,
        "analyze_seconds": analyze_seconds,
        "rows": Member.objects.filter(guild_id=spec.id).count(),
        "departed": Member.objects.filter(guild_id=spec.id, departed_at__isnull=False).count(),
        "load": load(),
    }


def worker_search(members: int, *, timed: bool = True) -> dict:
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from members.models import Guild
    from members.selectors import search_members

    spec = bench_guild()
    guild = Guild.objects.get(id=spec.id)
    rng = random.Random(SEED)
    results = {}
    for kind in CLASSES:
        count = SMALL_CLASSES.get(kind, QUERIES_PER_CLASS)
        warmup = make_queries(kind, 5 if kind in SMALL_CLASSES else WARMUP_PER_CLASS, members, spec, rng)
        queries = make_queries(kind, count, members, spec, rng)
        if not timed:  # --skip-search: the queries are still drawn, so the HTTP mix stays the same
            continue
        for query in warmup:
            search_members(guild, query, live_fallback=False)
        timings, empty, slowest = [], 0, ("", 0.0)
        for query in queries:
            started = time.perf_counter()
            result = search_members(guild, query, live_fallback=False)
            ms = (time.perf_counter() - started) * 1000
            timings.append(ms)
            empty += not result.hits
            if ms > slowest[1]:
                slowest = (query, ms)
        results[kind] = {**summary(timings), "empty_share": empty / len(queries), "slowest_query": slowest[0]}
    # A superuser and a logged-in session for the HTTP clients (the session lives in the database).
    user = get_user_model().objects.create_superuser("bench", "bench@example.invalid", "bench-password-1")
    client = Client()
    client.force_login(user)
    # The mix a typing crowd sends: as many 1, 2, 3 and 5+ character queries, fewer ids and empty ones.
    mix = {"1 char": 60, "2 chars": 60, "3 chars": 60, "5+ chars": 60, "id": 30, "empty": 10}
    http_queries = {kind: make_queries(kind, count, members, spec, rng) for kind, count in mix.items()}
    return {
        "vendor": connection.vendor,
        "search": results,
        "session": client.cookies["sessionid"].value,
        "guild_id": spec.id,
        "http_queries": http_queries,
        "load": load(),
    }


def worker_explain(query: str) -> str:
    """The plans of one search's SQL statements (for finding out why a class is slow)."""
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from members.models import Guild
    from members.selectors import search_members

    guild = Guild.objects.get(id=bench_guild().id)
    with CaptureQueriesContext(connection) as captured:
        search_members(guild, query, live_fallback=False)
    out = []
    prefix = "EXPLAIN (ANALYZE, BUFFERS) " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
    for statement in captured.captured_queries:
        sql = statement["sql"]
        with connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(prefix + sql)
            rows = cursor.fetchall()
            ms = (time.perf_counter() - started) * 1000
        out.append(f"-- {ms:.1f} ms: {sql}\n" + "\n".join(" ".join(map(str, row)) for row in rows))
    return "\n\n".join(out)


def worker_discord(api_base: str, guild_id: int, loads: int) -> dict:
    """Page loads that fetch the whole member list from Discord, as dashboards without a cache do."""
    import asyncio

    import django

    django.setup()
    from guildhub.discord.clients import rest_client

    async def page_load() -> dict:
        started = time.perf_counter()
        # shared_limits=False: a plain discord.py client, as such a dashboard has; discord.py
        # follows the bucket headers and waits out the window on its own.
        async with rest_client(TOKEN, api_base, shared_limits=False) as client:
            logged_in = time.perf_counter()
            members, after, requests = 0, None, 0
            while True:
                page = await client.http.get_members(guild_id, DISCORD_PAGE, after)
                requests += 1
                members += len(page)
                if len(page) < DISCORD_PAGE:
                    break
                after = int(page[-1]["user"]["id"])
        done = time.perf_counter()
        return {
            "seconds": done - started,
            "login_seconds": logged_in - started,
            "members": members,
            "requests": requests,
        }

    async def main() -> list[dict]:
        return [await page_load() for _ in range(loads)]

    return {"loads": asyncio.run(main()), "load": load()}


# -- the orchestrating side: databases, processes, HTTP clients ---------------------


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DISCORD_API_BASE", "REDIS_URL")}
    # No bot token: a query the cache cannot answer gets the cache's answer at once,
    # without Discord's live search (its latency is Discord's, not GuildHub's).
    env.update(DJANGO_SETTINGS_MODULE="guildhub.settings", DISCORD_TOKEN="", LOG_LEVEL="WARNING", DEBUG="False")
    return env


def run_worker(task: str, env: dict, *args: str, timeout: float = 1200) -> dict:
    command = [sys.executable, __file__, "--worker", task, *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {task} failed (code {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class Database:
    """A fresh, migrated database: a SQLite file in `workdir`, or a database on a throwaway PostgreSQL cluster."""

    def __init__(self, backend: str, workdir: Path, pg_settings: dict[str, str] | None = None) -> None:
        self.backend = backend
        self.cluster = None
        if backend == "sqlite":
            self.url = f"sqlite:///{workdir / 'search.sqlite3'}"
        else:
            from tests.pgcluster import PostgresCluster

            self.cluster = PostgresCluster.start(settings=pg_settings)
            with self.psql() as connection:
                connection.execute("CREATE DATABASE bench_search")
            self.url = f"postgres://{self.cluster.user}@{self.cluster.host}:{self.cluster.port}/bench_search"
        started = time.perf_counter()
        subprocess.run([sys.executable, MANAGE, "migrate", "--no-input", "-v0"], cwd=ROOT, env=self.env, check=True)
        self.migrate_seconds = time.perf_counter() - started

    @property
    def env(self) -> dict[str, str]:
        return {**base_env(), "DATABASE_URL": self.url}

    def psql(self):
        import psycopg

        return psycopg.connect(self.cluster.dsn(), autocommit=True)

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()


def mixed_paths(path: str, queries: dict[str, list[str]], rng: random.Random, count: int) -> list[str]:
    pool = [q for kind in sorted(queries) for q in queries[kind]]
    return [f"{path}{urllib.parse.quote(rng.choice(pool))}" for _ in range(count)]


async def _fire(
    port: int, paths: list[str], headers: dict, *, clients: int, warmup: int, cap: float, interval: float
) -> dict:
    timings: list[float] = []
    statuses: dict[int | str, int] = {}
    work = iter(enumerate(paths))
    head = "".join(f"{name}: {value}\r\n" for name, value in {"Host": f"127.0.0.1:{port}", **headers}.items())
    started = time.perf_counter()
    deadline = started + cap

    async def exchange(streams: list, path: str) -> int:
        if not streams:
            streams[:] = await asyncio.open_connection("127.0.0.1", port)
        reader, writer = streams
        writer.write(f"GET {path} HTTP/1.1\r\n{head}\r\n".encode())
        status_line, *header_lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        fields = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip().lower()
        if "content-length" not in fields:  # Django's CommonMiddleware always sets it
            raise ConnectionError(f"no Content-Length in the answer to {path}")
        await reader.readexactly(int(fields["content-length"]))
        if fields.get("connection") == "close":
            writer.close()
            streams.clear()
        return int(status_line.split()[1])

    async def client(number_of_client: int) -> None:
        streams: list = []  # [reader, writer] of this client's keep-alive connection, when open
        planned = started + interval * number_of_client / clients  # spread the clients' phases
        try:
            for number, path in work:  # one iterator shared by all clients: each path is sent once
                if interval:
                    await asyncio.sleep(max(0.0, planned - time.perf_counter()))
                    begin, planned = planned, planned + interval
                else:
                    begin = time.perf_counter()
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT):  # no task per request, unlike wait_for
                        status: int | str = await exchange(streams, path)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                    status = "error"  # a timeout or a dropped connection
                    if streams:
                        streams[1].close()
                        streams.clear()
                ms = (time.perf_counter() - begin) * 1000
                statuses[status] = statuses.get(status, 0) + 1
                if number >= warmup and status == 200:
                    timings.append(ms)
                if time.perf_counter() >= deadline:
                    return
        finally:
            if streams:
                streams[1].close()

    await asyncio.gather(*(client(n) for n in range(clients)))
    seconds = time.perf_counter() - started
    answered = sum(statuses.values())
    return {
        **(summary(timings) if timings else {"n": 0}),
        "seconds": seconds,
        "per_second": answered / seconds,
        "statuses": statuses,
        "capped": answered < len(paths),
        "load": load(),
    }


def fire(
    port: int, paths: list[str], headers: dict, *, clients: int, warmup: int, cap: float, interval: float = 0.0
) -> dict:
    """Send `paths` from `clients` keep-alive connections; latency of each after the warm-up.

    interval 0: each client sends its next request as soon as the last one is answered (closed loop).
    interval > 0: each client sends one request every `interval` seconds, like a person typing
    behind the picker's debounce; latency counts from the planned send time, so a slow answer
    that delays the next request is not hidden (no coordinated omission).

    The clients are coroutines on one asyncio loop writing raw HTTP/1.1, in this process,
    which does nothing else meanwhile: about 0.1 ms of CPU per request. Twenty threads
    with http.client cost several times that, and their GIL contention took CPU from the
    server on a 2-core machine and added their own queueing to the latencies measured.
    """
    return asyncio.run(_fire(port, paths, headers, clients=clients, warmup=warmup, cap=cap, interval=interval))


def worker_serve(port: int) -> None:
    """Django's threaded WSGI server (runserver's) with TCP_NODELAY, as production servers set it.

    Stock runserver writes the status line and the rest of a response in two
    small writes; Nagle's algorithm holds the second until the client's delayed
    ACK (40 ms on Linux), which would add 40 ms to every answer and measure nothing of GuildHub.
    """
    import logging

    import django

    django.setup()
    from django.core.servers.basehttp import WSGIServer, get_internal_wsgi_application, run

    class NoDelayWSGIServer(WSGIServer):
        def get_request(self):
            sock, address = super().get_request()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock, address

    logging.getLogger("django.server").setLevel(logging.WARNING)  # no access log, like gunicorn's default
    run("127.0.0.1", port, get_internal_wsgi_application(), threading=True, server_cls=NoDelayWSGIServer)


def gunicorn_config() -> dict:
    """The production server's settings, from the repository's gunicorn.conf.py as gunicorn reads them."""
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    return {key: config[key] for key in ("workers", "threads", "worker_class")}


def server_command(server: str) -> list[str]:
    if server == "gunicorn":
        # The production setup (README), gunicorn.conf.py, on a free port; without gunicorn's control
        # socket, whose one default path in the home folder concurrent runs would take from each other.
        config = f"--config={ROOT / 'gunicorn.conf.py'}"
        return [sys.executable, "-m", "gunicorn", config, "--bind=127.0.0.1:{port}", "--no-control-socket"]
    return [sys.executable, __file__, "--worker", "serve", "--port", "{port}"]


def server_label(server: str) -> str:
    if server == "gunicorn":
        config = gunicorn_config()
        return f"gunicorn {config['workers']}x{config['threads']}"
    return "threaded, 1 process"


SERVER_NOTES = {
    "gunicorn": "gunicorn with gunicorn.conf.py (processes x threads, gthread)",
    "threaded": "Django's threaded WSGI server (runserver's) in one process, with TCP_NODELAY",
}


def verdict(mode: str, result: dict) -> str:
    """The p95 against E2E_P95: the issue's target for the closed loop, a reference for the paced clients."""
    if mode in ("solo", "ids"):
        return ""
    errors = sum(n for status, n in result["statuses"].items() if str(status) != "200")
    passed = result.get("p95", math.inf) <= E2E_P95 and not errors
    word = "PASS" if passed else "FAIL"
    return f"≤ {E2E_P95:g} {word}" + (" (the target)" if mode == "crowd" else " (reference)")


def fire_counting_cpu(server: Process, paths: list[str], headers: dict, **kwargs) -> dict:
    """fire(), plus the web server's CPU time per answer: what it costs, whatever else the machine runs."""
    before = server.cpu_seconds(live_children=True)
    result = fire(server.port, paths, headers, **kwargs)
    answered = sum(result["statuses"].values())
    return {**result, "server_cpu_ms": (server.cpu_seconds(live_children=True) - before) * 1000 / max(answered, 1)}


def measure_http(db: Database, searched: dict, workdir: Path, requests: int, server_name: str, stock: bool) -> dict:
    """The web app against `db`: the picker's HTML options and the JSON API, 20 clients, then one.

    With `stock`, also the HTML options on stock runserver, one client.
    """
    guild_id, queries = searched["guild_id"], searched["http_queries"]
    rng = random.Random(SEED)
    cookie = {"Cookie": f"sessionid={searched['session']}"}
    endpoints = {
        "HTML options": (f"/guilds/{guild_id}/members/options?q=", {**cookie, "HX-Request": "true"}),
        "JSON API": (f"/api/guilds/{guild_id}/members?limit=25&q=", {**cookie, "Accept": "application/json"}),
    }
    results: dict = {"server": server_label(server_name)}
    log = workdir / f"web-{db.backend}-{server_name}.log"
    server = Process(server_command(server_name), db.env, log, "/healthz")
    try:
        for name, (path, headers) in endpoints.items():
            probe = fire(server.port, [path + "ana"], headers, clients=1, warmup=0, cap=30)
            if probe["statuses"] != {200: 1}:
                results[name] = {"missing": f"GET {path}ana answered {probe['statuses']}"}
                say(f"  {name}: not measured, {results[name]['missing']}")
                continue
            paths = mixed_paths(path, queries, rng, requests + HTTP_WARMUP)
            crowd = fire_counting_cpu(server, paths, headers, clients=CLIENTS, warmup=HTTP_WARMUP, cap=HTTP_TIME_CAP)
            paths = mixed_paths(path, queries, rng, requests + HTTP_WARMUP)
            paced = fire_counting_cpu(
                server, paths, headers, clients=CLIENTS, warmup=HTTP_WARMUP, cap=HTTP_TIME_CAP, interval=PACE
            )
            paths = mixed_paths(path, queries, rng, requests // 5 + 20)
            solo = fire_counting_cpu(server, paths, headers, clients=1, warmup=20, cap=HTTP_TIME_CAP / 2)
            results[name] = {"crowd": crowd, "paced": paced, "solo": solo}
            if queries.get("id"):
                # The cheapest answer the picker gives (one row by its unique index), back to back:
                # what the request cycle alone allows on this machine, whatever the search costs.
                paths = mixed_paths(path, {"id": queries["id"]}, rng, requests + HTTP_WARMUP)
                results[name]["ids"] = fire_counting_cpu(
                    server, paths, headers, clients=CLIENTS, warmup=HTTP_WARMUP, cap=HTTP_TIME_CAP
                )
            say(
                f"  {name}, {results['server']}: {CLIENTS} clients back to back p50 {crowd['p50']:.1f} "
                f"p95 {crowd['p95']:.1f} ms "
                f"({crowd['per_second']:.0f} req/s, {crowd['statuses']}) {verdict('crowd', crowd)}; "
                f"{CLIENTS} paced p50 {paced['p50']:.1f} p95 {paced['p95']:.1f} ms ({paced['per_second']:.0f} req/s) "
                f"{verdict('paced', paced)}; 1 client p50 {solo['p50']:.1f} p95 {solo['p95']:.1f} ms "
                f"(load {solo['load']})"
            )
    finally:
        server.stop()
    # The same HTML endpoint on stock runserver, one client: what `manage.py runserver` users see.
    name, (path, headers) = "HTML options", endpoints["HTML options"]
    if stock and "solo" in results.get(name, {}):
        server = Process(
            [sys.executable, MANAGE, "runserver", "127.0.0.1:{port}", "--noreload"],
            db.env,
            workdir / f"runserver-{db.backend}.log",
            "/healthz",
        )
        try:
            paths = mixed_paths(path, queries, rng, requests // 10 + 10)
            results["runserver"] = fire(server.port, paths, headers, clients=1, warmup=10, cap=HTTP_TIME_CAP / 2)
            say(f"  stock runserver, HTML options, 1 client: p50 {results['runserver']['p50']:.1f} ms")
        finally:
            server.stop()
    return results


def measure_discord(workdir: Path, members: int, loads: int) -> dict:
    emulator = Process(
        [
            sys.executable,
            MANAGE,
            "emulator",
            "--port={port}",
            f"--seed={SEED}",
            f"--members={members}",
            "--channels=1",
            "--messages=10",
            "--profile=discord",
        ],
        base_env(),
        workdir / "emulator.log",
        "/_emulator/state",
    )
    try:
        with urllib.request.urlopen(emulator.url + "/_emulator/state", timeout=10) as response:  # noqa: S310
            guild_id = int(json.load(response)["guilds"][0]["id"])
        env = {**base_env(), "DATABASE_URL": f"sqlite:///{workdir / 'discord.sqlite3'}"}
        return run_worker(
            "discord", env, "--api-base", emulator.url + "/api/v10", "--guild", str(guild_id), "--loads", str(loads)
        )
    finally:
        emulator.stop()


# -- the report -----------------------------------------------------------------


def search_rows(runs: dict) -> list[list[str]]:
    rows = []
    for backend, run in runs.items():
        for kind, s in run["search"]["search"].items():
            target = SERVER_P95[backend] if kind in ("3 chars", "5+ chars", "3+ symbols") else None
            verdict = "" if target is None else ("PASS" if s["p95"] <= target else "FAIL")
            rows.append(
                [
                    backend,
                    kind,
                    str(s["n"]),
                    f"{s['p50']:.2f}",
                    f"{s['p95']:.2f}",
                    f"{s['max']:.1f}",
                    f"{s['empty_share']:.0%}",
                    f"≤ {target:g} {verdict}" if target else "",
                ]
            )
    return rows


def http_rows(runs: dict) -> list[list[str]]:
    rows = []
    for backend, run in runs.items():
        for served in run.get("http", []):
            rows += served_rows(backend, served)
    return rows


def served_rows(backend: str, served: dict) -> list[list[str]]:
    rows = []
    for name, result in served.items():
        if name in ("runserver", "server"):
            continue
        if "missing" in result:
            rows.append([backend, served["server"], name, "not in this checkout", *[""] * 8])
            continue
        modes = (
            ("crowd", f"{CLIENTS} back to back"),
            ("paced", f"{CLIENTS} paced"),
            ("solo", "1"),
            ("ids", f"{CLIENTS} back to back, ids only"),
        )
        for mode, label in modes:
            if mode not in result:
                continue
            r = result[mode]
            errors = sum(n for status, n in r["statuses"].items() if str(status) != "200")
            rows.append(
                [
                    backend,
                    served["server"],
                    name,
                    label,
                    f"{r['n']}{' (capped)' if r['capped'] else ''}",
                    f"{r['p50']:.1f}",
                    f"{r['p95']:.1f}",
                    f"{r['max']:.0f}",
                    f"{r['per_second']:.0f}",
                    f"{r['server_cpu_ms']:.1f}" if "server_cpu_ms" in r else "",
                    str(errors),
                    verdict(mode, r),
                ]
            )
    stock = served.get("runserver")
    if stock:
        rows.append(
            [
                backend,
                "stock runserver",
                "HTML options",
                "1",
                str(stock["n"]),
                f"{stock['p50']:.1f}",
                f"{stock['p95']:.1f}",
                f"{stock['max']:.0f}",
                f"{stock['per_second']:.0f}",
                "",
                "",
                "",
            ]
        )
    return rows


HTTP_HEADERS = [
    "db",
    "server",
    "endpoint",
    "clients",
    "requests",
    "p50",
    "p95",
    "max",
    "req/s",
    "server CPU",
    "errors",
    "p95 target",
]


def discord_lines(discord: dict, runs: dict, members: int) -> list[str]:
    loads = discord["loads"]
    first = loads[0]
    limit, per = DISCORD_BUCKET
    lines = [
        f"Page load that fetches the member list from Discord (discord.py, pages of {DISCORD_PAGE}, emulator "
        f"with Discord's members bucket {limit}/{per:g} s), {first['members']:,} members:",
        "",
    ]
    rows = [
        [
            str(n + 1),
            f"{r['members']:,}",
            str(r["requests"]),
            f"{r['login_seconds']:.2f}",
            f"{r['seconds']:.2f}",
        ]
        for n, r in enumerate(loads)
    ]
    lines += [table(["page load", "members", "requests", "login s", "total s"], rows), ""]
    requests_1m = math.ceil((1_000_000 + 1) / DISCORD_PAGE) + (1 if (1_000_000 + 1) % DISCORD_PAGE == 0 else 0)
    floor_1m = max(0, math.ceil(requests_1m / limit) - 1) * per
    lines += [
        f"A million members: {requests_1m:,} requests at {limit} per {per:g} s: the bucket alone holds one "
        f"page load {floor_1m:,.0f} s (~{floor_1m / 60:.0f} min), even with a fresh bucket; a second visitor "
        "in the meantime shares that bucket and waits longer. No page load can do it.",
        "",
    ]
    rows = []
    for backend, run in runs.items():
        html = run["http"][0].get("HTML options", {}) if run.get("http") else {}
        medians = [s["p50"] for kind, s in run["search"]["search"].items() if kind != "empty"]
        figures = []
        if medians:  # not with --skip-search
            figures.append(("server-side search p50 (median of classes)", percentile(medians, 0.5)))
        if "crowd" in html:
            figures += [
                ("HTML options p50, 1 client", html["solo"]["p50"]),
                (f"HTML options p50, {CLIENTS} paced clients", html["paced"]["p50"]),
                (f"HTML options p50, {CLIENTS} clients back to back", html["crowd"]["p50"]),
            ]
        for label, ms in figures:
            rows.append(
                [
                    backend,
                    f"{run['members']:,}",
                    label,
                    f"{ms:.1f} ms",
                    f"{first['seconds'] * 1000 / ms:,.0f}x",
                    f"{floor_1m * 1000 / ms:,.0f}x",
                ]
            )
    lines += [
        table(
            [
                "db",
                "cached members",
                "GuildHub answers",
                "p50",
                f"Discord {first['members'] // 1000}k page load / p50",
                "Discord 1M floor / p50",
            ],
            rows,
        )
    ]
    return lines


def server_side_lines(runs: dict) -> list[str]:
    return [
        f"Server side, search_members(guild, q, live_fallback=False), {QUERIES_PER_CLASS} queries per class after "
        f"{WARMUP_PER_CLASS} warm-up (fewer: {', '.join(f'{n} {k}' for k, n in SMALL_CLASSES.items())}), "
        "milliseconds; load average during "
        "the run: " + ", ".join(f"{backend} {run['search']['load']}" for backend, run in runs.items()) + ":",
        "",
        table(["db", "query", "n", "p50", "p95", "max", "no hit", "p95 target"], search_rows(runs)),
        "",
        "Slowest query per class: "
        + "; ".join(
            f"{backend} {kind} {s['slowest_query']!r}"
            for backend, run in runs.items()
            for kind, s in run["search"]["search"].items()
            if kind != "empty"
        ),
        "",
    ]


def report(runs: dict, discord: dict | None, started: float, args: argparse.Namespace) -> str:
    parts = [
        f"Member search benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
        f"load average (1/5/15 min) at the end {load()}, total {time.monotonic() - started:.0f} s"
        + (f", PostgreSQL shared_buffers {args.pg_shared_buffers}" if "postgres" in runs else "")
        + (
            f"; {args.other_guilds} other guilds cached beside the one searched, each with the same members"
            if args.other_guilds
            else ""
        ),
        "",
    ]
    fill_rows = []
    for backend, run in runs.items():
        f = run["fill"]
        fill_rows.append(
            [
                backend,
                f"{f['rows']:,}",
                f"{f['departed']:,}",
                f"{run['migrate_seconds']:.1f}",
                f"{f['fill_seconds']:.1f}",
                f"{f['rows'] / f['fill_seconds']:,.0f}",
                f"{f['analyze_seconds']:.1f}",
                f["load"],
            ]
        )
    parts += [
        "Fill (upsert_members, batches of 1000, one transaction each; then ANALYZE, on PostgreSQL VACUUM ANALYZE):",
        "",
        table(["db", "members", "departed", "migrate s", "fill s", "members/s", "analyze s", "load"], fill_rows),
        "",
    ]
    if search_rows(runs):
        parts += server_side_lines(runs)
    rows = http_rows(runs)
    if rows:
        servers = "; ".join(f"{name}: {SERVER_NOTES[name]}" for name in args.server)
        parts += [
            f"End to end, milliseconds (servers: {servers}), a logged-in session, mixed queries, keep-alive "
            f"loopback clients (asyncio, one thread): {CLIENTS} back to back (closed loop), {CLIENTS} paced (one "
            f"request per {PACE:g} s each, latency from the planned send), then 1; {HTTP_WARMUP} warm-up requests, "
            f"cap {HTTP_TIME_CAP:g} s each; server CPU: milliseconds of CPU the web server's processes spent per "
            "answer (from /proc, PostgreSQL's own not counted), which other jobs on the machine do not change:",
            "",
            table(HTTP_HEADERS, rows),
            "",
            f"The target, p95 ≤ {E2E_P95:g} ms under {CLIENTS} concurrent loopback clients (issue 4), is judged on "
            f"the back-to-back rows: {CLIENTS} clients that each always have a request in flight is what "
            f"{CLIENTS} concurrent clients means, and the most the server can be asked. The paced rows "
            f"({CLIENTS} people typing, {CLIENTS / PACE:g} requests/s offered) are held to the same {E2E_P95:g} ms "
            "for reference only: they are not the target. The ids-only rows send only user ids, the "
            "cheapest answer the picker gives (one row by its unique index): what the request cycle itself "
            f"(server, middleware, session, user, access, rendering) allows {CLIENTS} clients on this machine.",
            "",
        ]
    if discord:
        parts += discord_lines(discord, runs, args.members)
    return "\n".join(parts)


# -- main -------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="50k members, SQLite only (under 2 minutes)")
    parser.add_argument("--members", type=int, help="members in the guild (default 1,000,000; 50,000 with --quick)")
    parser.add_argument("--dbs", type=lambda text: text.split(","), help="sqlite,postgres")
    parser.add_argument("--requests", type=int, help=f"HTTP requests per endpoint and mode ({HTTP_REQUESTS:,})")
    parser.add_argument("--skip-http", action="store_true", help="no web server, server-side figures only")
    parser.add_argument(
        "--server",
        type=lambda text: text.split(","),
        default=["gunicorn"],
        help="gunicorn (gunicorn.conf.py, the production setup; the default), threaded (runserver's server in one "
        "process), or both: gunicorn,threaded",
    )
    parser.add_argument("--skip-discord", action="store_true", help="no page-load comparison")
    parser.add_argument(
        "--pg-shared-buffers",
        default=PG_SHARED_BUFFERS,
        help=f"PostgreSQL's shared_buffers ({PG_SHARED_BUFFERS}; PostgreSQL ships with 128MB)",
    )
    parser.add_argument(
        "--other-guilds",
        type=int,
        default=0,
        help="also cache this many other guilds, each a copy of the searched guild's members under its own id",
    )
    parser.add_argument("--skip-search", action="store_true", help="no server-side figures: the fill, then end to end")
    parser.add_argument("--explain", metavar="QUERY", help="after the fill, print the plans of this query's SQL")
    parser.add_argument("--json", type=Path, help="also write the raw figures to this file")
    parser.add_argument("--worker", choices=["fill", "search", "explain", "discord", "serve"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--api-base", help=argparse.SUPPRESS)
    parser.add_argument("--guild", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--loads", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--query", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.members = args.members or (50_000 if args.quick else 1_000_000)
    args.dbs = args.dbs or (["sqlite"] if args.quick else ["sqlite", "postgres"])
    args.requests = args.requests or (QUICK_REQUESTS if args.quick else HTTP_REQUESTS)
    if not set(args.server) <= set(SERVER_NOTES):
        parser.error(f"--server: {', '.join(SERVER_NOTES)} or both, comma-separated")
    return args


def run_worker_here(args: argparse.Namespace) -> None:
    if args.worker == "fill":
        print(json.dumps(worker_fill(args.members, args.other_guilds)))
    elif args.worker == "search":
        print(json.dumps(worker_search(args.members, timed=not args.skip_search)))
    elif args.worker == "serve":
        worker_serve(args.port)
    elif args.worker == "explain":
        print(json.dumps({"plan": worker_explain(args.query)}))
    else:
        print(json.dumps(worker_discord(args.api_base, args.guild, args.loads)))


def main() -> int:
    args = parse_args()
    if args.worker:
        run_worker_here(args)
        return 0
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="guildhub-bench-search-"))
    runs: dict = {}
    discord = None
    try:
        for backend in args.dbs:
            say(f"{backend}: migrating a fresh database (load {load()})")
            db = Database(backend, workdir, {"shared_buffers": args.pg_shared_buffers})
            try:
                run = runs[backend] = {"members": args.members, "migrate_seconds": db.migrate_seconds}
                members = str(args.members)
                others = ["--other-guilds", str(args.other_guilds)]
                fill_timeout = 1200 + 600 * args.other_guilds
                run["fill"] = run_worker("fill", db.env, "--members", members, *others, timeout=fill_timeout)
                f = run["fill"]
                say(
                    f"  filled {f['rows']:,} members in {f['fill_seconds']:.1f} s "
                    f"({f['rows'] / f['fill_seconds']:,.0f}/s), analyze {f['analyze_seconds']:.1f} s (load {f['load']})"
                )
                if f["other_guilds"]:
                    say(f"  copied them into {f['other_guilds']} other guilds in {f['copies_seconds']:.1f} s")
                skip = ["--skip-search"] if args.skip_search else []
                run["search"] = run_worker("search", db.env, "--members", members, *skip)
                for kind, s in run["search"]["search"].items():
                    say(
                        f"  {kind:>8}: p50 {s['p50']:6.2f} ms  p95 {s['p95']:6.2f} ms  max {s['max']:6.1f} ms  "
                        f"no hit {s['empty_share']:.0%}  slowest {s['slowest_query']!r}"
                    )
                say(f"  (load {run['search']['load']})")
                if args.explain is not None:
                    say(run_worker("explain", db.env, "--query", args.explain)["plan"])
                if not args.skip_http:
                    run["http"] = [
                        measure_http(db, run["search"], workdir, args.requests, server, stock=n == 0)
                        for n, server in enumerate(args.server)
                    ]
            finally:
                db.stop()
        if not args.skip_discord:
            loads = 1 if args.quick else 2
            say(f"Discord page load: {DISCORD_MEMBERS:,} members, {loads} load(s) (load {load()})")
            discord = measure_discord(workdir, DISCORD_MEMBERS, loads)
            for r in discord["loads"]:
                say(f"  {r['members']:,} members, {r['requests']} requests, {r['seconds']:.2f} s")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = report(runs, discord, started, args)
    print("\n" + text)
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "discord": discord}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
