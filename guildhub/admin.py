"""Admin for the project-wide tables: API tokens, the bot's heartbeat, the shared rate-limit budget."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers

from guildhub.models import ApiToken, BotHeartbeat, RateLimitBucket


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made here; the plain key is shown once, on the page after "Save"."""

    list_display = ("name", "user", "key_prefix", "created_at", "last_used_at")
    list_select_related = ("user",)
    search_fields = ("name", "user__username")
    raw_id_fields = ("user",)
    readonly_fields = ("key_prefix", "created_at", "last_used_at")

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:
        return ["name", "user"] if obj is None else ["name", "user", *self.readonly_fields]

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        if not change:
            # Kept on the request only, for response_add: the database gets the hash.
            request.api_token_key = obj.set_new_key()
        super().save_model(request, obj, form, change)

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url_continue=None) -> HttpResponse:
        # A page, not a redirect with a message: the key never passes through a cookie or the session.
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "API token created",
            "token": obj,
            "key": request.api_token_key,
        }
        response = TemplateResponse(request, "admin/guildhub/apitoken/created.html", context)
        add_never_cache_headers(response)
        return response


@admin.register(BotHeartbeat)
class BotHeartbeatAdmin(admin.ModelAdmin):
    """Read-only; delete the rows of shards that no longer exist after resharding."""

    list_display = ("shard_id", "seen_at", "latency_ms", "guild_count", "session")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: BotHeartbeat | None = None) -> bool:
        return False


@admin.register(RateLimitBucket)
class RateLimitBucketAdmin(admin.ModelAdmin):
    """Read-only: the rate limiter owns these rows."""

    list_display = ("key", "requests_in_window", "blocked_until")
    search_fields = ("key",)

    @admin.display(description="requests in window")
    def requests_in_window(self, bucket: RateLimitBucket) -> int:
        return len(bucket.stamps)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: RateLimitBucket | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: RateLimitBucket | None = None) -> bool:
        return False
