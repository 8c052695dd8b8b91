"""Gateway events as raw payloads, taken before discord.py builds (and caches) objects.

discord.py's connection state keeps one parser per event name, and the
websocket looks parsers up in that same dict, so replacing an entry hands us
the decoded payload first. GuildHub uses it for member chunks (a million
members must not become a million `Member` objects) and for live member
events (which discord.py only reports fully when its member cache is on).
A handler returns True to consume the payload; otherwise discord.py's own
parser runs as usual, so `Guild.chunk()` and every other event keep working.
"""

from __future__ import annotations

from collections.abc import Callable

import discord

RawHandler = Callable[[dict], bool]


def install_raw_handler(client: discord.Client, event: str, handler: RawHandler) -> Callable[[], None]:
    """Route raw `event` payloads (e.g. "GUILD_MEMBERS_CHUNK") to `handler` first; returns an uninstaller.

    Works for events discord.py has no parser for too (it drops "RATE_LIMITED").
    """
    parsers = client._connection.parsers
    original = parsers.get(event)

    def parse(data: dict) -> None:
        if not handler(data) and original is not None:
            original(data)

    parsers[event] = parse

    def uninstall() -> None:
        if original is None:
            parsers.pop(event, None)
        else:
            parsers[event] = original

    return uninstall


async def request_all_members(client: discord.Client, guild_id: int, *, nonce: str) -> None:
    """Send REQUEST_GUILD_MEMBERS (op 8) for every member of the guild on its shard's socket."""
    websocket = client._get_websocket(guild_id)
    await websocket.request_chunks(guild_id, query="", limit=0, nonce=nonce)
