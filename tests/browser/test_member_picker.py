"""The member picker in a real browser: keyboard, mouse, saving, in the dashboard and the admin; hostile names."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from members.models import Guild
from syncjobs.models import SyncJob
from tests.browser.conftest import DESKTOP, PHONE, screenshot, session_cookie_for
from tests.members.picker_data import GUILD_ID, MEMBERS, OTHER_GUILD_ID, make_guild, make_user

expect = pytest.importorskip("playwright.sync_api", reason="browser tests need playwright (requirements-dev)").expect

pytestmark = pytest.mark.django_db(transaction=True)

ALICE, BOB = 800000000000000001, 800000000000000003
IMG_PAYLOAD = "<img src=x onerror=alert(1)>"
SCRIPT_PAYLOAD = "<script>window.pwned = true; alert(2)</script>"
HOSTILE_MEMBERS = [
    (800000000000000011, "imgperson", IMG_PAYLOAD, None, False),
    (800000000000000012, "scriptperson", None, SCRIPT_PAYLOAD, False),
]


def search(page, text: str):
    """Type into the picker like a person and wait for htmx to bring the options."""
    combobox = page.get_by_role("combobox")
    combobox.click()
    combobox.press_sequentially(text, delay=30)
    listbox = page.get_by_role("listbox")
    expect(listbox).to_be_visible()
    return combobox, listbox


@pytest.fixture
def guild():
    return make_guild(members=MEMBERS + HOSTILE_MEMBERS)


def test_log_in_pick_a_member_with_the_keyboard_and_save_it(new_page, guild):
    synced = make_guild(OTHER_GUILD_ID, "Synced Guild", members=MEMBERS[:3])
    Guild.objects.filter(pk=synced.pk).update(last_synced_at=timezone.now() - timedelta(minutes=3))
    make_user("mod", guilds=(guild, synced))
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = new_page(viewport)
        page.goto("/")
        expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
        page.get_by_label("Username").fill("mod")
        page.get_by_label("Password").fill("pw-for-tests-1")
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("link", name="Picker Guild")).to_be_visible()
        screenshot(page, f"dashboard-{name}")
        page.get_by_role("link", name="Picker Guild").click()
        expect(page.get_by_role("heading", name="Pick a member")).to_be_visible()
        screenshot(page, f"guild-{name}")

        combobox, listbox = search(page, "alic")
        expect(listbox.get_by_role("option")).to_have_count(1)
        option = listbox.get_by_role("option").first
        expect(option).to_contain_text("Alice Liddell")
        expect(option).to_contain_text("@alice")
        expect(option).to_contain_text(str(ALICE))
        expect(option).to_contain_text("cache")
        expect(combobox).to_have_attribute("aria-expanded", "true")
        combobox.press("ArrowDown")
        expect(option).to_have_attribute("aria-selected", "true")
        expect(combobox).to_have_attribute("aria-activedescendant", option.get_attribute("id"))
        screenshot(page, f"picker-open-{name}")
        combobox.press("Enter")
        expect(listbox).to_be_hidden()
        expect(combobox).to_have_value("Alice Liddell")
        expect(page.locator("input[type=hidden][name=member]")).to_have_value(str(ALICE))

        page.get_by_role("button", name="Save").click()
        expect(page.get_by_text("Saved: Alice Liddell (@alice)")).to_be_visible()
        guild.refresh_from_db()
        assert guild.contact_member_id == ALICE
        Guild.objects.filter(pk=guild.pk).update(contact_member_id=None)


def test_mouse_escape_and_clear(new_page, guild):
    page = new_page(session_cookie=session_cookie_for(make_user("mod", guilds=(guild,))))
    page.goto(f"/guilds/{GUILD_ID}/")
    combobox = page.get_by_role("combobox")
    combobox.focus()  # an empty query: the first members, not nothing
    listbox = page.get_by_role("listbox")
    expect(listbox.get_by_text("Recently active members")).to_be_visible()
    expect(listbox.get_by_role("option")).to_have_count(len(MEMBERS) + len(HOSTILE_MEMBERS))
    screenshot(page, "picker-recent-desktop")

    combobox.press_sequentially("bo", delay=30)
    expect(listbox.get_by_role("option")).to_have_count(1)
    combobox.press("Escape")
    expect(listbox).to_be_hidden()
    expect(combobox).to_have_attribute("aria-expanded", "false")
    combobox.press("ArrowDown")
    expect(listbox).to_be_visible()
    listbox.get_by_role("option", name=re.compile("Bob")).click()
    expect(page.locator("input[type=hidden][name=member]")).to_have_value(str(BOB))
    expect(page.locator("[data-picker-chosen]")).to_contain_text(f"Bob @bob · {BOB}")

    page.get_by_role("button", name="Clear the chosen member").click()
    expect(page.locator("input[type=hidden][name=member]")).to_have_value("")
    expect(combobox).to_have_value("")
    expect(combobox).to_be_focused()

    combobox.press_sequentially("nobody-like-this", delay=10)
    expect(listbox.get_by_text("No member matches “nobody-like-this”.")).to_be_visible()


def test_hostile_names_render_as_text_and_run_nothing(new_page, guild):
    page = new_page(session_cookie=session_cookie_for(make_user("mod", guilds=(guild,))))
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"/guilds/{GUILD_ID}/")

    combobox, listbox = search(page, "person")
    expect(listbox.get_by_role("option")).to_have_count(2)
    expect(listbox).to_contain_text(IMG_PAYLOAD)
    expect(listbox).to_contain_text(SCRIPT_PAYLOAD)
    combobox.press("ArrowDown")
    combobox.press("Enter")
    expect(page.locator("[data-picker-chosen]")).to_contain_text(IMG_PAYLOAD)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text(f"Saved: {IMG_PAYLOAD} (@imgperson)")).to_be_visible()
    # The chosen name is also the combobox's value, and the contact line shows it.
    expect(page.get_by_role("combobox")).to_have_value(IMG_PAYLOAD)

    search(page, "scriptperson")
    page.wait_for_timeout(300)
    assert dialogs == []
    assert page.evaluate("window.pwned") is None
    assert page.locator('img[src="x"]').count() == 0
    assert page.evaluate("[...document.scripts].filter(s => s.textContent.includes('pwned')).length") == 0


def test_sync_panel_polls_while_a_run_is_active_and_stops_when_idle(new_page, guild):
    now = timezone.now()
    for hours, status, processed, calls, limited in ((26, "succeeded", 9, 3, 0), (2, "partial", 6, 2, 1)):
        SyncJob.objects.create(
            guild=guild,
            trigger="schedule",
            status=status,
            created_at=now - timedelta(hours=hours),
            started_at=now - timedelta(hours=hours),
            finished_at=now - timedelta(hours=hours, seconds=-4),
            processed=processed,
            api_calls=calls,
            rate_limit_hits=limited,
        )
    run = SyncJob.objects.create(
        guild=guild, trigger="schedule", status="running", started_at=timezone.now(), processed=100, expected=400
    )
    page = new_page(session_cookie=session_cookie_for(make_user("mod", guilds=(guild,))))
    polls = []
    page.on(
        "request",
        lambda request: (
            polls.append(request.url)
            if request.url.endswith(f"/guilds/{GUILD_ID}/") and request.headers.get("hx-request")
            else None
        ),
    )
    page.goto(f"/guilds/{GUILD_ID}/")
    panel = page.locator("#sync-panel")
    expect(panel).to_contain_text("100 of 400 members")
    screenshot(page, "guild-sync-running-desktop")
    phone = new_page(PHONE, session_cookie=session_cookie_for(make_user("mod2", guilds=(guild,))))
    phone.goto(f"/guilds/{GUILD_ID}/")
    expect(phone.locator("#sync-panel")).to_contain_text("100 of 400 members")
    screenshot(phone, "guild-sync-running-phone")
    phone.close()
    page.wait_for_timeout(2500)
    assert len(polls) >= 2

    SyncJob.objects.filter(pk=run.pk).update(processed=400, status="succeeded", finished_at=timezone.now())
    expect(panel).to_contain_text("Succeeded", timeout=5000)
    expect(panel).to_contain_text("400 of 400 members")
    settled = len(polls)
    page.wait_for_timeout(2500)
    assert len(polls) == settled, "the panel kept polling after the run ended"

    page.get_by_role("button", name="Sync now").click()
    expect(panel).to_contain_text("queued.")
    queued = SyncJob.objects.get(status="queued")
    assert (queued.trigger, queued.requested_by) == ("dashboard", "mod")
    page.wait_for_timeout(1500)
    assert len(polls) > settled, "a queued run should be polled again"


def test_pick_a_member_in_the_admin(new_page, guild):
    cookie = session_cookie_for(make_user("root", superuser=True))
    for name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        page = new_page(viewport, session_cookie=cookie)
        page.goto(f"/admin/members/guild/{GUILD_ID}/change/")
        combobox, listbox = search(page, "bo")
        expect(listbox.get_by_role("option")).to_have_count(1)
        combobox.press("ArrowDown")
        screenshot(page, f"admin-{name}")
        combobox.press("Enter")
        expect(page.locator("input[type=hidden][name=contact_member_id]")).to_have_value(str(BOB))
        page.locator("input[name=_save]").click()
        expect(page.locator(".messagelist")).to_contain_text("was changed successfully")
        guild.refresh_from_db()
        assert guild.contact_member_id == BOB
        Guild.objects.filter(pk=guild.pk).update(contact_member_id=None)
