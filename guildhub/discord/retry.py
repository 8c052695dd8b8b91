"""Retrying Discord calls that failed for reasons that pass: 5xx, timeouts, resets.

discord.py already retries some 5xx inside one request; this policy wraps whole
calls so a page that still failed is tried again with exponential backoff and
full jitter (so many workers do not retry in step).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp
import discord
from django.conf import settings

T = TypeVar("T")

RETRYABLE = (discord.DiscordServerError, aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


@dataclass(frozen=True)
class RetryPolicy:
    retries: int = 3
    base: float = 1.0
    cap: float = 30.0

    @classmethod
    def from_settings(cls) -> RetryPolicy:
        return cls(settings.DISCORD_RETRIES, settings.DISCORD_RETRY_BASE, settings.DISCORD_RETRY_CAP)

    def delay(self, attempt: int) -> float:
        """Seconds before retry number `attempt` (0-based): full jitter under an exponential cap."""
        return random.uniform(0, min(self.cap, self.base * 2**attempt))


async def call_with_retries(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    on_retry: Callable[[int, BaseException], None] | None = None,
) -> T:
    """Await `fn()`, retrying transient failures up to `policy.retries` times."""
    attempt = 0
    while True:
        try:
            return await fn()
        except RETRYABLE as exc:
            if attempt >= policy.retries:
                raise
            if on_retry is not None:
                on_retry(attempt + 1, exc)
            await asyncio.sleep(policy.delay(attempt))
            attempt += 1
