"""The member picker: its options endpoint, its widget and MemberChoiceField."""

import pytest
from django import forms
from django.test import Client
from django.utils import timezone

from members.forms import MemberChoiceField, MemberIdChoiceField
from members.models import Guild, Member
from members.widgets import MemberSelect
from tests.members.picker_data import GUILD_ID, HOSTILE_NAME, OTHER_GUILD_ID, make_guild, make_user

pytestmark = pytest.mark.django_db

ALICE = 800000000000000001
BOT = 800000000000000007


@pytest.fixture
def guild():
    return make_guild()


@pytest.fixture
def moderator(guild):
    return make_user("mod", guilds=(guild,))


@pytest.fixture
def client_for(moderator) -> Client:
    client = Client()
    client.force_login(moderator)
    return client


def options(client: Client, q: str, guild_id=GUILD_ID):
    return client.get(f"/guilds/{guild_id}/members/options", {"q": q})


# -- the options endpoint ------------------------------------------------------


def test_options_list_matching_members_with_name_username_id_and_source(client_for):
    response = options(client_for, "ali")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('role="option"') == 2
    assert "Alice Liddell" in html and "@alice" in html and str(ALICE) in html
    assert "@alistair" in html and "@bob" not in html
    assert 'class="mp-source mp-source-cache">cache<' in html


def test_options_mark_bots_and_departed_members(client_for, guild):
    Member.objects.filter(guild=guild, username="bob").update(departed_at=timezone.now())
    bot = options(client_for, "guildhub").content.decode()
    assert "mp-badge-bot" in bot
    departed = options(client_for, "bob").content.decode()
    assert "mp-badge-departed" in departed and ">departed<" in departed


def test_empty_query_shows_first_members_not_nothing(client_for):
    html = options(client_for, "").content.decode()
    assert "Recently active members" in html
    assert html.count('role="option" aria-selected') == 7


def test_no_match_says_so(client_for):
    html = options(client_for, "zzzz").content.decode()
    assert "No member matches “zzzz”." in html
    assert "aria-selected" not in html


def test_query_over_100_characters_is_a_400_with_a_message(client_for):
    response = options(client_for, "a" * 101)
    assert response.status_code == 400
    assert "at most 100 characters" in response.content.decode()
    assert options(client_for, "a" * 100).status_code == 200


LITERAL_QUERIES = ["%", "_", "100%", "real_name", "'", '"', "\\", "O'Brien", "back\\slash", "%%__", "'; --"]


@pytest.mark.parametrize("q", LITERAL_QUERIES)
def test_wildcards_quotes_and_backslashes_match_literally(client_for, q):
    response = options(client_for, q)
    assert response.status_code == 200
    html = response.content.decode()
    matched = {line for line in html.split() if line.startswith("data-username=")}
    if q in ("100%", "real_name"):
        assert matched == {'data-username="percent"'}
    elif q in ("O'Brien", "back\\slash"):
        assert matched == {'data-username="quoted"'}
    elif q in ("%%__", "'; --", "_", "%"):
        assert matched <= {'data-username="percent"'}  # "_" and "%" occur only in "100% real_name"


def test_hostile_names_are_rendered_as_text(client_for):
    html = options(client_for, "hostile").content.decode()
    assert "<script>" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert HOSTILE_NAME not in html


def test_options_need_a_login(guild):
    response = Client().get(f"/guilds/{GUILD_ID}/members/options", {"q": "ali"})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_options_for_an_htmx_request_without_login_send_the_page_to_login(guild):
    response = Client().get(
        f"/guilds/{GUILD_ID}/members/options",
        {"q": "ali"},
        headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver/guilds/{GUILD_ID}/"},
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"/accounts/login/?next=/guilds/{GUILD_ID}/"


@pytest.mark.parametrize("guild_id", [str(OTHER_GUILD_ID), "999", "abc", "1" * 30, str(2**63)])
def test_options_of_unknown_malformed_or_not_granted_guild_are_404(client_for, guild_id):
    make_guild(OTHER_GUILD_ID, "Not yours", members=[])
    assert options(client_for, "ali", guild_id=guild_id).status_code == 404


def test_options_refuse_post(client_for):
    assert client_for.post(f"/guilds/{GUILD_ID}/members/options", {"q": "a"}).status_code == 405


@pytest.mark.django_db(transaction=True)  # the shared rate limiter writes from the search's own thread
def test_live_discord_search_answers_when_the_cache_is_empty(client, discord_settings, emulator_guild):
    guild = Guild.objects.create(id=emulator_guild.id, name="Empty cache")
    client.force_login(make_user("mod", guilds=(guild,)))
    someone = next(m for m in emulator_guild.list_members(after=0, limit=50) if not m["user"].get("bot"))
    prefix = someone["user"]["username"][:4]
    html = options(client, prefix, guild_id=guild.pk).content.decode()
    assert "Discord live" in html
    assert someone["user"]["id"] in html
    assert Member.objects.filter(guild=guild, user_id=int(someone["user"]["id"])).exists()


# -- the widget ------------------------------------------------------------------


def test_widget_renders_hidden_value_and_aria_combobox(guild):
    html = MemberSelect(guild).render("member", ALICE, attrs={"id": "id_member"})
    assert f'type="hidden" name="member" value="{ALICE}"' in html
    assert 'role="combobox"' in html and 'id="id_member"' in html
    assert 'aria-controls="id_member-listbox"' in html and 'aria-expanded="false"' in html
    assert 'role="listbox"' in html and 'id="id_member-listbox"' in html
    assert f'hx-get="/guilds/{GUILD_ID}/members/options"' in html
    assert 'hx-trigger="input changed delay:150ms, focus"' in html
    assert 'value="Alice Liddell"' in html  # the chosen member's name, before any search


def test_widget_escapes_a_hostile_chosen_name(guild):
    hostile = Member.objects.get(guild=guild, username="hostile")
    html = MemberSelect(guild).render("member", hostile.user_id)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_widget_without_guild_is_disabled(db):
    html = MemberSelect().render("member", None)
    assert "disabled" in html and "hx-get" not in html


# -- the field -------------------------------------------------------------------


class PickForm(forms.Form):
    member = MemberChoiceField()

    def __init__(self, *args, guild, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].guild = guild


def test_field_cleans_to_the_member(guild):
    form = PickForm({"member": str(ALICE)}, guild=guild)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["member"] == Member.objects.get(guild=guild, user_id=ALICE)


def test_field_refuses_a_member_of_another_guild(guild):
    other = make_guild(OTHER_GUILD_ID, "Other", members=[(800000000000000099, "stranger", None, None, False)])
    form = PickForm({"member": "800000000000000099"}, guild=guild)
    assert not form.is_valid()
    assert "is not a member of Picker Guild" in form.errors["member"][0]
    assert PickForm({"member": "800000000000000099"}, guild=other).is_valid()


NOT_USER_IDS = ["abc", "-5", "0", "1.5", "<@800000000000000001>", "9" * 25, str(2**63), "\uff11\uff12\uff13"]


@pytest.mark.parametrize("value", NOT_USER_IDS)
def test_field_refuses_what_is_not_a_user_id(guild, value):
    form = PickForm({"member": value}, guild=guild)
    assert not form.is_valid()
    assert form.errors["member"] == ["Choose a member from the list."]


def test_field_is_required_unless_told_otherwise(guild):
    assert PickForm({"member": ""}, guild=guild).errors["member"] == ["This field is required."]


def test_field_refuses_departed_members_unless_allowed(guild):
    Member.objects.filter(guild=guild, user_id=ALICE).update(departed_at=timezone.now())
    form = PickForm({"member": str(ALICE)}, guild=guild)
    assert not form.is_valid() and "has left Picker Guild" in form.errors["member"][0]
    field = MemberChoiceField(guild=guild, allow_departed=True)
    assert field.clean(str(ALICE)).user_id == ALICE


def test_id_field_cleans_to_the_user_id(guild):
    assert MemberIdChoiceField(guild=guild).clean(f" {BOT} ") == BOT
    assert MemberIdChoiceField(guild=guild, required=False).clean("") is None


def test_field_tells_when_the_choice_changed(guild):
    field = MemberChoiceField(guild=guild)
    assert not field.has_changed(ALICE, str(ALICE))
    assert field.has_changed(ALICE, str(BOT))
    assert field.has_changed(None, str(BOT))
