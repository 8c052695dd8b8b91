"""Project-wide tables: the rate-limit budget every process shares."""

from django.db import models


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
