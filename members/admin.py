"""Admin for the member cache, built to stay fast with a million members.

Members and roles are a mirror of Discord: every field is rewritten by the next
sync, so the admin shows them read-only. Guilds hold GuildHub's own sync settings.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from guildhub.pagination import EstimatedCountPaginator
from members.admin_mixins import MemberPickerAdminMixin
from members.models import Guild, GuildAccess, Member, Role
from members.search_text import fold
from members.selectors import display_key, with_a_display_name_starting, with_a_name_starting
from members.tasks import queue_member_sync
from syncjobs.models import SyncJob

BIGINT_MAX = 2**63 - 1


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Guild)
class GuildAdmin(MemberPickerAdminMixin, admin.ModelAdmin):
    list_display = ("name", "id", "member_count", "last_synced_at", "is_active", "sync_enabled")
    list_filter = ("is_active", "sync_enabled")
    search_fields = ("name",)  # and the id: see get_search_results
    readonly_fields = ("icon", "approximate_member_count", "last_synced_at", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("id", "name", "icon", "is_active", "approximate_member_count", "contact_member_id")}),
        ("Member sync", {"fields": ("sync_enabled", "sync_interval", "sync_page_size", "sync_time_budget")}),
        ("History", {"fields": ("last_synced_at", "created_at", "updated_at")}),
    )
    member_picker_fields = ("contact_member_id",)
    actions = ("sync_members_now", "full_resync")

    @admin.display(description="members", ordering="approximate_member_count")
    def member_count(self, guild: Guild) -> int | None:
        """Discord's approximate count, stored by each sync: no COUNT over the members."""
        return guild.approximate_member_count

    def get_readonly_fields(self, request: HttpRequest, obj: Guild | None = None) -> tuple[str, ...]:
        # The id is Discord's: given when a guild is added by hand, fixed after.
        return (*self.readonly_fields, "id") if obj is not None else self.readonly_fields

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        term = clean_search_term(search_term)
        if not term:
            return queryset, False
        matches = Q(name__icontains=term)
        if is_bigint(term):
            matches |= Q(pk=int(term))
        return queryset.filter(matches), False

    @admin.action(description="Sync members now", permissions=["change"])
    def sync_members_now(self, request: HttpRequest, queryset: QuerySet[Guild]) -> None:
        self._queue(request, queryset, full=False)

    @admin.action(description="Full resync (ignore the checkpoint of an unfinished pass)", permissions=["change"])
    def full_resync(self, request: HttpRequest, queryset: QuerySet[Guild]) -> None:
        self._queue(request, queryset, full=True)

    def _queue(self, request: HttpRequest, guilds: QuerySet[Guild], *, full: bool) -> None:
        for guild in guilds:
            if not guild.is_active:
                self.message_user(request, f"{guild.name}: the bot is not in this guild; not synced.", messages.WARNING)
                continue
            job, created = queue_member_sync(
                guild, trigger=SyncJob.Trigger.ADMIN, requested_by=request.user.get_username(), full=full
            )
            if created:
                kind = "full member sync" if full else "member sync"
                self.message_user(request, f"{guild.name}: {kind} #{job.pk} queued.", messages.SUCCESS)
            else:
                self.message_user(
                    request,
                    f"{guild.name}: member sync #{job.pk} is already {job.status} "
                    f"({job.processed:,} members so far); no new sync queued.",
                    messages.WARNING,
                )


class DepartedFilter(admin.SimpleListFilter):
    title = "membership"
    parameter_name = "departed"

    def lookups(self, request, model_admin):
        return (("no", "present"), ("yes", "departed"))

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.present()
        if self.value() == "yes":
            return queryset.departed()
        return queryset


@admin.register(Member)
class MemberAdmin(ReadOnlyAdmin):
    list_display = ("display_name", "username", "user_id", "is_bot", "departed", "guild")
    list_filter = ("guild", "is_bot", DepartedFilter)
    list_select_related = ("guild",)
    # The (guild, user_id) unique index serves this order: a page is an index range, never a sort.
    ordering = ("guild_id", "user_id")
    sortable_by = ()
    search_fields = ("user_id", "username", "display_name")  # searched by get_search_results below
    search_help_text = (
        "A user id, or the start of a username, global name, nickname or display name "
        "(any case or accents; two characters or more for all but display names)."
    )
    paginator = EstimatedCountPaginator
    show_full_result_count = False

    @admin.display(boolean=True, description="departed")
    def departed(self, member: Member) -> bool:
        return member.is_departed

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str):
        """Only lookups an index answers: user id exact, the start of a display name or of any name.

        The admin's own `^field` is `UPPER(field) LIKE 'X%'` on PostgreSQL and a LIKE
        without NOCASE on SQLite: neither uses an index, so it reads every row.
        A display-name prefix as a range (`sort_key >= 'abc' AND sort_key < 'abd'`) with
        the guild ids spelled out hits the (guild, sort_key, user_id) index once per
        guild (PostgreSQL's in the "C" collation); the start of a username, global name
        or nickname comes from the search's text index (FTS5 on SQLite, trigrams on
        PostgreSQL). No index on usernames alone: every sync would pay for it on every
        member it writes.
        """
        term = clean_search_term(search_term)
        if not term:
            return queryset, False
        # Display names from the picker's (guild, sort_key, user_id) index; any name's start
        # (username, global name, nickname) from the text index; both folded like the picker's.
        folded = fold(term)
        guild_ids = list(Guild.objects.values_list("id", flat=True))
        matches = Q()
        queryset = queryset.alias(display_key=display_key())
        if folded:
            # A range of the picker's index, exact in code point order; startswith restates it.
            matches = with_a_display_name_starting(folded) & Q(display_key__startswith=folded)
        if len(folded) >= 2:
            matches |= Q(pk__in=with_a_name_starting(Member.objects.all(), term, guild_ids).values("pk"))
        if is_bigint(term):
            matches |= Q(user_id=int(term))
        if not matches:  # nothing left to match by (only accents, say): nobody, not everybody
            return queryset.none(), False
        return queryset.filter(matches, guild_id__in=guild_ids), False


def clean_search_term(term: str) -> str:
    # PostgreSQL refuses NUL in text: a hostile "%00" must not become a server error.
    return term.replace("\x00", "").strip()[:100]


def is_bigint(term: str) -> bool:
    return term.isascii() and term.isdigit() and int(term) <= BIGINT_MAX


@admin.register(Role)
class RoleAdmin(ReadOnlyAdmin):
    list_display = ("name", "guild", "role_id", "position", "colour_hex", "managed", "deleted")
    list_filter = ("guild", "managed", ("deleted_at", admin.EmptyFieldListFilter))
    list_select_related = ("guild",)
    search_fields = ("name",)

    @admin.display(boolean=True, description="deleted")
    def deleted(self, role: Role) -> bool:
        return role.deleted_at is not None


@admin.register(GuildAccess)
class GuildAccessAdmin(admin.ModelAdmin):
    """Who may manage which guild in the dashboard; superusers see every guild without a grant."""

    list_display = ("user", "guild", "created_at")
    list_filter = ("guild",)
    list_select_related = ("user", "guild")
    search_fields = ("user__username", "guild__name")
    autocomplete_fields = ("user", "guild")
