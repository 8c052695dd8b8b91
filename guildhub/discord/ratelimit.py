"""The rate-limit budget shared by every process that uses one bot token.

discord.py already learns Discord's buckets from the headers, but only inside
one process. This layer sits on top, through aiohttp's request tracing (a public
discord.py option): before each request it takes a slot from the global budget
and waits out any bucket another process saw exhausted; after each response it
records what the headers say. The store is the database by default and Redis
when REDIS_URL is set.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import random
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import IntegrityError, transaction

from guildhub.models import RateLimitBucket

_ID = re.compile(r"^\d{15,21}$")
_MAJOR = {"guilds", "channels", "webhooks"}


def bucket_key(method: str, path: str) -> str:
    """Route plus major parameter, like Discord's buckets: `GET guilds/1/members`."""
    parts = [p for p in path.split("/") if p][2:] if path.startswith("/api/") else [p for p in path.split("/") if p]
    out = []
    for index, part in enumerate(parts):
        major = index > 0 and parts[index - 1] in _MAJOR and index == 1
        out.append(part if major or not _ID.match(part) else "{id}")
    return f"{method} {'/'.join(out)}"


def token_fingerprint(token: str) -> str:
    # Keys name the token without storing it.
    return hashlib.sha256(token.encode()).hexdigest()[:16]


@dataclass
class RequestStats:
    """What one job's Discord traffic cost; read by the job's progress."""

    api_calls: int = 0
    rate_limit_hits: int = 0
    server_errors: int = 0
    waited: float = 0.0
    by_status: dict[int, int] = field(default_factory=dict)


current_stats: contextvars.ContextVar[RequestStats | None] = contextvars.ContextVar("current_stats", default=None)


class RateLimitStore(Protocol):
    def take(self, key: str, limit: int, per: float, now: float) -> float: ...
    def block(self, key: str, until: float) -> None: ...
    def blocked_for(self, key: str, now: float) -> float: ...


class DatabaseStore:
    """Sliding logs and blocks in the RateLimitBucket table, one short transaction each."""

    def take(self, key: str, limit: int, per: float, now: float) -> float:
        """Take one of `limit` slots per `per` seconds (sliding); return 0, or seconds to wait."""
        with transaction.atomic():
            row = RateLimitBucket.objects.select_for_update().filter(key=key).first()
            if row is None:
                try:
                    with transaction.atomic():
                        RateLimitBucket.objects.create(key=key, stamps=[now])
                    return 0.0
                except IntegrityError:  # another process created it first
                    row = RateLimitBucket.objects.select_for_update().get(key=key)
            if row.blocked_until > now:
                return row.blocked_until - now
            stamps = [t for t in row.stamps if t > now - per]
            if len(stamps) >= limit:
                return stamps[0] + per - now
            row.stamps = [*stamps, now]
            row.save(update_fields=["stamps"])
            return 0.0

    def block(self, key: str, until: float) -> None:
        updated = RateLimitBucket.objects.filter(key=key, blocked_until__lt=until).update(blocked_until=until)
        if not updated:
            RateLimitBucket.objects.get_or_create(key=key, defaults={"blocked_until": until})

    def blocked_for(self, key: str, now: float) -> float:
        until = RateLimitBucket.objects.filter(key=key).values_list("blocked_until", flat=True).first()
        return max(0.0, (until or 0.0) - now)


# Atomic in Redis: drop stamps older than the window, then take a slot or report the wait.
SLIDING_LOG = """
local key, now, per, limit, member = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - per)
if redis.call('ZCARD', key) < limit then
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, math.ceil(per * 1000) + 1000)
  return '0'
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + per - now)
"""

# Atomic in Redis: a block only ever grows.
BLOCK = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local until_ = tonumber(ARGV[1])
if until_ > current then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', math.max(1, math.ceil((until_ - tonumber(ARGV[2])) * 1000) + 1000))
end
return 1
"""


class RedisStore:
    """Sliding logs and blocks in Redis, shared by every process on every machine."""

    def __init__(self, url: str) -> None:
        import redis

        self.redis = redis.Redis.from_url(url)
        self._take = self.redis.register_script(SLIDING_LOG)
        self._block = self.redis.register_script(BLOCK)

    def take(self, key: str, limit: int, per: float, now: float) -> float:
        blocked = self.blocked_for(key, now)
        if blocked:
            return blocked
        member = f"{now:.6f}:{uuid.uuid4().hex[:8]}"
        return float(self._take(keys=[f"guildhub:rl:{key}"], args=[now, per, limit, member]))

    def block(self, key: str, until: float) -> None:
        self._block(keys=[f"guildhub:rl-block:{key}"], args=[until, time.time()])

    def blocked_for(self, key: str, now: float) -> float:
        until = self.redis.get(f"guildhub:rl-block:{key}")
        return max(0.0, float(until) - now) if until else 0.0


def default_store() -> RateLimitStore:
    return RedisStore(settings.REDIS_URL) if settings.REDIS_URL else DatabaseStore()


class SharedRateLimiter:
    """Global budget per token plus bucket blocks learnt by any process."""

    def __init__(
        self,
        token: str,
        *,
        store: RateLimitStore | None = None,
        global_per_second: int | None = None,
        clock=time.time,
    ) -> None:
        self.fingerprint = token_fingerprint(token)
        self.store = store or default_store()
        self.global_per_second = global_per_second or settings.DISCORD_GLOBAL_RATE_LIMIT
        self.clock = clock

    async def acquire(self, method: str, path: str) -> float:
        """Wait until a request may go; returns the seconds waited."""
        waited = 0.0
        bucket = f"{self.fingerprint}:{bucket_key(method, path)}"
        while True:
            now = self.clock()
            wait = await sync_to_async(self.store.blocked_for)(bucket, now)
            if not wait:
                wait = await sync_to_async(self.store.take)(
                    f"{self.fingerprint}:global", self.global_per_second, 1.0, now
                )
            if not wait:
                return waited
            # A little jitter so waiting processes do not all wake at once.
            wait += random.uniform(0, 0.05)
            waited += wait
            await asyncio.sleep(wait)

    async def observe(self, method: str, path: str, status: int, headers) -> None:
        """Record what a response says about the bucket (and the global limit)."""
        now = self.clock()
        bucket = f"{self.fingerprint}:{bucket_key(method, path)}"
        if status == 429:
            retry_after = _float(headers.get("Retry-After")) or 1.0
            if headers.get("X-RateLimit-Global", "").lower() == "true":
                await sync_to_async(self.store.block)(f"{self.fingerprint}:global", now + retry_after)
            elif headers.get("X-RateLimit-Scope") != "shared":
                await sync_to_async(self.store.block)(bucket, now + retry_after)
            return
        if headers.get("X-RateLimit-Remaining") == "0":
            reset_after = _float(headers.get("X-RateLimit-Reset-After"))
            if reset_after:
                await sync_to_async(self.store.block)(bucket, now + reset_after)

    def trace_config(self) -> aiohttp.TraceConfig:
        """aiohttp tracing hooks that apply this limiter and count per-job stats."""
        trace = aiohttp.TraceConfig()
        limiter = self

        async def on_start(session, context, params) -> None:
            waited = await limiter.acquire(params.method, params.url.path)
            stats = current_stats.get()
            if stats is not None:
                stats.api_calls += 1
                stats.waited += waited

        async def on_end(session, context, params) -> None:
            status = params.response.status
            stats = current_stats.get()
            if stats is not None:
                stats.by_status[status] = stats.by_status.get(status, 0) + 1
                if status == 429:
                    stats.rate_limit_hits += 1
                elif status >= 500:
                    stats.server_errors += 1
            await limiter.observe(params.method, params.url.path, status, params.response.headers)

        trace.on_request_start.append(on_start)
        trace.on_request_end.append(on_end)
        return trace


def _float(value: str | None) -> float:
    try:
        return float(value) if value else 0.0
    except ValueError:
        return 0.0
