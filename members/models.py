"""The member cache: guilds the bot is in, their members and roles."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import ExpressionWrapper, F, Q
from django.utils import timezone


class GuildQuerySet(models.QuerySet):
    def stale(self, now=None) -> GuildQuerySet:
        """Guilds never synced, or whose last complete sync is older than twice their interval."""
        # interval + interval, not interval * 2: SQLite's date arithmetic gets a product wrong.
        twice_late = F("last_synced_at") + F("sync_interval") + F("sync_interval")
        stale_at = ExpressionWrapper(twice_late, output_field=models.DateTimeField())
        return self.alias(stale_at=stale_at).filter(
            Q(last_synced_at__isnull=True) | Q(stale_at__lt=now or timezone.now())
        )


class Guild(models.Model):
    """A Discord guild (server), keyed by its Discord id, with its sync settings."""

    id = models.BigIntegerField(primary_key=True, help_text="Discord guild id")
    name = models.CharField(max_length=100)
    icon = models.CharField(max_length=64, blank=True, default="")
    approximate_member_count = models.PositiveIntegerField(null=True, blank=True)
    is_active = models.BooleanField(default=True, help_text="False once the bot has left the guild")

    sync_enabled = models.BooleanField(default=True)
    sync_interval = models.DurationField(default=timedelta(minutes=30))
    sync_page_size = models.PositiveIntegerField(
        default=1000, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    sync_time_budget = models.DurationField(
        default=timedelta(minutes=5), help_text="a run stops (and later resumes) after this long"
    )
    last_synced_at = models.DateTimeField(null=True, blank=True, help_text="end of the last complete member sync")
    # A Discord user id, not a foreign key: the choice outlives a rebuilt member cache.
    contact_member_id = models.BigIntegerField(
        null=True, blank=True, verbose_name="contact member", help_text="the member people should contact"
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = GuildQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(sync_page_size__gte=1, sync_page_size__lte=1000),
                name="guild_page_size_1_to_1000",
            ),
            models.CheckConstraint(condition=models.Q(sync_interval__gt=timedelta(0)), name="guild_interval_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    @property
    def icon_url(self) -> str | None:
        if not self.icon:
            return None
        return f"https://cdn.discordapp.com/icons/{self.id}/{self.icon}.png?size=64"

    def is_sync_due(self, now=None) -> bool:
        if not (self.sync_enabled and self.is_active):
            return False
        if self.last_synced_at is None:
            return True
        return (now or timezone.now()) - self.last_synced_at >= self.sync_interval

    @property
    def contact_member(self) -> Member | None:
        if self.contact_member_id is None:
            return None
        return Member.objects.filter(guild=self, user_id=self.contact_member_id).first()

    def set_contact_member(self, member: Member | None) -> None:
        if member is not None and member.guild_id != self.pk:
            raise ValueError(f"{member} is not a member of {self}")
        self.contact_member_id = member.user_id if member is not None else None
        self.save(update_fields=["contact_member_id", "updated_at"])

    def is_stale(self, now=None) -> bool:
        """Never synced, or the last complete sync is older than twice the interval (see `GuildQuerySet.stale`)."""
        if self.last_synced_at is None:
            return True
        return (now or timezone.now()) - self.last_synced_at > 2 * self.sync_interval


class GuildAccess(models.Model):
    """A grant: `user` may manage `guild` in the dashboard (superusers need none)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="guild_grants")
    guild = models.ForeignKey(Guild, on_delete=models.CASCADE, related_name="grants")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        verbose_name = "guild access"
        verbose_name_plural = "guild access"
        constraints = [models.UniqueConstraint(fields=["user", "guild"], name="guild_access_unique")]

    def __str__(self) -> str:
        return f"{self.user} → {self.guild}"


class Role(models.Model):
    guild = models.ForeignKey(Guild, on_delete=models.CASCADE, related_name="roles")
    role_id = models.BigIntegerField()
    name = models.CharField(max_length=100)
    position = models.IntegerField(default=0)
    colour = models.PositiveIntegerField(default=0)
    managed = models.BooleanField(default=False)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["guild", "-position"]
        constraints = [models.UniqueConstraint(fields=["guild", "role_id"], name="role_unique_per_guild")]

    def __str__(self) -> str:
        return self.name

    @property
    def colour_hex(self) -> str:
        return f"#{self.colour:06x}"


class MemberQuerySet(models.QuerySet):
    def present(self) -> MemberQuerySet:
        return self.filter(departed_at__isnull=True)

    def departed(self) -> MemberQuerySet:
        return self.filter(departed_at__isnull=False)


class Member(models.Model):
    """One user in one guild, as last seen by a sync or a gateway event.

    A present member's "last seen in a sync" is the guild's `last_synced_at`;
    `last_seen_at` is stored only when the row is written, so a re-sync writes
    nothing for members whose data did not change.
    """

    # No index of its own: the unique (guild, user_id) index and the others all start with it.
    guild = models.ForeignKey(Guild, on_delete=models.CASCADE, related_name="members", db_index=False)
    user_id = models.BigIntegerField()
    username = models.CharField(max_length=100)
    # NULL mirrors Discord's null ("not set"), which an empty string would blur.
    global_name = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    nick = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    display_name = models.CharField(max_length=100, help_text="nick, else global name, else username")
    is_bot = models.BooleanField(default=False)
    avatar = models.CharField(max_length=64, null=True, blank=True, help_text="avatar hash")  # noqa: DJ001
    role_ids = models.JSONField(default=list, blank=True, help_text="role ids as strings")
    joined_at = models.DateTimeField(null=True, blank=True)
    first_seen_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    departed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)
    # Derived from the names for search (see members.search_text): written with them.
    search_text = models.TextField(default="", editable=False)
    sort_key = models.CharField(max_length=100, default="", editable=False, help_text="folded display name")
    # members.services.member_fingerprint of the synced data, for skipping unchanged members;
    # NULL when unknown (the next sync compares the data itself and fills it in).
    fingerprint = models.BigIntegerField(null=True, blank=True, editable=False)

    objects = MemberQuerySet.as_manager()

    class Meta:
        ordering = ["guild", "user_id"]
        constraints = [models.UniqueConstraint(fields=["guild", "user_id"], name="member_unique_per_guild")]
        indexes = [
            models.Index(fields=["guild", "departed_at"], name="member_guild_departed"),
            # The picker's order (display name, then user id) in full: a LIMIT stops after 25 rows
            # even inside a run of equal display names.
            models.Index(fields=["guild", "sort_key", "user_id"], name="member_guild_sort_key_uid"),
            # The empty query's "recently active members" (members.selectors.recent_members).
            models.Index(
                fields=["guild", "-updated_at", "-joined_at", "user_id"],
                name="member_guild_recent",
                condition=Q(departed_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} (@{self.username})"

    def save(self, *args, **kwargs) -> None:
        from members.search_text import search_fields

        self.search_text, self.sort_key = search_fields(self.username, self.global_name, self.nick, self.display_name)
        self.fingerprint = None  # written outside a sync: let the next sync compare the data
        super().save(*args, **kwargs)

    @property
    def avatar_url(self) -> str:
        if self.avatar:
            ext = "gif" if self.avatar.startswith("a_") else "png"
            return f"https://cdn.discordapp.com/avatars/{self.user_id}/{self.avatar}.{ext}?size=64"
        # Discord's default avatars for the new username system.
        return f"https://cdn.discordapp.com/embed/avatars/{(self.user_id >> 22) % 6}.png"

    @property
    def is_departed(self) -> bool:
        return self.departed_at is not None
