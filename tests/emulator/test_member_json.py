"""Member lists from the member JSON store are exactly what the generator gives, whatever changed at run time."""

import orjson
import pytest

from guildhub.emulator import generator as gen
from guildhub.emulator.member_json import BLOCK
from guildhub.emulator.state import GuildSpec, World

MEMBERS = 2 * BLOCK + 345


def world() -> World:
    # One world per test: the bot's own member carries the time it was made.
    return World(seed=7, guilds=[GuildSpec(members=MEMBERS, roles=4)], member_json=True)


def pages(guild, limit: int) -> list[bytes]:
    """Every page of `limit`, through list_members_json, following the last user id as a client does."""
    out, after = [], 0
    while True:
        body, count, last = guild.list_members_json(after=after, limit=limit)
        assert count == len(orjson.loads(body))
        out.append(body)
        if count < limit:
            return out
        after = last


def reference(guild, limit: int) -> list[bytes]:
    out, after = [], 0
    while True:
        members = guild.list_members(after=after, limit=limit)
        out.append(orjson.dumps(members))
        if len(members) < limit:
            return out
        after = int(members[-1]["user"]["id"])


def changed(guild) -> None:
    """Edits, removals and additions spread over the blocks, as the emulator's control API makes them."""
    uids = [gen.user_id(index, guild.seed) for index in (0, 1, 999, 1000, 1001, 1500, MEMBERS - 1)]
    edited = guild.member(uids[2])
    guild.put_member({**edited, "nick": 'Ünïcode "quoted" \\ nick'})
    guild.put_member({**guild.member(uids[5]), "nick": None, "roles": []})
    guild.remove_member(uids[0])
    guild.remove_member(uids[3])
    guild.remove_member(uids[6])
    for between in (uids[1] + 1, uids[4] + 5, uids[6] + 10):  # ids between generated ones, and after the last
        guild.put_member(
            gen.member_object(
                gen.user_object(between, f"added{between}"),
                nick=None,
                roles=[],
                joined_at="2024-01-01T00:00:00.000000+00:00",
            )
        )


@pytest.mark.parametrize("limit", [1, 7, 1000])
def test_pages_equal_the_generated_pages(limit):
    kept = next(iter(world().guilds.values()))
    assert kept.member_json is not None
    assert pages(kept, limit) == reference(kept, limit)


@pytest.mark.parametrize("limit", [3, 1000])
def test_pages_follow_edits_removals_and_additions(limit):
    kept = next(iter(world().guilds.values()))
    changed(kept)
    assert pages(kept, limit) == reference(kept, limit)


def test_a_change_of_roles_makes_the_store_stale():
    kept = next(iter(world().guilds.values()))
    before = pages(kept, 1000)
    kept.roles = [role for role in kept.roles if int(role["id"]) != kept.role_ids[0]]
    assert not kept.member_json.current_for(kept)
    after = pages(kept, 1000)
    assert after == reference(kept, 1000)
    assert after != before


def test_after_beyond_every_member_gives_an_empty_page():
    kept = next(iter(world().guilds.values()))
    assert kept.list_members_json(after=2**63 - 1, limit=10) == (b"[]", 0, 0)
