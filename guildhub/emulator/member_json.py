"""A guild's generated members kept as their JSON, so that member lists stream at memory speed.

Generating a member costs the emulator about 12 µs (generator.py), and a benchmark
runs the emulator on the same cores as the client it measures: streaming a million
members took it 15 CPU seconds, longer than GuildHub took to compare them. Discord
holds its member lists in memory; with `World(member_json=True)` (`manage.py
emulator --member-json`) the emulator does too, as JSON in zstd-compressed blocks of
BLOCK members (about 85 MB and 9 s at start for a million). Only the generated
members are kept: members edited, removed or added at run time are looked up as
before, and a change to the guild's roles (which generated members hold) makes the
store stale, so pages go back to the generator rather than serve old data.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from guildhub.emulator import generator as gen
from guildhub.emulator.responses import encode_json

if TYPE_CHECKING:
    from guildhub.emulator.state import Guild

try:  # a pinned dependency (requirements.txt); zlib otherwise, slower to read back
    import zstandard

    _COMPRESSOR = zstandard.ZstdCompressor(level=1)

    def _compress(data: bytes) -> bytes:
        # A copy: the result is cut down from a buffer of the input's size, and a million
        # members' worth of those cut-down buffers kept 565 MB resident instead of 110 MB.
        return bytes(memoryview(_COMPRESSOR.compress(data)))

    def _decompress(data: bytes) -> bytes:
        return zstandard.ZstdDecompressor().decompress(data)

except ImportError:  # pragma: no cover - zstandard is installed with the project
    import zlib

    def _compress(data: bytes) -> bytes:
        return zlib.compress(data, 1)

    def _decompress(data: bytes) -> bytes:
        return zlib.decompress(data)


BLOCK = 1000
BLOCKS_KEPT_OPEN = 4  # a page of 1000 after any cursor spans two blocks; REST and gateway may interleave


def json_array(items: Iterable[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"


class MemberJson:
    """Every generated member of one guild: user ids by index, and JSON in compressed blocks."""

    def __init__(self, guild: Guild) -> None:
        self.role_ids = tuple(guild.role_ids)
        self.user_ids = array("q", (gen.user_id(index, guild.seed) for index in range(guild.generated)))
        self.blocks: list[tuple[bytes, array]] = []
        role_ids = list(self.role_ids)
        for start in range(0, guild.generated, BLOCK):
            encoded = [
                encode_json(gen.generated_member(index, guild.seed, guild.id, role_ids, self.user_ids[index]))
                for index in range(start, min(start + BLOCK, guild.generated))
            ]
            offsets = array("l", [0])
            for item in encoded:
                offsets.append(offsets[-1] + len(item))
            self.blocks.append((_compress(b"".join(encoded)), offsets))
        self._open: OrderedDict[int, bytes] = OrderedDict()

    def current_for(self, guild: Guild) -> bool:
        """Whether the generated members are still what this store holds (their roles have not changed)."""
        return tuple(guild.role_ids) == self.role_ids

    def first_index_above(self, user_id: int) -> int:
        return bisect_right(self.user_ids, user_id)

    def member(self, index: int) -> bytes:
        number, position = divmod(index, BLOCK)
        data = self._open.get(number)
        if data is None:
            data = _decompress(self.blocks[number][0])
            self._open[number] = data
            if len(self._open) > BLOCKS_KEPT_OPEN:
                self._open.popitem(last=False)
        else:
            self._open.move_to_end(number)
        offsets = self.blocks[number][1]
        return data[offsets[position] : offsets[position + 1]]


def page_json(guild: Guild, store: MemberJson, *, after: int, limit: int) -> tuple[bytes, int, int]:
    """Guild.list_members(after=, limit=) as one JSON array: (the array, how many members, the last user id)."""
    items: list[bytes] = []
    last = 0
    index = store.first_index_above(after)
    user_ids, generated = store.user_ids, guild.generated
    removed, overrides = guild.removed, guild.overrides
    extra_ids, extra = guild.extra_ids, guild.extra
    next_extra = bisect_right(extra_ids, after)
    while len(items) < limit:
        uid = user_ids[index] if index < generated else None
        if next_extra < len(extra_ids) and (uid is None or extra_ids[next_extra] < uid):
            last = extra_ids[next_extra]
            items.append(encode_json(extra[last]))
            next_extra += 1
            continue
        if uid is None:
            break
        if uid not in removed:
            override = overrides.get(uid)
            items.append(store.member(index) if override is None else encode_json(override))
            last = uid
        index += 1
    return json_array(items), len(items), last
