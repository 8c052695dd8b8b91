"""The rate-limit budget shared by every process that uses one bot token.

discord.py already learns Discord's buckets from the headers, but only inside
one process. This layer sits on top, through aiohttp's request tracing (a public
discord.py option): before each request it takes a slot from the global budget
and waits out any bucket another process saw exhausted; after each response it
records what the headers say. The store is the database by default and Redis
(through Django's cache) when REDIS_URL is set.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import random
import re
import time
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
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
    """Windows and blocks in the RateLimitBucket table, one short transaction each."""

    def take(self, key: str, limit: int, per: float, now: float) -> float:
        """Take one slot of `limit` per `per` seconds; return 0, or seconds to wait."""
        with transaction.atomic():
            row = RateLimitBucket.objects.select_for_update().filter(key=key).first()
            if row is None:
                try:
                    with transaction.atomic():
                        RateLimitBucket.objects.create(key=key, window_start=now, used=1)
                    return 0.0
                except IntegrityError:  # another process created it first
                    row = RateLimitBucket.objects.select_for_update().get(key=key)
            if row.blocked_until > now:
                return row.blocked_until - now
            if now - row.window_start >= per:
                row.window_start, row.used = now, 0
            if row.used >= limit:
                return row.window_start + per - now
            row.used += 1
            row.save(update_fields=["window_start", "used"])
            return 0.0

    def block(self, key: str, until: float) -> None:
        updated = RateLimitBucket.objects.filter(key=key, blocked_until__lt=until).update(blocked_until=until)
        if not updated:
            RateLimitBucket.objects.get_or_create(key=key, defaults={"blocked_until": until})

    def blocked_for(self, key: str, now: float) -> float:
        until = RateLimitBucket.objects.filter(key=key).values_list("blocked_until", flat=True).first()
        return max(0.0, (until or 0.0) - now)


class CacheStore:
    """Windows and blocks in Django's cache: shared when the cache is Redis."""

    def take(self, key: str, limit: int, per: float, now: float) -> float:
        blocked = self.blocked_for(key, now)
        if blocked:
            return blocked
        window = int(now // per)
        counter = f"rl:{key}:{window}"
        cache.add(counter, 0, timeout=max(1, int(per * 2)))
        if cache.incr(counter) <= limit:
            return 0.0
        return (window + 1) * per - now

    def block(self, key: str, until: float) -> None:
        current = cache.get(f"rl-block:{key}", 0.0)
        if until > current:
            cache.set(f"rl-block:{key}", until, timeout=max(1, int(until - time.time()) + 1))

    def blocked_for(self, key: str, now: float) -> float:
        return max(0.0, cache.get(f"rl-block:{key}", 0.0) - now)


def default_store() -> RateLimitStore:
    return CacheStore() if settings.REDIS_URL else DatabaseStore()


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
