"""`manage.py runbot` refuses to start without what it needs, and says why."""

import pytest
from django.core.management import CommandError, call_command
from pytest_django import Settings


def test_runbot_without_a_token_stops_with_a_clear_message(settings: Settings) -> None:
    settings.DISCORD_TOKEN = ""

    with pytest.raises(CommandError, match="DISCORD_TOKEN is not set"):
        call_command("runbot")
