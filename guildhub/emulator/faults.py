"""Fault injection: the bad days of Discord, on demand and reproducible."""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass, fields

from aiohttp import web


@dataclass
class Faults:
    """What to break. `route` limits every fault to routes containing that text."""

    error_rate: float = 0.0  # fraction of requests answered with `error_status`
    error_status: int = 500
    latency: float = 0.0  # seconds added before answering
    timeout_rate: float = 0.0  # fraction of requests that hang for `timeout_seconds`
    timeout_seconds: float = 30.0
    drop_rate: float = 0.0  # fraction of connections closed without a response
    storm_until: float = 0.0  # monotonic time until which every request gets a 429
    storm_retry_after: float = 1.0
    storm_scope: str = "user"  # user, global or shared
    route: str = ""
    seed: int = 0

    @classmethod
    def from_json(cls, data: dict) -> Faults:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known - {"storm_seconds"}
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        values = {k: v for k, v in data.items() if k in known}
        faults = cls(**values)
        if "storm_seconds" in data:
            faults.storm_until = time.monotonic() + float(data["storm_seconds"])
        for name in ("error_rate", "timeout_rate", "drop_rate"):
            if not 0.0 <= float(getattr(faults, name)) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if faults.storm_scope not in {"user", "global", "shared"}:
            raise ValueError("storm_scope must be user, global or shared")
        return faults

    def to_json(self) -> dict:
        data = asdict(self)
        data["storm_seconds_left"] = max(0.0, self.storm_until - time.monotonic())
        return data


class FaultInjector:
    def __init__(self) -> None:
        self.faults = Faults()
        self.random = random.Random(0)

    def set(self, faults: Faults) -> None:
        self.faults = faults
        self.random = random.Random(faults.seed)

    def applies(self, route: str) -> bool:
        return not self.faults.route or self.faults.route in route

    def roll(self, rate: float) -> bool:
        return rate > 0 and self.random.random() < rate

    def storming(self) -> bool:
        return self.faults.storm_until > time.monotonic()


FAULTS_KEY = web.AppKey("faults", FaultInjector)
