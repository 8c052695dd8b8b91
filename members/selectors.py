"""Reads of the member cache: the search behind the picker and the JSON API.

Ranking: present members whose name is the query, then whose name starts with
it, then that contain it; departed members after them. Matching is on the
folded username, global name and nickname (members.search_text), plus an exact
user id or `<@id>` mention. Indexes: PostgreSQL's pg_trgm GIN index and SQLite's
FTS5 trigram table, both over the same folded text, so both databases return the
same members in the same order. Queries of one or two characters are too short
for trigrams: they match whole names and display-name prefixes (a btree range).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Collate

from members.models import Guild, Member
from members.search_text import SEP, fold

log = logging.getLogger(__name__)

MAX_QUERY_LENGTH = 100
DEFAULT_LIMIT = 25
MENTION = re.compile(r"^<@!?(\d{15,21})>$")
SNOWFLAKE = re.compile(r"^\d{15,21}$")


class QueryTooLong(ValueError):
    """A search query over MAX_QUERY_LENGTH characters."""


@dataclass(frozen=True)
class MemberHit:
    user_id: int
    username: str
    global_name: str | None
    nick: str | None
    display_name: str
    is_bot: bool
    avatar_url: str
    departed: bool
    source: str  # "cache", "discord" or "departed"

    @classmethod
    def from_member(cls, member: Member, source: str | None = None) -> MemberHit:
        departed = member.departed_at is not None
        return cls(
            user_id=member.user_id,
            username=member.username,
            global_name=member.global_name,
            nick=member.nick,
            display_name=member.display_name,
            is_bot=member.is_bot,
            avatar_url=member.avatar_url,
            departed=departed,
            source=source or ("departed" if departed else "cache"),
        )

    def to_json(self) -> dict:
        return {
            "user_id": str(self.user_id),  # snowflakes exceed JavaScript's safe integers
            "username": self.username,
            "global_name": self.global_name,
            "nick": self.nick,
            "display_name": self.display_name,
            "is_bot": self.is_bot,
            "avatar_url": self.avatar_url,
            "departed": self.departed,
            "source": self.source,
        }


@dataclass(frozen=True)
class SearchResult:
    hits: list[MemberHit]
    source: str  # "cache", "discord", "departed", "recent" or "none"
    notice: str | None = None


HIT_FIELDS = ("user_id", "username", "global_name", "nick", "display_name", "is_bot", "avatar", "departed_at")


def _ordered(members: QuerySet) -> QuerySet:
    # Byte order on both databases, so they agree on ties.
    if connection.vendor == "postgresql":
        return members.order_by(Collate("sort_key", "C"), "user_id")
    return members.order_by("sort_key", "user_id")


def _containing(members: QuerySet, needle: str) -> QuerySet:
    """Members whose search_text contains `needle` (at least three characters), index-assisted."""
    if connection.vendor == "sqlite":
        phrase = '"' + needle.replace('"', '""') + '"'
        return members.filter(
            id__in=RawSQL("SELECT rowid FROM members_member_fts WHERE members_member_fts MATCH %s", [phrase])
        )
    # PostgreSQL's pg_trgm index answers LIKE; Django escapes % and _ in `contains`.
    return members.filter(search_text__contains=needle)


def _named(members: QuerySet, folded: str) -> QuerySet:
    """Members one of whose names is exactly `folded`."""
    if connection.vendor == "postgresql" and folded:
        # pg_trgm reads text as words of letters and digits: it cannot see the separators
        # around a whole name, and a query without letters or digits gives it nothing to look
        # up. A GIN index over the names as an array (migration 0006) answers "is a name" exactly.
        # chr(31) is SEP; the expression is the index's, word for word, or the planner won't use it.
        return members.filter(
            RawSQL(
                'string_to_array("members_member"."search_text", chr(31)) @> ARRAY[%s]::text[]',
                [folded],
                output_field=BooleanField(),
            )
        )
    return _containing(members, SEP + folded + SEP)


def _display_prefix(members: QuerySet, prefix: str) -> QuerySet:
    upper = prefix + "\U0010ffff"
    if connection.vendor == "postgresql":
        return members.alias(key_c=Collate("sort_key", "C")).filter(key_c__gte=prefix, key_c__lt=upper)
    return members.filter(sort_key__gte=prefix, sort_key__lt=upper)


def wants_substrings(folded: str) -> bool:
    """Whether prefix and substring tiers apply: three characters or more, a letter or digit among them.

    Shorter queries, and ones of punctuation alone ("%%%", "<>"), give a trigram index
    nothing to narrow with; they match whole names and display-name prefixes instead,
    which indexes answer at once, so nobody can make the server scan a guild by typing.
    """
    return len(folded) >= 3 and any(c.isalnum() for c in folded)


def _tiers(members: QuerySet, folded: str) -> list[QuerySet]:
    """Querysets for exact, prefix and substring matches, best first."""
    exact = _named(members, folded)
    if not wants_substrings(folded):
        return [exact, _display_prefix(members, folded)]
    return [exact, _containing(members, SEP + folded), _containing(members, folded)]


def _collect(tiers: list[QuerySet], limit: int, source: str | None = None) -> list[MemberHit]:
    hits: list[MemberHit] = []
    seen: set[int] = set()
    for tier in tiers:
        if len(hits) >= limit:
            break
        for member in _ordered(tier.exclude(user_id__in=seen)).only(*HIT_FIELDS)[: limit - len(hits)]:
            seen.add(member.user_id)
            hits.append(MemberHit.from_member(member, source))
    return hits


def parse_user_id(query: str) -> int | None:
    match = MENTION.match(query) or SNOWFLAKE.match(query)
    return int(match.group(1) if match.re is MENTION else match.group(0)) if match else None


def search_cache(guild: Guild, query: str, *, limit: int = DEFAULT_LIMIT) -> tuple[list[MemberHit], list[MemberHit]]:
    """(present hits, departed hits) from the cache alone."""
    members = Member.objects.filter(guild=guild)
    user_id = parse_user_id(query)
    if user_id is not None:
        member = members.filter(user_id=user_id).only(*HIT_FIELDS).first()
        if member is None:
            return [], []
        hit = MemberHit.from_member(member)
        return ([], [hit]) if hit.departed else ([hit], [])
    folded = fold(query)
    present = _collect(_tiers(members.filter(departed_at__isnull=True), folded), limit)
    departed = []
    if len(present) < limit:
        departed = _collect(_tiers(members.filter(departed_at__isnull=False), folded), limit - len(present))
    return present, departed


def recent_members(guild: Guild, *, limit: int = DEFAULT_LIMIT) -> list[MemberHit]:
    """For an empty query: the members most recently seen changing or joining."""
    members = Member.objects.filter(guild=guild, departed_at__isnull=True).only(*HIT_FIELDS)
    return [MemberHit.from_member(m) for m in members.order_by("-updated_at", "-joined_at", "user_id")[:limit]]


def search_members(guild: Guild, query: str, *, limit: int = DEFAULT_LIMIT, live_fallback: bool = True) -> SearchResult:
    """Find members while the user types: cache, then Discord's live search, then departed members."""
    query = query.strip()
    if len(query) > MAX_QUERY_LENGTH:
        raise QueryTooLong(f"Search for at most {MAX_QUERY_LENGTH} characters.")
    limit = max(1, min(limit, 100))
    if not query:
        hits = recent_members(guild, limit=limit)
        return SearchResult(hits, "recent" if hits else "none")
    present, departed = search_cache(guild, query, limit=limit)
    if present:
        return SearchResult(present + departed, "cache")
    notice = None
    if live_fallback and (len(query) >= 2 or not Member.objects.filter(guild=guild).exists()):
        from members.live_search import LiveSearchFailed, search_discord

        try:
            live = search_discord(guild, query, limit=limit)
        except LiveSearchFailed as exc:
            live, notice = [], str(exc)
        if live:
            return SearchResult(live + departed[: max(0, limit - len(live))], "discord")
    if departed:
        return SearchResult(departed, "departed", notice)
    return SearchResult([], "none", notice)


def member_hit(guild_id: int, user_id: int) -> MemberHit | None:
    member = Member.objects.filter(guild_id=guild_id, user_id=user_id).only(*HIT_FIELDS).first()
    return MemberHit.from_member(member) if member else None
