"""`manage.py demo`: GuildHub and a Discord emulator on this machine, with one command.

Migrates, makes sure a demo superuser exists, then runs the emulator, the
django-q2 cluster, the bot and the web server as child processes until Ctrl-C
or SIGTERM. `--smoke` checks that everything answers, then stops (for tests).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from types import FrameType
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections

from guildhub.supervisor import ChildFailed, Supervisor

DEMO_USERNAME = "admin"
DEFAULT_DEMO_PASSWORD = "guildhub-demo"  # noqa: S105 - the documented demo login, printed on start
DEMO_TOKEN = "demo-token"  # noqa: S105 - the emulator accepts any token
EMULATOR_WORLD = ["--seed", "42", "--members", "3000", "--channels", "8", "--messages", "400", "--profile", "discord"]
EMULATOR_READY = r"Emulator listening on (?P<url>http://\S+?)/?$"
READY_TIMEOUT = 120.0
# How long --smoke keeps watching after the checks: long enough for a bot or worker
# that fails at start-up (bad settings, missing tables) to have died.
SMOKE_SETTLE_SECONDS = 3.0


class StopRequested(Exception):
    """SIGINT or SIGTERM arrived: stop the children and exit 0."""


class Command(BaseCommand):
    help = "Run GuildHub with a Discord emulator: web server, worker cluster and bot, until Ctrl-C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--web-port", type=int, default=8000, help="port of the web server (default 8000)")
        parser.add_argument("--emulator-port", type=int, default=8765, help="port of the emulator (default 8765)")
        parser.add_argument(
            "--no-emulator",
            action="store_true",
            help="talk to real Discord (or DISCORD_API_BASE) with DISCORD_TOKEN instead of starting the emulator",
        )
        parser.add_argument(
            "--smoke",
            action="store_true",
            help="start everything, check that the pages and the emulator answer, stop, exit 0",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["no_emulator"] and not settings.DISCORD_TOKEN:
            raise CommandError("--no-emulator needs DISCORD_TOKEN: put the bot token in the environment or .env")
        previous_handlers = {signum: signal.signal(signum, _request_stop) for signum in (signal.SIGINT, signal.SIGTERM)}
        supervisor = Supervisor(self.say, cwd=settings.BASE_DIR, env=self.child_environment(options))
        try:
            self.prepare_database()
            login = self.ensure_demo_superuser()
            web_url = self.start_everything(supervisor, options)
            self.say(f"GuildHub is running at {web_url}")
            self.say(f"Log in at {web_url}admin/ as {login}")
            if options["smoke"]:
                self.smoke_test(supervisor, web_url, emulator=not options["no_emulator"])
                return
            self.say("Press Ctrl-C to stop.")
            supervisor.watch()
        except StopRequested:
            self.say("Stop requested.")
        except ChildFailed as exc:
            raise CommandError(f"{exc}; stopped the others") from None
        finally:
            # A second Ctrl-C must not cut the shutdown short and leave children behind.
            for signum in previous_handlers:
                signal.signal(signum, signal.SIG_IGN)
            supervisor.stop_all()
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def say(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def child_environment(self, options: dict[str, Any]) -> dict[str, str]:
        env = {**os.environ, "DEBUG": "1"}
        if not options["no_emulator"]:
            # Set now so that the emulator, which any token passes, never sees a real
            # token by accident: the user's own wins only when they set one.
            env["DISCORD_TOKEN"] = settings.DISCORD_TOKEN or DEMO_TOKEN
        return env

    def prepare_database(self) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self.say(f"Database ready: {settings.DATABASES['default']['NAME']}")

    def ensure_demo_superuser(self) -> str:
        """Create or update the demo superuser; the login text to print."""
        password = os.environ.get("DEMO_PASSWORD") or DEFAULT_DEMO_PASSWORD
        user, _created = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        # The children write to the same database; SQLite prefers we let go of it.
        connections.close_all()
        shown = "the password in DEMO_PASSWORD" if os.environ.get("DEMO_PASSWORD") else password
        return f"{DEMO_USERNAME} / {shown}"

    def start_everything(self, supervisor: Supervisor, options: dict[str, Any]) -> str:
        """Start the children in dependency order; the web server's URL once it answers."""
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        if not options["no_emulator"]:
            emulator = supervisor.start(
                "emulator",
                [*manage, "emulator", "--host", "127.0.0.1", "--port", str(options["emulator_port"]), *EMULATOR_WORLD],
                ready_pattern=EMULATOR_READY,
            )
            emulator_url = supervisor.wait_ready(emulator, READY_TIMEOUT)["url"]
            # The printed URL, not the option: it is right even for --emulator-port 0.
            supervisor.env["DISCORD_API_BASE"] = f"{emulator_url}/api/v10"
        supervisor.start("qcluster", [*manage, "qcluster"])
        supervisor.start("bot", [*manage, "runbot"])
        web_url = f"http://127.0.0.1:{options['web_port']}/"
        supervisor.start("web", [*manage, "runserver", f"127.0.0.1:{options['web_port']}", "--noreload"])
        supervisor.wait_until(lambda: _answers(f"{web_url}healthz"), what="the web server answering", timeout=60)
        return web_url

    def smoke_test(self, supervisor: Supervisor, web_url: str, *, emulator: bool) -> None:
        """Fail unless the home page, /healthz and the emulator answer and every child keeps running."""
        if not _answers(web_url, containing="GuildHub"):
            raise CommandError(f"smoke test: {web_url} did not answer 200 with the home page")
        health = _get_json(f"{web_url}healthz")
        if health.get("status") != "ok":
            raise CommandError(f"smoke test: /healthz says {health}")
        if emulator:
            api_base = supervisor.env["DISCORD_API_BASE"]
            gateway = _get_json(f"{api_base}/gateway/bot", token=supervisor.env["DISCORD_TOKEN"])
            if not str(gateway.get("url", "")).startswith(("ws://", "wss://")):
                raise CommandError(f"smoke test: the emulator's /gateway/bot answered {gateway}")
        settled = time.monotonic() + SMOKE_SETTLE_SECONDS
        supervisor.wait_until(lambda: time.monotonic() > settled, what="settling", timeout=SMOKE_SETTLE_SECONDS + 5)
        checked = "the home page, /healthz and the emulator" if emulator else "the home page and /healthz"
        self.say(f"Smoke test passed: {checked} answer, and every process is still running.")


def _request_stop(signum: int, frame: FrameType | None) -> None:
    raise StopRequested(signal.Signals(signum).name)


def _answers(url: str, *, containing: str | None = None) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own loopback URL
            body = response.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return False
    return response.status == 200 and (containing is None or containing in body)


def _get_json(url: str, *, token: str | None = None) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bot {token}"} if token else {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - our own loopback URL
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise CommandError(f"smoke test: {url} did not answer with JSON: {exc}") from None
