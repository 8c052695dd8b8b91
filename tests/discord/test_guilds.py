"""Reading Discord's member objects: what GuildHub stores, and a clear error for what it cannot read."""

import pytest

from guildhub.discord.guilds import UnreadablePayload, member_from_json, members_from_json

MEMBER = {"user": {"id": "700000000000000001", "username": "ada", "global_name": None}, "nick": "Ada", "roles": []}


def test_a_page_of_members_is_read_in_order():
    other = {**MEMBER, "user": {**MEMBER["user"], "id": "700000000000000002"}}
    assert members_from_json([MEMBER, other], "a member page") == [member_from_json(MEMBER), member_from_json(other)]


@pytest.mark.parametrize(
    "page",
    [[{"nick": "no user"}], [{"user": {"id": "twelve"}}], [None], "not a list", None, [MEMBER, {"user": []}]],
)
def test_a_page_that_is_not_what_discord_documents_is_refused_naming_what_came(page):
    with pytest.raises(UnreadablePayload, match=r"^Discord sent a member page GuildHub cannot read \("):
        members_from_json(page, "a member page")


def test_role_ids_are_strings_once_each_in_numeric_order():
    data = {**MEMBER, "roles": ["10", 9, "10", "700000000000000003", 100]}
    assert member_from_json(data).role_ids == ("9", "10", "100", "700000000000000003")
    assert member_from_json({**MEMBER, "roles": None}).role_ids == ()
    assert member_from_json({k: v for k, v in MEMBER.items() if k != "roles"}).role_ids == ()


def test_names_lose_nul_and_are_cut_at_the_columns_length_only_when_they_must():
    fits = "x" * 100
    data = {"user": {"id": "700000000000000001", "username": fits, "global_name": "a\x00b" + "y" * 150}, "nick": None}
    member = member_from_json({**data, "avatar": "h" * 80})
    assert member.username == fits
    assert member.global_name == "ab" + "y" * 98
    assert member.display_name == member.global_name  # no nickname: the global name
    assert member.avatar == "h" * 64


def test_members_compare_and_hash_by_their_data_not_their_digest():
    read = member_from_json(MEMBER)
    by_hand = type(read)(**{**{f: getattr(read, f) for f in read.__slots__}, "digest": None})
    assert read == by_hand and hash(read) == hash(by_hand)
