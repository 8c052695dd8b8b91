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
