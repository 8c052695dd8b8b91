"""Project-wide tables: the shared rate-limit budget, the bot's heartbeat."""

from __future__ import annotations

from datetime import timedelta

from django.db import models
from django.utils import timezone


class RateLimitBucket(models.Model):
    """A shared rate-limit window or block, keyed per bot token and bucket.

    Every process using one bot token reads and writes these rows before each
    Discord request, so adding workers never adds 429s.
    """

    key = models.CharField(max_length=200, primary_key=True)
    # A sliding log (times of the requests in the last window), not a fixed
    # window: a fixed window lets twice the limit through across its edge.
    stamps = models.JSONField(default=list, help_text="epoch seconds of the requests in the current window")
    blocked_until = models.FloatField(default=0.0, help_text="epoch seconds; no request before this")

    def __str__(self) -> str:
        return self.key


class BotHeartbeat(models.Model):
    """The gateway bot's last sign of life, one row per shard (see `guildhub.heartbeat`)."""

    shard_id = models.PositiveIntegerField(primary_key=True)
    seen_at = models.DateTimeField(default=timezone.now)
    latency_ms = models.PositiveIntegerField(null=True, blank=True, help_text="gateway heartbeat round trip")
    guild_count = models.PositiveIntegerField(default=0)
    session = models.CharField(max_length=100, blank=True, default="", help_text="gateway session id")

    class Meta:
        ordering = ["shard_id"]

    def __str__(self) -> str:
        return f"shard {self.shard_id}"

    def age(self, now=None) -> timedelta:
        return (now or timezone.now()) - self.seen_at
