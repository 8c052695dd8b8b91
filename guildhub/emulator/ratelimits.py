"""Discord's rate limits: per-route buckets keyed by major parameter, a global limit
per bot token, and the invalid-request counter that ends in a temporary ban.

Numbers follow FACTS.md (Discord publishes none for most routes); every one is
configurable through a profile, and the `fast` profile keeps the same bucket
sizes with shorter windows so tests exercise exhaustion without waiting.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from dataclasses import dataclass, field, replace

from aiohttp import web


@dataclass(frozen=True)
class BucketRule:
    limit: int
    per: float  # seconds

    @classmethod
    def parse(cls, text: str) -> BucketRule:
        """`"5/5"` → 5 requests per 5 seconds."""
        limit, _, per = text.partition("/")
        return cls(int(limit), float(per))


@dataclass(frozen=True)
class Profile:
    name: str
    global_per_second: int | None
    default: BucketRule | None
    buckets: dict[str, BucketRule] = field(default_factory=dict)
    invalid_limit: int = 10_000
    invalid_window: float = 600.0

    def rule(self, bucket: str) -> BucketRule | None:
        return self.buckets.get(bucket, self.default)

    def with_buckets(self, overrides: dict[str, BucketRule]) -> Profile:
        return replace(self, buckets={**self.buckets, **overrides})


DISCORD_BUCKETS = {
    "messages": BucketRule(5, 5.0),
    "members_list": BucketRule(10, 10.0),
    "members_search": BucketRule(10, 10.0),
    "member_roles": BucketRule(10, 10.0),
    "member_patch": BucketRule(10, 10.0),
    "commands": BucketRule(5, 20.0),
    "interaction_callback": BucketRule(50, 1.0),
    "webhook": BucketRule(5, 2.0),
}

PROFILES = {
    "discord": Profile("discord", 50, BucketRule(5, 5.0), DISCORD_BUCKETS),
    # Same bucket sizes, windows 50 times shorter.
    "fast": Profile(
        "fast",
        1000,
        BucketRule(5, 0.1),
        {name: BucketRule(rule.limit, rule.per / 50) for name, rule in DISCORD_BUCKETS.items()},
    ),
    "off": Profile("off", None, None),
}

# Discord exempts interaction responses from the global limit.
GLOBAL_EXEMPT = {"interaction_callback"}


def bucket_hash(bucket: str) -> str:
    """An opaque id shared by the routes of one bucket, like Discord's."""
    return hashlib.sha1(bucket.encode(), usedforsecurity=False).hexdigest()[:32]


@dataclass
class Decision:
    allowed: bool
    headers: dict[str, str]
    retry_after: float = 0.0
    is_global: bool = False


@dataclass
class _Window:
    reset_at: float
    used: int = 0


class RateLimiter:
    """Decides, per request, whether a bucket or the global limit is exhausted."""

    def __init__(self, profile: Profile, clock=time.monotonic, wall=time.time) -> None:
        self.profile = profile
        self.clock = clock
        self.wall = wall
        self._windows: dict[tuple, _Window] = {}
        self._global: dict[str, deque[float]] = {}
        self._invalid: dict[str, deque[float]] = {}

    def set_profile(self, profile: Profile) -> None:
        self.profile = profile
        self._windows.clear()
        self._global.clear()

    def check(self, *, token: str, bucket: str, major: str) -> Decision:
        now = self.clock()
        if bucket not in GLOBAL_EXEMPT and self.profile.global_per_second:
            stamps = self._global.setdefault(token, deque())
            while stamps and stamps[0] <= now - 1.0:
                stamps.popleft()
            if len(stamps) >= self.profile.global_per_second:
                retry = max(0.001, stamps[0] + 1.0 - now)
                return Decision(
                    False,
                    {
                        "X-RateLimit-Global": "true",
                        "X-RateLimit-Scope": "global",
                        "Retry-After": str(math.ceil(retry)),
                    },
                    retry_after=round(retry, 3),
                    is_global=True,
                )
            stamps.append(now)

        rule = self.profile.rule(bucket)
        if rule is None:
            return Decision(True, {})
        key = (token, bucket, major)
        window = self._windows.get(key)
        if window is None or window.reset_at <= now:
            window = self._windows[key] = _Window(reset_at=now + rule.per)
        reset_after = max(0.0, window.reset_at - now)
        # Round up so a client that sleeps exactly `reset_after` arrives after the reset.
        reset_after_text = f"{math.ceil(reset_after * 1000) / 1000:.3f}"
        headers = {
            "X-RateLimit-Limit": str(rule.limit),
            "X-RateLimit-Reset": f"{self.wall() + reset_after:.3f}",
            "X-RateLimit-Reset-After": reset_after_text,
            "X-RateLimit-Bucket": bucket_hash(bucket),
        }
        if window.used >= rule.limit:
            headers.update(
                {
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Scope": "user",
                    "Retry-After": str(math.ceil(reset_after)),
                }
            )
            return Decision(False, headers, retry_after=float(reset_after_text))
        window.used += 1
        headers["X-RateLimit-Remaining"] = str(rule.limit - window.used)
        return Decision(True, headers)

    def record_invalid(self, ip: str) -> None:
        """Count a 401, 403 or non-shared 429 against the client's address."""
        self._invalid.setdefault(ip, deque()).append(self.clock())

    def is_banned(self, ip: str) -> float:
        """Seconds left in a temporary ban for too many invalid requests, or 0."""
        stamps = self._invalid.get(ip)
        if not stamps:
            return 0.0
        now = self.clock()
        while stamps and stamps[0] <= now - self.profile.invalid_window:
            stamps.popleft()
        if len(stamps) >= self.profile.invalid_limit:
            return stamps[0] + self.profile.invalid_window - now
        return 0.0

    def reset(self) -> None:
        self._windows.clear()
        self._global.clear()
        self._invalid.clear()


LIMITER_KEY = web.AppKey("limiter", RateLimiter)
