"""Project-wide tables: the rate-limit budget every process shares."""

from django.db import models


class RateLimitBucket(models.Model):
    """A shared rate-limit window or block, keyed per bot token and bucket.

    Every process using one bot token reads and writes these rows before each
    Discord request, so adding workers never adds 429s.
    """

    key = models.CharField(max_length=200, primary_key=True)
    window_start = models.FloatField(default=0.0, help_text="epoch seconds")
    used = models.PositiveIntegerField(default=0)
    blocked_until = models.FloatField(default=0.0, help_text="epoch seconds; no request before this")

    def __str__(self) -> str:
        return self.key
