"""Secrets never reach a log line."""

import logging

from pytest_django import Settings

from guildhub.logfilters import REDACTED, RedactSecretsFilter

TOKEN = "MTE2NjQ0.fake-bot-token.Zm9vYmFyYmF6"


def record(msg: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("guildhub.test", logging.INFO, __file__, 1, msg, args, None)


def test_discord_token_in_the_message_is_redacted(settings: Settings) -> None:
    settings.DISCORD_TOKEN = TOKEN
    log_record = record(f"login with Bot {TOKEN} failed")

    RedactSecretsFilter().filter(log_record)

    assert log_record.getMessage() == f"login with Bot {REDACTED} failed"


def test_discord_token_in_the_arguments_is_redacted(settings: Settings) -> None:
    settings.DISCORD_TOKEN = TOKEN
    log_record = record("headers: %r", {"Authorization": f"Bot {TOKEN}"})

    RedactSecretsFilter().filter(log_record)

    assert TOKEN not in log_record.getMessage()
    assert REDACTED in log_record.getMessage()


def test_console_handler_carries_the_filter() -> None:
    handler_filters = [f for handler in logging.getLogger().handlers for f in handler.filters]

    assert any(isinstance(f, RedactSecretsFilter) for f in handler_filters)
