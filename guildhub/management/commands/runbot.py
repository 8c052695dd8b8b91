"""`manage.py runbot`: the Discord gateway bot, until SIGINT or SIGTERM."""

from django.core.management.base import BaseCommand, CommandError

from guildhub.bot.runner import run_bot
from guildhub.discord.errors import DiscordError


class Command(BaseCommand):
    help = "Connect the bot to the Discord gateway and run until SIGINT or SIGTERM (exit 0)."

    def handle(self, *args: object, **options: object) -> None:
        try:
            run_bot()
        except DiscordError as exc:
            raise CommandError(str(exc)) from exc
