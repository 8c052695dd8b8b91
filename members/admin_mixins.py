"""The member picker in the admin, for model fields that hold a Discord user id."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models
from django.http import HttpRequest

from members.forms import MemberIdChoiceField
from members.models import Guild


class MemberPickerAdminMixin:
    """Renders the member picker for the fields named in `member_picker_fields`.

    The guild to search is the object's (`get_member_picker_guild`): the object
    itself for a Guild, else its `guild`. While there is none (an add form), the
    field stays a plain input.
    """

    member_picker_fields: tuple[str, ...] = ()

    @property
    def media(self) -> forms.Media:
        # The picker's requests are htmx's; the admin does not load it otherwise.
        return super().media + forms.Media(js=["vendor/htmx-2.0.11.min.js"])

    def get_member_picker_guild(self, obj: models.Model | None) -> Guild | None:
        if obj is None or isinstance(obj, Guild):
            return obj
        return getattr(obj, "guild", None)

    def get_form(self, request: HttpRequest, obj: models.Model | None = None, change: bool = False, **kwargs: Any):
        form = super().get_form(request, obj, change, **kwargs)
        guild = self.get_member_picker_guild(obj)
        if guild is None:
            return form
        for name in self.member_picker_fields:
            plain = form.base_fields.get(name)
            if plain is not None:
                # get_form builds a new form class per request: replacing its field is safe.
                form.base_fields[name] = MemberIdChoiceField(
                    guild=guild, required=plain.required, label=plain.label, help_text=plain.help_text
                )
        return form
