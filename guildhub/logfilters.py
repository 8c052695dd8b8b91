"""Logging filters that keep secrets out of every log line."""

import logging

from django.conf import settings

REDACTED = "[redacted]"


class RedactSecretsFilter(logging.Filter):
    """Replace the bot token and the secret key wherever they appear in a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = [s for s in (settings.DISCORD_TOKEN, settings.SECRET_KEY) if s and len(s) >= 8]
        if not secrets:
            return True
        message = record.getMessage()
        if any(secret in message for secret in secrets):
            for secret in secrets:
                message = message.replace(secret, REDACTED)
            record.msg, record.args = message, None
        return True
