"""JSON responses and errors shaped exactly as Discord sends them."""

from __future__ import annotations

import json

import orjson
from aiohttp import web

# discord.py parses a body as JSON only when Content-Type is exactly this, and
# treats a 429 without a `Via` header as a Cloudflare ban: Discord sends both.
BASE_HEADERS = {"Content-Type": "application/json", "Via": "1.1 google"}

UNKNOWN_CHANNEL = 10003
UNKNOWN_GUILD = 10004
UNKNOWN_MEMBER = 10007
UNKNOWN_MESSAGE = 10008
UNKNOWN_ROLE = 10011
UNKNOWN_USER = 10013
UNKNOWN_INTERACTION = 10062
UNKNOWN_WEBHOOK = 10015
MISSING_ACCESS = 50001
MISSING_PERMISSIONS = 50013
INVALID_FORM_BODY = 50035
INTERACTION_ALREADY_ACKNOWLEDGED = 40060


def encode_json(data: object) -> bytes:
    """UTF-8 JSON as Discord sends it (no ASCII escapes), by orjson: a member page or chunk is
    a few hundred KB, and the emulator encodes it on the same machine as the client under test."""
    try:
        return orjson.dumps(data)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, say, sent through the control API
        return json.dumps(data, ensure_ascii=False).encode()


def json_response(data: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=encode_json(data), status=status, headers={**BASE_HEADERS, **(headers or {})})


def encoded_json_response(body: bytes) -> web.Response:
    """A 200 with JSON already encoded (a member page from member_json.py)."""
    return web.Response(body=body, headers=BASE_HEADERS)


def no_content() -> web.Response:
    return web.Response(status=204, headers={"Via": BASE_HEADERS["Via"]})


class DiscordHTTPError(Exception):
    """An error answered with Discord's JSON body; raise it from any handler."""

    def __init__(self, status: int, code: int, message: str, errors: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"message": message, "code": code}
        if errors:
            self.body["errors"] = errors

    def response(self) -> web.Response:
        return json_response(self.body, status=self.status)


def unauthorized() -> DiscordHTTPError:
    return DiscordHTTPError(401, 0, "401: Unauthorized")


def not_found(code: int, what: str) -> DiscordHTTPError:
    return DiscordHTTPError(404, code, f"Unknown {what}")


def missing_access() -> DiscordHTTPError:
    return DiscordHTTPError(403, MISSING_ACCESS, "Missing Access")


def missing_permissions() -> DiscordHTTPError:
    return DiscordHTTPError(403, MISSING_PERMISSIONS, "Missing Permissions")


def invalid_form(field: str, code: str, message: str) -> DiscordHTTPError:
    """400 Invalid Form Body with Discord's `errors` tree for one field (dotted path)."""
    tree: dict = {"_errors": [{"code": code, "message": message}]}
    for part in reversed(field.split(".")):
        tree = {part: tree}
    return DiscordHTTPError(400, INVALID_FORM_BODY, "Invalid Form Body", tree)


def snowflake(value: str, field: str) -> int:
    """Parse a path or query snowflake the way Discord validates it."""
    if not value.isdigit() or not 0 <= int(value) < 1 << 64:
        raise invalid_form(field, "NUMBER_TYPE_COERCE", f'Value "{value[:64]}" is not snowflake.')
    return int(value)


def int_param(query: dict, name: str, *, default: int, low: int, high: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise invalid_form(name, "NUMBER_TYPE_COERCE", f'Value "{raw[:64]}" is not int.') from None
    if value < low:
        raise invalid_form(name, "NUMBER_TYPE_MIN", f"int value should be greater than or equal to {low}.")
    if value > high:
        raise invalid_form(name, "NUMBER_TYPE_MAX", f"int value should be less than or equal to {high}.")
    return value


def bool_param(query: dict, name: str) -> bool:
    """Discord accepts true/false in any case and 1/0 for boolean query parameters."""
    raw = str(query.get(name, "")).lower()
    if raw in ("", "false", "0"):
        return False
    if raw in ("true", "1"):
        return True
    raise invalid_form(name, "BOOLEAN_TYPE_COERCE", f'Value "{raw[:64]}" is not a valid boolean.')
