"""The emulator's aiohttp application: REST, rate limits, faults, gateway, control."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from aiohttp import web

from guildhub.emulator import control, rest
from guildhub.emulator.faults import FAULTS_KEY, FaultInjector
from guildhub.emulator.ratelimits import LIMITER_KEY, PROFILES, Profile, RateLimiter
from guildhub.emulator.responses import DiscordHTTPError, json_response, unauthorized
from guildhub.emulator.state import World


@dataclass
class EmulatorOptions:
    token: str | None = None  # when set, any other bot token gets 401
    heartbeat_interval_ms: int = 41_250
    member_request_interval: float = 0.0  # Discord: one full member list per guild per 30 s


# Routes that authenticate with the token in their URL, not a bot token.
TOKEN_IN_URL_BUCKETS = {"interaction_callback", "webhook"}


def route_info(request: web.Request) -> tuple[str, rest.RouteInfo | None]:
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else request.path
    return f"{request.method} {canonical}", rest.ROUTES.get((request.method, canonical))


def cloudflare_ban(seconds: float) -> web.Response:
    # A ban comes from Cloudflare, not Discord: HTML, no `Via`, no JSON.
    return web.Response(
        status=429,
        text="<html><body>Error 1015: You are being rate limited.</body></html>",
        content_type="text/html",
        headers={"Retry-After": str(math.ceil(seconds))},
    )


def too_many(retry_after: float, headers: dict[str, str], *, is_global: bool) -> web.Response:
    # Discord's spec requires `code` on every error body, 429s included (some limits send
    # their own code, e.g. 40062); 0 is the general code, which discord.py assumes when absent.
    body = {
        "message": "You are being rate limited.",
        "retry_after": round(retry_after, 3),
        "global": is_global,
        "code": 0,
    }
    return json_response(body, status=429, headers=headers)


def as_response(exc: web.HTTPException) -> web.Response:
    if exc.status == 404:
        return json_response({"message": "404: Not Found", "code": 0}, status=404)
    if exc.status == 405:
        return json_response({"message": "405: Method Not Allowed", "code": 0}, status=405)
    return json_response({"message": exc.reason, "code": 0}, status=exc.status)


@web.middleware
async def discord_middleware(request: web.Request, handler) -> web.StreamResponse:
    if not request.path.startswith(rest.API_PREFIX):
        return await handler(request)
    app = request.app
    world, limiter = app[rest.WORLD_KEY], app[LIMITER_KEY]
    name, info = route_info(request)
    world.counters.requests[name] += 1
    ip = request.remote or "?"

    response = await answer(request, handler, name, info, ip)

    if response.status in (401, 403) or (
        response.status == 429 and response.headers.get("X-RateLimit-Scope") != "shared"
    ):
        limiter.record_invalid(ip)
        world.counters.invalid_requests += 1
    if response.status == 429:
        world.counters.rate_limited += 1
        if response.headers.get("X-RateLimit-Global") == "true":
            world.counters.global_rate_limited += 1
    if response.status >= 500:
        world.counters.server_errors += 1
    world.counters.statuses[response.status] += 1
    if isinstance(response, web.Response) and response.body is not None:
        world.counters.bytes_sent += len(response.body)
    return response


async def answer(request: web.Request, handler, name: str, info: rest.RouteInfo | None, ip: str) -> web.StreamResponse:
    app = request.app
    limiter, injector, options = app[LIMITER_KEY], app[FAULTS_KEY], app[OPTIONS_KEY]
    banned = limiter.is_banned(ip)
    if banned:
        return cloudflare_ban(banned)

    token = request.headers.get("Authorization", "")
    needs_bot_token = info is None or info.bucket not in TOKEN_IN_URL_BUCKETS
    if needs_bot_token and (not token.startswith("Bot ") or (options.token and token[4:] != options.token)):
        return unauthorized().response()

    if injector.applies(name):
        faults = injector.faults
        if faults.latency:
            await asyncio.sleep(faults.latency)
        if injector.roll(faults.drop_rate):
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=499)
        if injector.roll(faults.timeout_rate):
            await asyncio.sleep(faults.timeout_seconds)
        if injector.storming():
            is_global = faults.storm_scope == "global"
            headers = {"X-RateLimit-Scope": faults.storm_scope, "Retry-After": str(math.ceil(faults.storm_retry_after))}
            if is_global:
                headers["X-RateLimit-Global"] = "true"
            return too_many(faults.storm_retry_after, headers, is_global=is_global)
        if injector.roll(faults.error_rate):
            status = faults.error_status
            return json_response({"message": f"{status}: Internal Server Error", "code": 0}, status=status)

    headers: dict[str, str] = {}
    if info is not None:
        major = ":".join(request.match_info.get(key, "") for key in info.major)
        decision = limiter.check(token=token or ip, bucket=info.bucket, major=major)
        if not decision.allowed:
            return too_many(decision.retry_after, decision.headers, is_global=decision.is_global)
        headers = decision.headers

    try:
        response = await handler(request)
    except DiscordHTTPError as exc:
        response = exc.response()
    except web.HTTPException as exc:
        response = as_response(exc)
    response.headers.update(headers)
    return response


OPTIONS_KEY = web.AppKey("options", EmulatorOptions)


def create_app(
    world: World, *, profile: Profile | str = "fast", options: EmulatorOptions | None = None
) -> web.Application:
    """The whole emulator as one aiohttp application."""
    if isinstance(profile, str):
        profile = PROFILES[profile]
    options = options or EmulatorOptions()
    app = web.Application(middlewares=[discord_middleware], client_max_size=8 * 1024 * 1024)
    app[rest.WORLD_KEY] = world
    app[LIMITER_KEY] = RateLimiter(profile)
    app[FAULTS_KEY] = FaultInjector()
    app[OPTIONS_KEY] = options
    app.add_routes(rest.routes)
    control.setup_control(app)
    try:
        from guildhub.emulator.gateway import setup_gateway
    except ImportError:  # the gateway module is optional while it is being written
        pass
    else:
        setup_gateway(
            app,
            world,
            token=options.token,
            heartbeat_interval_ms=options.heartbeat_interval_ms,
            member_request_interval=options.member_request_interval,
        )
    return app
