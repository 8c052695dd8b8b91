"""`manage.py emulator`: run the Discord API emulator in the foreground."""

import asyncio
import contextlib

from django.core.management.base import BaseCommand, CommandError, CommandParser

from guildhub.emulator.app import EmulatorOptions
from guildhub.emulator.ratelimits import PROFILES, BucketRule
from guildhub.emulator.server import EmulatorServer, serve_forever
from guildhub.emulator.state import GuildSpec, World


class Command(BaseCommand):
    help = "Run the Discord API emulator (REST v10, rate limits, gateway, control API) on loopback."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8765)
        parser.add_argument("--seed", type=int, default=42, help="same seed, same guilds, members and messages")
        parser.add_argument(
            "--members",
            default="3000",
            help="members per guild; comma-separated for several guilds, e.g. 3000,250,1000000",
        )
        parser.add_argument("--channels", type=int, default=8, help="text channels per guild")
        parser.add_argument("--messages", type=int, default=400, help="messages in the busiest channel")
        parser.add_argument("--roles", type=int, default=8, help="roles per guild besides @everyone and the bot's")
        parser.add_argument("--profile", choices=sorted(PROFILES), default="discord", help="rate-limit profile")
        parser.add_argument(
            "--bucket",
            action="append",
            default=[],
            metavar="NAME=LIMIT/SECONDS",
            help="override one bucket, e.g. messages=5/5 (repeatable)",
        )
        parser.add_argument("--token", default=None, help="accept only this bot token (any token when unset)")
        parser.add_argument("--no-members-intent", action="store_true", help="act as if the intent is off")
        parser.add_argument("--heartbeat-ms", type=int, default=41_250)
        parser.add_argument(
            "--member-request-interval",
            type=float,
            default=None,
            help="seconds between full member-list requests per guild (default: 30 with --profile discord)",
        )
        parser.add_argument(
            "--member-json",
            action="store_true",
            help="encode the generated members once at start and serve member lists from that "
            "(about 9 s and 85 MB per million members): what the benchmarks use",
        )

    def handle(self, *args, **options) -> None:
        try:
            sizes = [int(part) for part in str(options["members"]).split(",") if part.strip()]
        except ValueError:
            raise CommandError("--members takes numbers, e.g. 3000 or 3000,250") from None
        if not sizes or any(not 0 <= size <= 1_000_000 for size in sizes):
            raise CommandError("--members: each guild holds 0 to 1,000,000 members")
        try:
            overrides = dict(self.parse_bucket(text) for text in options["bucket"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        profile = PROFILES[options["profile"]].with_buckets(overrides)
        interval = options["member_request_interval"]
        if interval is None:
            interval = 30.0 if options["profile"] == "discord" else 0.0
        world = World(
            seed=options["seed"],
            guilds=[
                GuildSpec(
                    members=size,
                    channels=options["channels"],
                    messages=options["messages"],
                    roles=options["roles"],
                )
                for size in sizes
            ],
            members_intent=not options["no_members_intent"],
            member_json=options["member_json"],
        )
        server = EmulatorServer(
            world,
            host=options["host"],
            port=options["port"],
            profile=profile,
            options=EmulatorOptions(
                token=options["token"],
                heartbeat_interval_ms=options["heartbeat_ms"],
                member_request_interval=interval,
            ),
        )

        def ready(server: EmulatorServer) -> None:
            for guild in world.guilds.values():
                self.stdout.write(f"  guild {guild.id} {guild.name!r}: {guild.member_count} members")
            self.stdout.write(f"Emulator listening on {server.url}")
            self.stdout.write(f"  DISCORD_API_BASE={server.api_base}")
            self.stdout.flush()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_forever(server, ready))

    @staticmethod
    def parse_bucket(text: str) -> tuple[str, BucketRule]:
        name, _, rule = text.partition("=")
        try:
            return name.strip(), BucketRule.parse(rule)
        except ValueError:
            raise ValueError(f"--bucket {text!r}: expected NAME=LIMIT/SECONDS, e.g. messages=5/5") from None
