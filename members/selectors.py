"""Reads of the member cache: the search behind the picker and the JSON API.

Ranking: present members whose name is the query, then whose name starts with
it, then that contain it; departed members after them. Matching is on the
folded username, global name and nickname (members.search_text), plus an exact
user id or `<@id>` mention. Indexes: a GIN index over every three-character piece
of the folded text, keyed by guild, on PostgreSQL (migrations 0009, 0021) and SQLite's FTS5 trigram
table with a rowid range per guild (0003, 0022),
both rechecked as exact substrings, so both databases return the same members in
the same order. Queries of one or two characters are too short for trigrams: they
match whole names and display-name prefixes (a btree range).

Queries of three characters or more are planned (TierPlanning): rare text is
fetched whole and sorted, in one statement for all tiers; common text walks the
display order until enough members match.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import BooleanField, F, Q, QuerySet
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


def display_key() -> Collate | F:
    """The folded display name in code point order, the picker's order on both databases.

    PostgreSQL compares it in the "C" collation, which its index has (migration 0013);
    SQLite's default is code point order already. Both then agree on ties.
    """
    return Collate("sort_key", "C") if connection.vendor == "postgresql" else F("sort_key")


def prefix_successor(prefix: str) -> str | None:
    """The smallest string above every string starting with `prefix` (code point order); None if none is."""
    stripped = prefix.rstrip(chr(0x10FFFF))
    if not stripped:
        return None
    following = ord(stripped[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates are not characters: jump over them
        following = 0xE000
    return stripped[:-1] + chr(following)


def with_a_display_name_starting(folded: str) -> Q:
    """Members whose folded display name starts with `folded`, as a range of display_key (alias `display_key`)."""
    matches = Q(display_key__gte=folded)
    upper = prefix_successor(folded)
    return matches & Q(display_key__lt=upper) if upper is not None else matches


def _ordered(members: QuerySet) -> QuerySet:
    return members.order_by(display_key(), "user_id")


def _containing(members: QuerySet, needle: str, guild_ids: Sequence[int]) -> QuerySet:
    """Members of `members` whose search_text contains `needle` exactly, the candidates from the text index.

    `guild_ids`: the guilds `members` may hold. Both indexes keep each guild's entries apart
    (PostgreSQL's keys, 0021; SQLite's rowid ranges, 0022), so the text is looked up once per guild.
    """
    if not guild_ids:
        return members.none()
    if connection.vendor == "sqlite":
        # SQLite allows 500 terms in a compound SELECT: past FTS_GUILD_READS guilds, every range is
        # read in one go, and `members` keeps the guilds asked for.
        ranges = guild_ids if len(guild_ids) <= FTS_GUILD_READS else [None]
        reads = [_fts_ids(guild_id, needle) for guild_id in ranges]
        union = " UNION ALL ".join(sql for sql, _ in reads)
        in_index = RawSQL(union, [param for _, params in reads for param in params])  # noqa: S611 (_fts_ids')
        # The FTS5 index also folds case by itself; instr keeps the match the exact substring
        # test PostgreSQL and the walk make.
        exact = RawSQL('instr("members_member"."search_text", %s) > 0', [needle], output_field=BooleanField())
        return members.filter(id__in=in_index).filter(exact)
    keys = " OR ".join([_POSTGRES_GUILD_KEYS] * len(guild_ids))
    params = [param for guild_id in guild_ids for param in (guild_id, _guild_pieces(guild_id, needle))]
    contains = RawSQL(f"({keys}) AND strpos(search_text, %s) > 0", [*params, needle], BooleanField())  # noqa: S611
    return members.filter(contains)


def _named(members: QuerySet, folded: str, guild_id: int) -> QuerySet:
    """Members of the guild (`members` holds no other) one of whose names is exactly `folded`."""
    if connection.vendor == "postgresql" and folded:
        # A GIN index over the names as an array (migration 0006) answers "is a name" with one key.
        # The trigram index (0009) could too, but a whole name's trigrams may come from any of a
        # member's names: for "th" it reads every member with a name starting "th" and another
        # ending so, thousands of rows (2 chars p95 4 -> 13 ms at 1M; bench/RESULTS.md).
        # chr(31) is SEP; the expression and its collation are the index's (0019), word for word,
        # or the planner won't use it.
        return members.filter(
            RawSQL(
                'string_to_array("members_member"."search_text", chr(31)) COLLATE "C" @> ARRAY[%s]::text[]',
                [folded],
                output_field=BooleanField(),
            )
        )
    return _containing(members, SEP + folded + SEP, [guild_id])


def _display_prefix(members: QuerySet, prefix: str) -> QuerySet:
    return members.alias(display_key=display_key()).filter(with_a_display_name_starting(prefix))


def wants_substrings(folded: str) -> bool:
    """Whether prefix and substring tiers apply: three characters or more, a letter or digit among them.

    Shorter queries, and ones of punctuation alone ("%%%", "<>"), give a trigram index
    nothing to narrow with; they match whole names and display-name prefixes instead,
    which indexes answer at once, so nobody can make the server scan a guild by typing.
    """
    return len(folded) >= 3 and any(c.isalnum() for c in folded)


@dataclass(frozen=True)
class Tier:
    """One step of the ranking: members with a whole name, a display-name prefix, or a piece of text."""

    kind: str  # "name", "display_prefix" or "contains"
    text: str


def _tiers(folded: str) -> list[Tier]:
    """Exact, prefix and substring tiers, best first."""
    if not wants_substrings(folded):
        return [Tier("name", folded), Tier("display_prefix", folded)]
    # On SQLite the whole-name tier is a substring too: the name between its separators.
    exact = Tier("name", folded) if connection.vendor == "postgresql" else Tier("contains", SEP + folded + SEP)
    return [exact, Tier("contains", SEP + folded), Tier("contains", folded)]


@dataclass(frozen=True)
class TierPlanning:
    """How a substring tier finds its first members: these limits change the speed, never the result.

    A text index finds every member containing the text, but the picker wants the first
    few in display order. For rare text fetching and sorting all matches is cheapest; for
    common text ("the", "ale": 10k-160k members of a big guild) walking the display order
    until enough match is, since about one member in N/matches does. SQLite counts the
    matches up to `probe_cap` to tell which case it is (FTS5 counts in well under a
    millisecond), and skips the walk when a sample of them shares one display name (they
    sit together, wherever that name sorts); PostgreSQL's trigram index cannot count without
    reading the rows, so it asks the statistics ANALYZE keeps of that index how common the
    text's trigrams are.
    """

    probe_cap: int = 2000  # more matches than this: walk the display order
    walk_rows: int = 10_000  # members walked at most before fetching and sorting after all
    walk_share: float = 0.005  # PostgreSQL: walk when as many as this share of members may contain the text
    # PostgreSQL, for text of one trigram (three characters) and for whole names, whose share the
    # statistics give as such rather than bound from pieces: walk from this share (None: walk_share).
    walk_share_exact: float | None = None
    # PostgreSQL: members walked at most per member the statistics say may contain the text. Its
    # walk reads an index alone (0013), about 0.3 µs a member, and fetching a match costs 3-5 µs:
    # a walk of five times the matches that finds too few (they cluster late in the display order,
    # at a common display name) adds up to half to the fetch that follows; one that finds them
    # saves it. Common text often starts late: "| s" (2 % of the 1M benchmark, in nicknames
    # "Alex | sage" and the like) first matches 3-4 % into the order. At twice the matches its walk
    # gave up short of them and fetched 20k members (120-140 ms); at five times it walks to them
    # (30-35 ms), and the mean 3-character search went from 5.7-6.0 to 4.9-5.5 ms.
    walk_per_match: float = 5.0


# PostgreSQL goes by the statistics first: it fetches all matches at once only when they say the
# text is rare, so its cap is just a guard against stale statistics.
PLANNING = {
    "sqlite": TierPlanning(walk_rows=8000),
    # One trigram held by 0.2 % of a million members: a walk of about 12,500 index entries (4 ms) against
    # fetching and sorting 2,000 rows (9 ms); at 0.45 % ("xec"), 2 ms against 20-30 ms.
    "postgresql": TierPlanning(probe_cap=8000, walk_rows=200_000, walk_share_exact=0.002),
}

HIT_COLUMNS = ", ".join(("id", *HIT_FIELDS))


def _not_seen(seen: set[int]) -> tuple[str, list[int]]:
    """An SQL condition leaving out members already in an earlier tier, and its parameters."""
    if not seen:
        return "", []
    return f" AND user_id NOT IN ({', '.join(['%s'] * len(seen))})", sorted(seen)


def _fts_phrase(needle: str) -> str:
    return '"' + needle.replace('"', '""') + '"'


# SQLite's FTS5 rowids (migration 0022): a guild's members in a range of their own, (the guild
# id's low bits) * 2^40 + the member's id, which FTS5 seeks in each term's doclist.
FTS_GUILD_BITS = 22
FTS_ID_BITS = 40
FTS_GUILD_READS = 64  # guilds looked up one range each at most; past that, all ranges in one read


def fts_rowid_range(guild_id: int) -> tuple[int, int]:
    """The guild's FTS5 rowids, first and last (migration 0022); a member's is the first plus its id."""
    first = (guild_id & ((1 << FTS_GUILD_BITS) - 1)) << FTS_ID_BITS
    return first, first + (1 << FTS_ID_BITS) - 1


def _fts_ids(guild_id: int | None, needle: str, limit: int | None = None) -> tuple[str, list]:
    """SQL for the ids of the guild's members (None: every guild's) the FTS5 index says contain `needle`
    (at most `limit`), and its parameters. A guild sharing the range (the same low bits) adds its own:
    callers test the guild."""
    # A member's id is its rowid's low bits, whatever the range.
    sql = "SELECT rowid & %s FROM members_member_fts WHERE members_member_fts MATCH %s"
    params: list = [(1 << FTS_ID_BITS) - 1, _fts_phrase(needle)]
    if guild_id is not None:
        sql, params = sql + " AND rowid BETWEEN %s AND %s", [*params, *fts_rowid_range(guild_id)]
    if limit is not None:
        sql, params = sql + " LIMIT %s", [*params, limit]
    return sql, params


def _sqlite_count_matches(guild_id: int, needle: str, cap: int) -> int:
    """The guild's members whose search_text the FTS5 index says contains `needle`, counted up to cap + 1."""
    sql, params = _fts_ids(guild_id, needle, cap + 1)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({sql})", params)  # noqa: S608 (_fts_ids' own SQL)
        return cursor.fetchone()[0]


def _sqlite_fetch_sorted(members: QuerySet, guild_id: int, needle: str, *, want: int, seen: set[int]) -> list[Member]:
    """Every member of `members` (the guild's) containing `needle`, from the FTS5 index, sorted; the first `want`."""
    matching = _containing(members, needle, [guild_id]).exclude(user_id__in=seen)
    return list(_ordered(matching).only(*HIT_FIELDS)[:want])


# A member of the guild whose search_text holds the needle's three-character pieces, from the
# index of migration 0021 (the expression and its collation are the index's, or the planner won't
# use it); the caller tests the needle itself. Parameters: the guild, its keys of the pieces.
_POSTGRES_GUILD_KEYS = '(guild_id = %s AND member_guild_trigrams(guild_id, search_text) COLLATE "C" @> %s::text[])'
GUILD_KEY_MODULUS = 65521  # migration 0021's, a prime


def _pieces(needle: str) -> set[str]:
    """The three-character pieces of `needle`, as member_guild_trigrams (migration 0021) cuts the names."""
    return {needle[i : i + 3] for i in range(len(needle) - 2)}


def guild_key(guild_id: int) -> str:
    """The four hex digits member_guild_trigrams (migration 0021) puts in front of each of the guild's trigrams."""
    return format(guild_id % GUILD_KEY_MODULUS, "04x")


def _guild_pieces(guild_id: int, needle: str) -> list[str]:
    """The trigram index's keys for `needle`'s pieces in the guild's members."""
    key = guild_key(guild_id)
    return sorted(key + piece for piece in _pieces(needle))


def with_a_name_starting(members: QuerySet, text: str, guild_ids: Sequence[int]) -> QuerySet:
    """Members of `guild_ids` one of whose names starts with `text` (folded; two characters or more).

    For lists across guilds, such as the admin's: no ranking, just the filter.
    """
    needle = SEP + fold(text)
    if len(needle) < 3:
        raise ValueError("a name prefix needs two characters or more")
    return _containing(members.filter(guild_id__in=guild_ids), needle, guild_ids)


_trigram_stats: dict = {"read_at": -math.inf}
TRIGRAM_STATS_SECONDS = 300.0


def _postgres_stats() -> dict:
    """What ANALYZE last saw: the share of the table's members holding each common guild-keyed trigram
    and each common whole name, each big guild's share of the table, and how many members there are.

    Read at most every TRIGRAM_STATS_SECONDS: the planning needs orders of magnitude, not counts.
    """
    if time.monotonic() - _trigram_stats["read_at"] > TRIGRAM_STATS_SECONDS:
        with connection.cursor() as cursor:
            # The last three numbers are the minimum, maximum and null frequencies, not elements'.
            cursor.execute(
                "SELECT tablename, most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats "
                "WHERE tablename IN ('member_trigrams_gin', 'member_names_gin') AND most_common_elems IS NOT NULL"
            )
            elements = {table: dict(zip(elems, freqs, strict=False)) for table, elems, freqs in cursor.fetchall()}
            cursor.execute(
                "SELECT most_common_vals::text::bigint[], most_common_freqs FROM pg_stats "
                "WHERE tablename = 'members_member' AND attname = 'guild_id' AND most_common_vals IS NOT NULL"
            )
            guild_parts = {
                guild: part for guilds, parts in cursor.fetchall() for guild, part in zip(guilds, parts, strict=True)
            }
            cursor.execute("SELECT greatest(reltuples, 0) FROM pg_class WHERE relname = 'members_member'")
            (members,) = cursor.fetchone()
        _trigram_stats.update(
            read_at=time.monotonic(),
            shares=elements.get("member_trigrams_gin", {}),
            name_shares=elements.get("member_names_gin", {}),
            guild_parts=guild_parts,
            members=members,
        )
    return _trigram_stats


def _postgres_guild_members(guild_id: int) -> float:
    """About how many members of the guild the table holds: ANALYZE's share of the table for a big
    guild, Discord's count for a guild too small to be among the most common, else the table's."""
    stats = _postgres_stats()
    part = stats["guild_parts"].get(guild_id)
    if part is not None:
        return part * stats["members"]
    counted = Guild.objects.filter(pk=guild_id).values_list("approximate_member_count", flat=True).first()
    return float(min(counted, stats["members"])) if counted else stats["members"]


def _postgres_guild_part(guild_id: int) -> float:
    """The guild's part of the table's members, 0 to 1 (0 while ANALYZE has counted none)."""
    members = _postgres_stats()["members"]
    return min(1.0, _postgres_guild_members(guild_id) / members) if members else 0.0


def _postgres_trigram_share(guild_id: int, needle: str) -> float:
    """At most what share of the guild's members contain `needle`, as far as ANALYZE's statistics of the
    trigram index know.

    Each trigram's share bounds the needle's. The statistics count the guild's keys among the
    whole table's members (0021), hence the division by the guild's part of the table. A key
    missing from the most common ones is rarer than all of them (0.6 % of members in the 1M
    benchmark; more with several big guilds, which share the list). 0 without statistics.
    """
    shares = _postgres_stats()["shares"]
    held = min((shares.get(key, 0.0) for key in _guild_pieces(guild_id, needle)), default=0.0)
    # guild_id's most common values list up to 100 guilds (its statistics target) and the keys up to
    # 5000 keys of any guilds: a guild past the 100th may still have keys listed, and its part of the
    # table then comes from Discord's count. Asked only when a key is listed: no query otherwise.
    part = _postgres_guild_part(guild_id) if held else 0.0
    return min(1.0, held / part) if part else 0.0


def _postgres_name_share(folded: str) -> float:
    """The share of members with a name exactly `folded`, from the statistics of the names index (0006).

    Exact where the trigrams only bound: common whole names are elements of that index as they
    are. 0 for a name rarer than the most common ones, or without statistics.
    """
    return _postgres_stats()["name_shares"].get(folded, 0.0)


# A sample of the guild's present members' search text, for text of several trigrams. Their
# statistics only bound such text's share by its rarest piece's, and a prefix is often far
# rarer than that ("\x1fcho": "\x1fch" and "cho" each in 2-3 % of members, no name starting with
# "cho"), or exactly that ("\x1fxec": every "xec" starts a name). Counting the text in 5000
# members drawn at random pages tells which, in a fraction of a millisecond once drawn.
SAMPLE_ROWS = 5000
SAMPLE_MIN_MEMBERS = 4 * SAMPLE_ROWS  # below this the search is fast whatever it plans: no sample
SAMPLE_GUILDS = 16  # samples kept per process, the least recently drawn dropped first
_samples: dict[int, tuple[float, str | None, int]] = {}
_samples_lock = threading.Lock()


def _postgres_sample(guild_id: int) -> tuple[str, int] | None:
    """(the sampled members' search texts joined by NUL, how many), at most TRIGRAM_STATS_SECONDS old;
    None for a cache too small to need one, or a guild too small a part of it to sample this way
    (under a fiftieth of the members, whose sample would hold under 1000 of them: the bounds from
    the pieces plan for it then)."""
    cached = _samples.get(guild_id)
    if cached is None or time.monotonic() - cached[0] > TRIGRAM_STATS_SECONDS:
        members = _postgres_stats()["members"]
        texts: list[str] = []
        if members >= max(SAMPLE_MIN_MEMBERS, 1):
            # SYSTEM reads whole pages picked at random, of every guild: enough of them for about
            # SAMPLE_ROWS of this guild's members (_postgres_guild_members), reading at most ten times that.
            part = _postgres_guild_part(guild_id)
            percent = 100.0 * min(1.0, SAMPLE_ROWS / (members * part), 10 * SAMPLE_ROWS / members)
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT search_text FROM members_member TABLESAMPLE SYSTEM (%s) "
                    "WHERE guild_id = %s AND departed_at IS NULL",
                    [percent, guild_id],
                )
                texts = [text for (text,) in cursor.fetchall()]
        # NUL never occurs in a name (guildhub.discord.guilds drops it), so no match spans two members.
        cached = (time.monotonic(), "\x00".join(texts) if len(texts) >= SAMPLE_ROWS // 5 else None, len(texts))
        with _samples_lock:  # a web process answers on several threads
            _samples.pop(guild_id, None)
            _samples[guild_id] = cached
            while len(_samples) > SAMPLE_GUILDS:
                _samples.pop(next(iter(_samples)))
    _, joined, count = cached
    return (joined, count) if joined is not None else None


def _postgres_share(guild_id: int, needle: str) -> tuple[float, bool]:
    """(share of members containing `needle`, whether that is the text's own share or only a bound).

    One trigram: the statistics' share, or the sample's count when the statistics do not list
    it (several big guilds share their list of most common keys). Several: the sample's count,
    or the bound from the pieces. The sample counts occurrences, not members: one holding the
    text twice counts twice, an overestimate by a few percent that the planning can live with,
    at a tenth of the cost.
    """
    share = _postgres_trigram_share(guild_id, needle)
    one_trigram = len(_pieces(needle)) == 1
    if one_trigram and share:
        return share, True
    sample = _postgres_sample(guild_id)
    if sample is None:
        return share, one_trigram
    joined, count = sample
    return joined.count(needle) / count, True


def _walks(share: float, planning: TierPlanning, *, exact: bool) -> bool:
    """Whether text held by (exact) or by at most (not exact) `share` of members is common enough to walk."""
    threshold = planning.walk_share_exact if exact and planning.walk_share_exact is not None else planning.walk_share
    return share >= threshold


def _walk_rows(guild_id: int, share: float, want: int, planning: TierPlanning) -> int:
    """How far a walk for text held by `share` of the guild's members goes before fetching and sorting is cheaper."""
    rows = planning.walk_rows
    if share:
        # About want / share members in if the matches spread out; further if fetching them costs more.
        fetching = planning.walk_per_match * share * _postgres_guild_members(guild_id)
        rows = min(rows, math.ceil(max(3 * want / share, fetching)))
    return rows


# Members of a guild containing a text, read from the trigram index with the planner's sequential
# scans and parallel workers off for that call alone (migrations 0017, 0018): the planner would choose
# between the trigram bitmap, walking the display order and a sequential scan on a selectivity
# guess that is often wrong by orders of magnitude (a walk of 400k rows for a rare name, a scan of
# the table for "| s"). Walks are our decision, made from the statistics and the sample; these
# reads are the other side of it. Arguments: guild, departed (NULL: both), the needle's pieces,
# the needle, user ids to leave out, at most how many (NULL: all).
_POSTGRES_MATCHES = "member_text_matches(%s, %s, %s::text[], %s, %s::bigint[], %s)"


def _postgres_matches_params(
    guild_id: int, needle: str, *, departed: bool | None, seen: Iterable[int] = (), cap: int | None = None
) -> list:
    return [guild_id, departed, _guild_pieces(guild_id, needle), needle, sorted(seen), cap]


def _postgres_sorted_matches(guild_id: int, needle: str, *, departed: bool, want: int, seen: set[int]) -> list[Member]:
    """Every present (or departed) member of the guild containing `needle`, sorted; the first `want`."""
    # The function's result is read whole, so the ORDER BY ... LIMIT cannot turn into a walk.
    return list(
        Member.objects.raw(
            f'SELECT {HIT_COLUMNS}, sort_key FROM {_POSTGRES_MATCHES} ORDER BY sort_key COLLATE "C", user_id LIMIT %s',  # noqa: S608
            [*_postgres_matches_params(guild_id, needle, departed=departed, seen=seen), want],
        )
    )


def _few_matches(guild: Guild, folded: str, *, limit: int, cap: int) -> list[Member] | None:
    """The whole search for a 3+ character query in one statement, when at most `cap` members contain it.

    Whole-name and prefix matches contain the query too, so the members containing it are all
    the candidates: rank them (present first, then whole name, prefix, substring, display order)
    and take the first `limit`. None when more than `cap` contain it.
    """
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute(*_fts_ids(guild.id, folded, cap + 1))
            ids = [row[0] for row in cursor.fetchall()]
        if len(ids) > cap:
            return None
        if not ids:
            return []
        # The FTS5 index also folds case by itself; instr keeps the match exact.
        order = (
            "departed_at IS NOT NULL, CASE WHEN instr(search_text, %s) > 0 THEN 0 "
            "WHEN instr(search_text, %s) > 0 THEN 1 ELSE 2 END, sort_key, user_id"
        )
        sql = (
            f"SELECT {HIT_COLUMNS} FROM members_member WHERE id IN ({', '.join(['%s'] * len(ids))}) "  # noqa: S608
            f"AND guild_id = %s AND instr(search_text, %s) > 0 ORDER BY {order} LIMIT %s"
        )
        params = [*ids, guild.id, folded, SEP + folded + SEP, SEP + folded, limit]
        return list(Member.objects.raw(sql, params))
    order = (
        "departed_at IS NOT NULL, CASE WHEN strpos(search_text, %s) > 0 THEN 0 "
        'WHEN strpos(search_text, %s) > 0 THEN 1 ELSE 2 END, sort_key COLLATE "C", user_id'
    )
    sql = (
        f"WITH hits AS MATERIALIZED (SELECT {HIT_COLUMNS}, sort_key, search_text FROM {_POSTGRES_MATCHES}) "  # noqa: S608
        f"SELECT *, (SELECT count(*) FROM hits) AS matched FROM hits ORDER BY {order} LIMIT %s"
    )
    params = [
        *_postgres_matches_params(guild.id, folded, departed=None, cap=cap + 1),
        SEP + folded + SEP,
        SEP + folded,
        limit,
    ]
    found = list(Member.objects.raw(sql, params))
    return None if found and found[0].matched > cap else found


def _walk(guild_id: int, needle: str, *, want: int, seen: set[int], rows: int) -> list[Member] | None:
    """The first `want` present members containing `needle` in display order, if the first `rows` members of
    that order hold that many; else None (the others may lie anywhere further on)."""
    # Raw SQL: the ORM cannot put a LIMIT inside a FROM, and that inner LIMIT is what bounds the
    # walk. The match is an exact substring test on the row, as the reference ranking's.
    skip, skip_params = _not_seen(seen)
    if connection.vendor == "sqlite":
        # INDEXED BY: the statistics may tempt SQLite to the (guild, departed_at) index and a sort.
        # No outer ORDER BY: SQLite runs the walk as a co-routine in index order and stops at the
        # LIMIT; sorting again would make it read all `rows` first.
        sql = (
            f"SELECT {HIT_COLUMNS} FROM (SELECT {HIT_COLUMNS}, sort_key, search_text FROM members_member "  # noqa: S608
            "INDEXED BY member_guild_sort_key_uid WHERE guild_id = %s AND departed_at IS NULL "
            f"ORDER BY sort_key, user_id LIMIT %s) AS walk WHERE instr(search_text, %s) > 0{skip} LIMIT %s"
        )
        found = list(Member.objects.raw(sql, [guild_id, rows, needle, *skip_params, want]))
        return found if len(found) == want else None
    # The walk reads only what the index of migration 0013 holds, so it never visits a member's
    # row; the few it finds are read by id afterwards, in the same statement (the LIMITs keep the
    # walk a subquery of its own). PostgreSQL streams it, so its ORDER BY costs nothing and says
    # what we mean.
    sql = (
        f"SELECT {HIT_COLUMNS} FROM members_member JOIN (SELECT id AS found_id, user_id AS found_user_id, walk_key "  # noqa: S608
        'FROM (SELECT id, user_id, search_text, sort_key COLLATE "C" AS walk_key FROM members_member '
        'WHERE guild_id = %s AND departed_at IS NULL ORDER BY sort_key COLLATE "C", user_id LIMIT %s) AS walk '
        f"WHERE strpos(search_text, %s) > 0{skip} ORDER BY walk_key, user_id LIMIT %s) AS found "
        "ON members_member.id = found.found_id ORDER BY found.walk_key, found.found_user_id"
    )
    found = list(Member.objects.raw(sql, [guild_id, rows, needle, *skip_params, want]))
    return found if len(found) == want else None


def _contained(
    members: QuerySet,
    needle: str,
    *,
    guild_id: int,
    departed: bool,
    want: int,
    seen: set[int],
    planning: TierPlanning,
    over_cap: bool,
) -> list[Member]:
    """The first `want` members of `members` containing `needle`, in display order, leaving out `seen`.

    `over_cap`: more than planning.probe_cap members are known to contain `needle` (SQLite).
    Members who left are 1 % of a guild: fetching all of theirs is always short.
    """
    if connection.vendor == "postgresql":
        share, exact = _postgres_share(guild_id, needle)
        if not departed and _walks(share, planning, exact=exact):
            walked = _walk(guild_id, needle, want=want, seen=seen, rows=_walk_rows(guild_id, share, want, planning))
            if walked is not None:
                return walked
        # Rare, or the matches cluster late in the display order (a common display name): sort them all.
        return _postgres_sorted_matches(guild_id, needle, departed=departed, want=want, seen=seen)
    matched = planning.probe_cap + 1 if over_cap else _sqlite_count_matches(guild_id, needle, planning.probe_cap)
    if matched == 0:
        return []
    if matched > planning.probe_cap and not departed and not _sqlite_one_name_dominates(guild_id, needle):
        walked = _walk(guild_id, needle, want=want, seen=seen, rows=planning.walk_rows)
        if walked is not None:
            return walked
    return _sqlite_fetch_sorted(members, guild_id, needle, want=want, seen=seen)


def _walk_common_name(
    guild_id: int, folded: str, *, want: int, seen: set[int], planning: TierPlanning
) -> list[Member] | None:
    """The whole-name tier on PostgreSQL for a name many members have ("chloe", "@everyone"): walked.

    The names index finds all of them (7-10k in the 1M benchmark) and the first `want` in display
    order then cost 10-35 ms to sort; the display order, walked, holds one in a hundred or so.
    None when the name is not that common or the walk found too few: the names index answers then.
    A whole name is the text between two separators, so the walk's substring test is exact.
    """
    share = _postgres_name_share(folded)
    if not folded or not _walks(share, planning, exact=True):
        return None
    needle = SEP + folded + SEP
    return _walk(guild_id, needle, want=want, seen=seen, rows=_walk_rows(guild_id, share, want, planning))


def _sqlite_one_name_dominates(guild_id: int, needle: str, sample: int = 64) -> bool:
    """Whether most of the guild's members containing `needle` share one display name, judged from the
    first `sample`.

    Then they sit together at that name's place in the display order, and a walk from the
    start finds them only if the name sorts early: fetching and sorting them is surer.
    """
    sql, params = _fts_ids(guild_id, needle, sample)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT sort_key FROM members_member WHERE id IN ({sql})", params)  # noqa: S608 (_fts_ids')
        keys = [key for (key,) in cursor.fetchall()]
    return bool(keys) and max(keys.count(key) for key in set(keys)) * 4 >= len(keys) * 3


def _collect(guild: Guild, folded: str, limit: int, *, departed: bool, planning: TierPlanning) -> list[MemberHit]:
    """Tier by tier, for queries _few_matches could not answer at once."""
    members = Member.objects.filter(guild=guild, departed_at__isnull=not departed)
    hits: list[MemberHit] = []
    seen: set[int] = set()
    for tier in _tiers(folded):
        want = limit - len(hits)
        if want <= 0:
            break
        if tier.kind == "contains":
            found = _contained(
                members,
                tier.text,
                guild_id=guild.id,
                departed=departed,
                want=want,
                seen=seen,
                planning=planning,
                over_cap=tier.text == folded and wants_substrings(folded),  # _few_matches found more
            )
        else:
            found = None
            if tier.kind == "name" and not departed and connection.vendor == "postgresql":
                found = _walk_common_name(guild.id, tier.text, want=want, seen=seen, planning=planning)
            if found is None:
                if tier.kind == "name":
                    matching = _named(members, tier.text, guild.id)
                else:
                    matching = _display_prefix(members, tier.text)
                found = list(_ordered(matching.exclude(user_id__in=seen)).only(*HIT_FIELDS)[:want])
        for member in found:
            seen.add(member.user_id)
            hits.append(MemberHit.from_member(member))
    return hits


def parse_user_id(query: str) -> int | None:
    match = MENTION.match(query) or SNOWFLAKE.match(query)
    return int(match.group(1) if match.re is MENTION else match.group(0)) if match else None


def search_cache(
    guild: Guild, query: str, *, limit: int = DEFAULT_LIMIT, planning: TierPlanning | None = None
) -> tuple[list[MemberHit], list[MemberHit]]:
    """(present hits, departed hits) from the cache alone; `planning` changes only how fast."""
    planning = planning or PLANNING[connection.vendor]
    members = Member.objects.filter(guild=guild)
    user_id = parse_user_id(query)
    if user_id is not None:
        member = members.filter(user_id=user_id).only(*HIT_FIELDS).first()
        if member is None:
            return [], []
        hit = MemberHit.from_member(member)
        return ([], [hit]) if hit.departed else ([hit], [])
    folded = fold(query)
    common = False
    if connection.vendor == "postgresql" and wants_substrings(folded):
        share, exact = _postgres_share(guild.id, folded)
        common = _walks(share, planning, exact=exact)
    if wants_substrings(folded) and not common:
        ranked = _few_matches(guild, folded, limit=limit, cap=planning.probe_cap)
        if ranked is not None:
            hits = [MemberHit.from_member(member) for member in ranked]
            return [hit for hit in hits if not hit.departed], [hit for hit in hits if hit.departed]
    present = _collect(guild, folded, limit, departed=False, planning=planning)
    departed = []
    if len(present) < limit:
        departed = _collect(guild, folded, limit - len(present), departed=True, planning=planning)
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
