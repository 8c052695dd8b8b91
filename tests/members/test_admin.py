"""The member cache's admin: usable on big guilds, searched through indexes, syncs started from it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from members.models import Guild, Member, Role
from syncjobs.models import SyncJob
from tests.factories import SNOWFLAKE_BASE, make_guild, make_members

pytestmark = pytest.mark.django_db

MEMBERS = "/admin/members/member/"
GUILDS = "/admin/members/guild/"


def shown_user_ids(response) -> set[int]:
    return {member.user_id for member in response.context["cl"].result_list}


@pytest.fixture
def big_guild() -> Guild:
    guild = make_guild(name="Big Guild", approximate_member_count=2000)
    make_members(guild, 2000)
    return guild


def test_member_list_of_2000_shows_a_page_without_a_query_per_row(
    admin_client, big_guild, django_assert_max_num_queries
):
    with django_assert_max_num_queries(10):
        response = admin_client.get(MEMBERS)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 100
    content = response.content.decode()
    assert "2000 members" in content
    assert "Member 1" in content and "member00001" in content and str(SNOWFLAKE_BASE + 1) in content


def test_member_list_counts_at_most_a_capped_number_of_rows(admin_client, big_guild, monkeypatch):
    from guildhub.pagination import EstimatedCountPaginator

    monkeypatch.setattr(EstimatedCountPaginator, "exact_limit", 500)

    response = admin_client.get(MEMBERS)

    content = response.content.decode()
    # SQLite: "500+" (counted up to the cap); PostgreSQL: "about N" (the planner's estimate).
    assert "500+ members" in content or "about " in content


def test_member_search_by_user_id_finds_the_member(admin_client, big_guild):
    response = admin_client.get(MEMBERS, {"q": str(SNOWFLAKE_BASE + 1234)})

    assert shown_user_ids(response) == {SNOWFLAKE_BASE + 1234}


def test_member_search_by_username_prefix_finds_the_members_it_starts(admin_client, big_guild):
    response = admin_client.get(MEMBERS, {"q": "member0123"})

    assert shown_user_ids(response) == {SNOWFLAKE_BASE + n for n in range(1230, 1240)}


def test_member_search_by_username_prefix_finds_the_members_of_every_guild(admin_client, big_guild):
    """PostgreSQL's text index keys trigrams by guild (migration 0021): the admin looks in each guild."""
    other = make_guild(name="Other Guild")
    make_members(other, 20, start=1225)
    empty = make_guild(name="No Members")

    response = admin_client.get(MEMBERS, {"q": "member0123"})

    assert {(m.guild_id, m.user_id) for m in response.context["cl"].result_list} == {
        (guild.id, SNOWFLAKE_BASE + n) for guild in (big_guild, other) for n in range(1230, 1240)
    }
    filtered = admin_client.get(MEMBERS, {"q": "member0123", "guild__id__exact": str(other.id)})
    assert shown_user_ids(filtered) == {SNOWFLAKE_BASE + n for n in range(1230, 1240)}
    assert shown_user_ids(admin_client.get(MEMBERS, {"q": "member0123", "guild__id__exact": str(empty.id)})) == set()


def test_member_search_by_display_name_prefix_ignores_the_case_of_the_first_letter(admin_client, big_guild):
    response = admin_client.get(MEMBERS, {"q": "member 199"})

    assert shown_user_ids(response) == {SNOWFLAKE_BASE + n for n in (199, *range(1990, 2000))}


@pytest.mark.postgres_only
def test_member_search_by_display_name_reads_the_pickers_index_on_postgresql(admin_client, big_guild):
    """The sort key in the "C" collation (migration 0013): 0014 dropped the other one.

    One character: the display-name range alone (from two, the start of any name joins it). One
    member of 2001 starts with it, so the guild's whole list is the plan the index must beat.
    """
    from django.contrib.admin.sites import site
    from django.db import connection
    from django.test import RequestFactory

    Member.objects.create(guild=big_guild, user_id=SNOWFLAKE_BASE + 5000, username="zed", display_name="Zed")
    admin = site._registry[Member]
    found, _ = admin.get_search_results(RequestFactory().get(MEMBERS), Member.objects.all(), "Z")
    sql, params = found.query.sql_with_params()
    # Whatever this cluster's default collation is, the range must be in "C", the index's.
    assert 'sort_key" COLLATE "C" >=' in sql, sql
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE members_member")  # the planner must know the guild's 2001 rows, not guess 1
        cursor.execute("SET LOCAL enable_seqscan = off")  # a scan shows up anyway when no index can serve
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan on members_member" not in plan and "member_guild_walk" in plan, plan


def test_member_search_matches_the_start_of_a_name_only(admin_client, big_guild):
    response = admin_client.get(MEMBERS, {"q": "ember0123"})

    assert shown_user_ids(response) == set()


def test_member_search_finds_the_start_of_any_name_ignoring_case_and_accents(admin_client, big_guild):
    nicked = Member.objects.create(
        guild=big_guild, user_id=SNOWFLAKE_BASE + 9001, username="plainuser", global_name=None, nick="Zoë Quinn"
    )
    nicked.display_name = "Zoë Quinn"
    nicked.save()
    global_named = Member.objects.create(
        guild=big_guild, user_id=SNOWFLAKE_BASE + 9002, username="ghost", global_name="ÉLODIE", nick="Nickname"
    )
    global_named.display_name = "Nickname"
    global_named.save()

    assert shown_user_ids(admin_client.get(MEMBERS, {"q": "ZOE Q"})) == {nicked.user_id}  # nickname, display name
    assert shown_user_ids(admin_client.get(MEMBERS, {"q": "elod"})) == {global_named.user_id}  # global name
    assert shown_user_ids(admin_client.get(MEMBERS, {"q": "PLAINU"})) == {nicked.user_id}  # username, any case
    assert shown_user_ids(admin_client.get(MEMBERS, {"q": "lainuser"})) == set()  # the start only


def test_member_search_for_nothing_searchable_finds_nobody(admin_client, big_guild):
    assert shown_user_ids(admin_client.get(MEMBERS, {"q": "\u0301\u0301"})) == set()


def test_member_search_takes_hostile_input_without_an_error(admin_client, big_guild):
    for query in ["\x00", "a\x00b", "%_\\", "' OR 1=1 --", "9" * 40, "\U0010ffff", "\ud7ff"]:
        response = admin_client.get(MEMBERS, {"q": query})
        assert response.status_code == 200, query


def test_member_list_filters_by_guild_bot_flag_and_departure(admin_client, big_guild):
    other = make_guild(name="Other Guild")
    make_members(other, 3, start=5000)
    make_members(other, 2, start=6000, is_bot=True)
    make_members(other, 1, start=7000, departed_at=timezone.now())

    in_other = admin_client.get(MEMBERS, {"guild__id__exact": other.pk})
    bots = admin_client.get(MEMBERS, {"guild__id__exact": other.pk, "is_bot__exact": "1"})
    departed = admin_client.get(MEMBERS, {"guild__id__exact": other.pk, "departed": "yes"})
    present = admin_client.get(MEMBERS, {"guild__id__exact": other.pk, "departed": "no"})

    assert len(shown_user_ids(in_other)) == 6
    assert shown_user_ids(bots) == {SNOWFLAKE_BASE + 6000, SNOWFLAKE_BASE + 6001}
    assert shown_user_ids(departed) == {SNOWFLAKE_BASE + 7000}
    assert len(shown_user_ids(present)) == 5


def test_members_are_read_only_in_the_admin(admin_client, big_guild):
    member = Member.objects.get(user_id=SNOWFLAKE_BASE + 1)

    assert admin_client.get(f"{MEMBERS}add/").status_code == 403
    view = admin_client.get(f"{MEMBERS}{member.pk}/change/")
    assert view.status_code == 200 and b'name="_save"' not in view.content
    assert admin_client.post(f"{MEMBERS}{member.pk}/delete/", {"post": "yes"}).status_code == 403


def test_guild_list_shows_discords_member_count_without_counting_members(
    admin_client, big_guild, django_assert_max_num_queries
):
    make_guild(name="Never Synced")

    with django_assert_max_num_queries(8):
        response = admin_client.get(GUILDS)

    content = response.content.decode()
    assert "Big Guild" in content and "Never Synced" in content
    assert str(big_guild.pk) in content and ">2000<" in content


def test_guild_sync_settings_can_be_edited(admin_client, big_guild):
    response = admin_client.post(
        f"{GUILDS}{big_guild.pk}/change/",
        {
            "name": "Big Guild",
            "is_active": "on",
            "sync_interval": "01:00:00",
            "sync_page_size": "250",
            "sync_time_budget": "00:02:00",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    big_guild.refresh_from_db()
    assert big_guild.sync_enabled is False
    assert big_guild.sync_interval == timedelta(hours=1)
    assert (big_guild.sync_page_size, big_guild.sync_time_budget) == (250, timedelta(minutes=2))


def test_guild_page_size_above_discords_limit_is_refused(admin_client, big_guild):
    response = admin_client.post(
        f"{GUILDS}{big_guild.pk}/change/",
        {
            "name": "Big Guild",
            "is_active": "on",
            "sync_interval": "00:30:00",
            "sync_page_size": "5000",
            "sync_time_budget": "00:05:00",
        },
    )

    assert response.status_code == 200
    assert "sync_page_size" in response.context["adminform"].form.errors


def sync_action(client, guild: Guild, action: str = "sync_members_now") -> list[str]:
    response = client.post(GUILDS, {"action": action, "_selected_action": [guild.pk]}, follow=True)
    assert response.status_code == 200
    return [str(message) for message in response.context["messages"]]


def test_sync_members_now_queues_a_sync_for_the_cluster(admin_client, big_guild, admin_user):
    messages = sync_action(admin_client, big_guild)

    job = SyncJob.objects.get(guild=big_guild)
    assert (job.status, job.kind, job.trigger, job.full) == ("queued", "members", "admin", False)
    assert job.requested_by == admin_user.username
    assert messages == [f"Big Guild: member sync #{job.pk} queued."]


def test_sync_members_now_twice_reports_the_queued_sync_instead_of_queuing_another(admin_client, big_guild):
    sync_action(admin_client, big_guild)
    messages = sync_action(admin_client, big_guild)

    job = SyncJob.objects.get(guild=big_guild)
    assert messages == [f"Big Guild: member sync #{job.pk} is already queued (0 members so far); no new sync queued."]


def test_full_resync_queues_a_sync_that_ignores_the_checkpoint(admin_client, big_guild):
    sync_action(admin_client, big_guild, "full_resync")

    assert SyncJob.objects.get(guild=big_guild).full is True


def test_sync_members_now_skips_a_guild_the_bot_has_left(admin_client):
    gone = make_guild(name="Gone", is_active=False)

    messages = sync_action(admin_client, gone)

    assert not SyncJob.objects.exists()
    assert messages == ["Gone: the bot is not in this guild; not synced."]


def test_role_list_shows_roles_and_filters_by_guild(admin_client, big_guild):
    other = make_guild(name="Other Guild")
    Role.objects.create(guild=big_guild, role_id=1, name="Moderator", position=5)
    Role.objects.create(guild=other, role_id=2, name="Helper", position=1, deleted_at=timezone.now())

    everything = admin_client.get("/admin/members/role/")
    in_big = admin_client.get("/admin/members/role/", {"guild__id__exact": big_guild.pk})

    assert {r.name for r in everything.context["cl"].result_list} == {"Moderator", "Helper"}
    assert {r.name for r in in_big.context["cl"].result_list} == {"Moderator"}
    assert admin_client.get("/admin/members/role/add/").status_code == 403


def test_the_start_of_a_name_across_hundreds_of_guilds(big_guild):
    """The admin's search names every guild: PostgreSQL looks the text up in each guild's keys, SQLite
    reads every range at once past FTS_GUILD_READS (it allows 500 terms in a UNION ALL)."""
    from members import selectors

    guild = big_guild
    other = make_guild(name="Other Guild")
    make_members(other, 20, start=1225)
    member = Member.objects.get(guild=guild, user_id=SNOWFLAKE_BASE + 1230)
    name = "member0123"
    guild_ids = [*range(1, 700), guild.id]
    found = selectors.with_a_name_starting(Member.objects.all(), name, guild_ids)
    expected = Member.objects.filter(guild=guild, search_text__contains="\x1f" + name)
    assert set(found.values_list("id", flat=True)) == set(expected.values_list("id", flat=True)) and member in found
    assert not found.filter(guild=other).exists()
    few = selectors.with_a_name_starting(Member.objects.all(), name, [guild.id, other.id])
    assert few.filter(guild=other).exists() and few.filter(guild=guild).count() == expected.count()
