"""Form fields for choosing a member, and the dashboard's "contact member" form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from members.models import Guild, Member
from members.widgets import MemberSelect

SNOWFLAKE_MAX = 2**63 - 1


class MemberChoiceField(forms.Field):
    """A member of one guild, chosen with the `MemberSelect` picker; `clean` returns the `Member`.

    The form submits a user id; it must belong to a member cached for the guild.
    Departed members are refused unless `allow_departed`: the picker shows them
    (labelled) only when nobody present matches.
    """

    widget = MemberSelect
    default_error_messages = {
        "invalid": "Choose a member from the list.",
        "not_member": "User %(user_id)s is not a member of %(guild)s.",
        "departed": "%(member)s has left %(guild)s.",
    }

    def __init__(self, *, guild: Guild | None = None, allow_departed: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allow_departed = allow_departed
        self.guild = guild

    @property
    def guild(self) -> Guild | None:
        return self._guild

    @guild.setter
    def guild(self, guild: Guild | None) -> None:
        self._guild = guild
        self.widget.guild_id = guild.pk if guild is not None else None

    def prepare_value(self, value: Any) -> Any:
        return value.user_id if isinstance(value, Member) else value

    def to_python(self, value: Any) -> int | None:
        """The user id in `value`, or None when empty."""
        if value in self.empty_values:
            return None
        text = str(value).strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 20) or not 0 < int(text) <= SNOWFLAKE_MAX:
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return int(text)

    def clean(self, value: Any) -> Member | None:
        user_id = self.to_python(value)
        self.validate(user_id)
        if user_id is None:
            return None
        if self.guild is None:
            raise ValueError("MemberChoiceField needs a guild before it can clean a value")
        member = Member.objects.filter(guild=self.guild, user_id=user_id).first()
        if member is None:
            params = {"user_id": user_id, "guild": self.guild.name}
            raise ValidationError(self.error_messages["not_member"], code="not_member", params=params)
        if member.is_departed and not self.allow_departed:
            raise ValidationError(
                self.error_messages["departed"], code="departed", params={"member": member, "guild": self.guild.name}
            )
        self.run_validators(member)
        return member

    def has_changed(self, initial: Any, data: Any) -> bool:
        if self.disabled:
            return False
        initial_value = self.prepare_value(initial)
        return ("" if initial_value is None else str(initial_value)) != ("" if data is None else str(data).strip())


class MemberIdChoiceField(MemberChoiceField):
    """The same choice for a model field holding the user id (e.g. `Guild.contact_member_id`)."""

    def clean(self, value: Any) -> int | None:
        member = super().clean(value)
        return None if member is None else member.user_id


class ContactMemberForm(forms.Form):
    """Pick the member people should contact about a guild (`Guild.contact_member_id`)."""

    member = MemberChoiceField(
        label="Contact member",
        required=False,
        help_text="The member people should contact about this guild. Leave empty to clear.",
    )

    def __init__(self, *args: Any, guild: Guild, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {"member": guild.contact_member_id})
        super().__init__(*args, **kwargs)
        self.guild = guild
        self.fields["member"].guild = guild

    def save(self) -> Member | None:
        member = self.cleaned_data["member"]
        self.guild.set_contact_member(member)
        return member
