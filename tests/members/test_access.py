"""Who sees which guild: superusers all, other users what they were granted, nobody else anything."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError
from django.http import Http404

from members.access import get_guild_for_user_or_404, guilds_for
from members.models import GuildAccess
from tests.members.picker_data import OTHER_GUILD_ID, make_guild, make_user

pytestmark = pytest.mark.django_db

FULLWIDTH_700 = "\uff17\uff10\uff10"  # digits to str.isdigit(), not to a database


@pytest.fixture
def guilds():
    return make_guild(), make_guild(OTHER_GUILD_ID, "Other Guild", members=[])


def test_superuser_sees_every_guild(guilds):
    admin = make_user("root", superuser=True)
    assert set(guilds_for(admin)) == set(guilds)


def test_user_sees_only_the_guilds_granted_to_them(guilds):
    granted, _not_granted = guilds
    user = make_user("mod", guilds=(granted,))
    assert list(guilds_for(user)) == [granted]


def test_user_without_grants_and_anonymous_see_nothing(guilds):
    assert list(guilds_for(make_user("nobody"))) == []
    assert list(guilds_for(AnonymousUser())) == []


def test_inactive_superuser_sees_nothing(guilds):
    admin = make_user("gone", superuser=True)
    admin.is_active = False
    assert list(guilds_for(admin)) == []


def test_a_user_is_granted_a_guild_once(guilds):
    user = make_user("twice", guilds=(guilds[0],))
    with pytest.raises(IntegrityError):
        GuildAccess.objects.create(user=user, guild=guilds[0])


def test_granted_guild_is_returned_by_id_as_text_or_int(guilds):
    granted, _ = guilds
    user = make_user("mod", guilds=(granted,))
    assert get_guild_for_user_or_404(user, str(granted.pk)) == granted
    assert get_guild_for_user_or_404(user, granted.pk) == granted


@pytest.mark.parametrize(
    "guild_id",
    [str(OTHER_GUILD_ID), "12345", "abc", "", "-1", "0", "1e5", FULLWIDTH_700, str(2**63), "9" * 40, "1 ", "0x10"],
)
def test_unknown_malformed_and_not_granted_ids_are_all_404(guilds, guild_id):
    user = make_user("mod", guilds=(guilds[0],))
    with pytest.raises(Http404):
        get_guild_for_user_or_404(user, guild_id)
