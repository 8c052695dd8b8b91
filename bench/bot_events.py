"""Live member events: how long from Discord's gateway event to the row in GuildHub's cache.

The emulator runs in its own process (`manage.py emulator`); this process runs
the real bot (GuildHubBot) on a fresh SQLite database. For each of N members it
changes the nickname through the emulator's control API (which dispatches
GUILD_MEMBER_UPDATE), then polls the database until the row shows it; joins and
leaves are measured the same way. Bounded: N events per kind, 30 s cap each.

    .venv/bin/python bench/bot_events.py [--events 100]

Target (issue 3): the cache reflects an event within a second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from figures import percentile  # bench/ is on sys.path when a benchmark runs
from processes import free_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def control(base: str, method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}/_emulator{path}", data=data, method=method)  # noqa: S310 (loopback)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback emulator)
        return json.loads(response.read())


def start_emulator(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "emulator",
            "--port",
            str(port),
            "--members",
            "2000",
            "--channels",
            "1",
            "--messages",
            "10",
            "--profile",
            "fast",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    for line in process.stdout:
        if "Emulator listening" in line:
            return process
    raise RuntimeError("the emulator did not start")


async def measure(base: str, guild_id: int, user_ids: list[int], events: int) -> dict[str, list[float]]:
    from asgiref.sync import sync_to_async

    from guildhub.bot.client import GuildHubBot
    from guildhub.discord.clients import build_gateway_client
    from members.models import Member
    from syncjobs.models import SyncJob

    async def until(check, cap: float = 30.0) -> None:
        deadline = time.monotonic() + cap
        while not await sync_to_async(check)():
            if time.monotonic() > deadline:
                raise TimeoutError("the cache did not change within 30 s")
            await asyncio.sleep(0.002)

    bot = build_gateway_client(GuildHubBot)
    runner = asyncio.create_task(bot.start(os.environ["DISCORD_TOKEN"]))
    timings: dict[str, list[float]] = {"update": [], "join": [], "leave": []}
    try:
        await asyncio.wait_for(bot.wait_until_ready(), 30)
        await until(lambda: SyncJob.objects.filter(guild_id=guild_id, status="succeeded").exists(), 60)
        for i, user_id in enumerate(user_ids[:events]):
            nick = f"bench nick {i}"
            started = time.perf_counter()
            await asyncio.to_thread(control, base, "PATCH", f"/guilds/{guild_id}/members/{user_id}", {"nick": nick})
            await until(lambda u=user_id, n=nick: Member.objects.filter(guild_id=guild_id, user_id=u, nick=n).exists())
            timings["update"].append(time.perf_counter() - started)
        for i in range(events):
            username = f"bench_joiner_{i}"
            started = time.perf_counter()
            joined = await asyncio.to_thread(
                control, base, "POST", f"/guilds/{guild_id}/members", {"username": username}
            )
            await until(lambda n=username: Member.objects.filter(guild_id=guild_id, username=n).exists())
            timings["join"].append(time.perf_counter() - started)
            started = time.perf_counter()
            user_id = int(joined["user"]["id"])
            await asyncio.to_thread(control, base, "DELETE", f"/guilds/{guild_id}/members/{user_id}")
            await until(lambda u=user_id: Member.objects.filter(user_id=u, departed_at__isnull=False).exists())
            timings["leave"].append(time.perf_counter() - started)
    finally:
        await bot.close()
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100, help="events per kind (update, join, leave)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="guildhub-bench-events-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="guildhub.settings",
        DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}",
        DISCORD_TOKEN="bench-token",  # noqa: S106 (the emulator accepts any token)
        DISCORD_API_BASE=f"{base}/api/v10",
        LOG_LEVEL="WARNING",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    emulator = start_emulator(port)
    try:
        state = control(base, "GET", "/state")
        guild_id = int(state["guilds"][0]["id"])
        from guildhub.emulator.generator import user_id
        from guildhub.emulator.state import World

        world = World(seed=42)  # same seed as the emulator's default: the same member ids
        guild = world.guilds[guild_id]
        user_ids = [user_id(i, guild.seed) for i in range(1, args.events + 1)]
        from guildhub.discord.clients import run_async

        timings = run_async(measure(base, guild_id, user_ids, args.events))
    finally:
        emulator.terminate()
        emulator.wait(10)
    print(f"{'event':8} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}   target: within 1000 ms")
    for kind, values in timings.items():
        ms = [v * 1000 for v in values]
        verdict = "pass" if percentile(ms, 0.95) < 1000 else "FAIL"
        p50, p95 = statistics.median(ms), percentile(ms, 0.95)
        print(f"{kind:8} {len(ms):>5} {p50:>8.1f} {p95:>8.1f} {max(ms):>8.1f}   {verdict}")


if __name__ == "__main__":
    main()
