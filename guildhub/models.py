"""Project-wide tables: the shared rate-limit budget, the bot's heartbeat, API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
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


class ApiTokenQuerySet(models.QuerySet):
    def authenticate(self, plain: str) -> ApiToken | None:
        """The active token whose key is `plain` (its user active too), or None."""
        if not plain or len(plain) > 200:
            return None
        return self.select_related("user").filter(key_hash=ApiToken.hash(plain), user__is_active=True).first()


class ApiToken(models.Model):
    """A key for the JSON APIs (`Authorization: Bearer <key>`), acting as its user.

    Only the key's SHA-256 is stored: the plain key is shown once, when it is made.
    """

    PREFIX = "gh_"
    # Writing last_used_at on every request would turn each API read into a write.
    LAST_USED_RESOLUTION = timedelta(minutes=1)

    name = models.CharField(max_length=100, help_text="what uses it, e.g. 'grafana'")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_prefix = models.CharField(max_length=12, editable=False, help_text="the key's first characters")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @staticmethod
    def hash(plain: str) -> str:
        # A random 256-bit key needs no slow password hash: SHA-256 cannot be brute-forced back.
        return hashlib.sha256(plain.encode()).hexdigest()

    def set_new_key(self) -> str:
        """Give the token a fresh random key; returns the plain key, which is not stored."""
        plain = self.PREFIX + secrets.token_urlsafe(32)
        self.key_hash = self.hash(plain)
        self.key_prefix = plain[:10]
        return plain

    def touch(self, now=None) -> None:
        """Record a use, at most once per LAST_USED_RESOLUTION."""
        now = now or timezone.now()
        ApiToken.objects.filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - self.LAST_USED_RESOLUTION), pk=self.pk
        ).update(last_used_at=now)
