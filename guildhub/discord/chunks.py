"""Member chunks from the gateway, consumed as they arrive, never cached by discord.py.

discord.py would turn every `GUILD_MEMBERS_CHUNK` member into a `Member` object
and, unless cache flags say otherwise, keep it. For a large guild we take the
raw chunk ourselves: discord.py's connection state keeps one parser per event
name, and the websocket looks parsers up in that same dict, so replacing the
entry for this event hands us the decoded payload first. Chunks that are not
ours go on to discord.py's own parser (so `Guild.chunk()` still works).
"""

from __future__ import annotations

from collections.abc import Callable

import discord

ChunkHandler = Callable[[dict], bool]  # returns True when it consumed the chunk


def install_chunk_handler(client: discord.Client, handler: ChunkHandler) -> Callable[[], None]:
    """Route raw member chunks to `handler` first; returns a function that uninstalls it."""
    parsers = client._connection.parsers
    original = parsers["GUILD_MEMBERS_CHUNK"]

    def parse(data: dict) -> None:
        if not handler(data):
            original(data)

    parsers["GUILD_MEMBERS_CHUNK"] = parse

    def uninstall() -> None:
        parsers["GUILD_MEMBERS_CHUNK"] = original

    return uninstall


async def request_all_members(client: discord.Client, guild_id: int, *, nonce: str) -> None:
    """Send REQUEST_GUILD_MEMBERS (op 8) for every member of the guild on its shard's socket."""
    websocket = client._get_websocket(guild_id)
    await websocket.request_chunks(guild_id, query="", limit=0, nonce=nonce)
