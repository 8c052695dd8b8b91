"""The member picker: a search-as-you-type combobox for any field that holds a Discord user id.

It renders a hidden input (the chosen user id, what the form submits) and an
ARIA combobox whose listbox htmx fills from `members:options` as the user types.
The page must load htmx (base.html does; `MemberPickerAdminMixin` adds it in the
admin); the widget brings its own script and stylesheet through `Media`.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.urls import reverse

from members.models import Guild, Member
from members.selectors import member_hit


class MemberSelect(forms.Widget):
    template_name = "members/widgets/member_select.html"
    placeholder = "Name, @username or user id"

    class Media:
        css = {"all": ("css/member-picker.css",)}
        js = ("js/member-picker.js",)

    def __init__(self, guild: Guild | int | None = None, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs)
        self.guild_id = guild.pk if isinstance(guild, Guild) else guild

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, Member):
            return str(value.user_id)
        return super().format_value(value)

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        widget = context["widget"]
        input_id = widget["attrs"].get("id") or f"member-picker-{name}"
        widget["attrs"]["id"] = input_id
        widget["attrs"].setdefault("placeholder", self.placeholder)
        widget["listbox_id"] = f"{input_id}-listbox"
        widget["options_url"] = reverse("dashboard:member-options", args=[self.guild_id]) if self.guild_id else ""
        widget["chosen"] = self.chosen(widget["value"])
        return context

    def chosen(self, value: str | None):
        """The member whose id the field holds, for the label shown before any search."""
        if not (self.guild_id and value and value.isascii() and value.isdigit() and len(value) <= 20):
            return None
        user_id = int(value)
        return member_hit(self.guild_id, user_id) if user_id < 2**63 else None

    def value_omitted_from_data(self, data, files, name: str) -> bool:
        return name not in data
