"""Console forms. They validate input; the work happens in services."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from customers.services import InvalidIdentifier, phone_normalize
from engagement.models import Channel, Workspace
from engagement.models.conversations import ConversationStatus
from engagement.scopes import SCOPE_CHOICES
from engagement.services.console_queries import channel_list_for_simulator


class ReplyForm(forms.Form):
    channel = forms.IntegerField(required=False, min_value=1)
    subject = forms.CharField(required=False, max_length=300)
    body = forms.CharField(
        label="Reply",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Write a reply…"}),
        error_messages={"required": "Write a message before sending."},
    )


class ConversationStatusForm(forms.Form):
    status = forms.ChoiceField(choices=ConversationStatus.choices)


class WorkspaceSwitchForm(forms.Form):
    workspace_id = forms.IntegerField(min_value=1)


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"placeholder": "e.g. CRM sync"}))
    scopes = forms.MultipleChoiceField(
        choices=SCOPE_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        help_text="What the key may do, per area; write includes read.",
        error_messages={"required": "Pick at least one scope."},
    )


class SimulatorForm(forms.Form):
    channel = forms.ModelChoiceField(queryset=Channel.objects.none(), empty_label=None, label="SMS channel")
    from_number = forms.CharField(
        label="From (customer phone)",
        max_length=32,
        widget=forms.TextInput(attrs={"placeholder": "+14155550123", "autocomplete": "off"}),
    )
    sender_name = forms.CharField(label="Customer name (optional)", max_length=200, required=False)
    body = forms.CharField(label="Message", max_length=1600, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.workspace = workspace
        channel_field = cast("forms.ModelChoiceField[Channel]", self.fields["channel"])
        channel_field.queryset = channel_list_for_simulator(workspace=workspace)

    def clean_from_number(self) -> str:
        raw: str = self.cleaned_data["from_number"]
        try:
            return phone_normalize(raw, region=self.workspace.default_region)
        except InvalidIdentifier as exc:
            raise forms.ValidationError(f"Not a valid phone number: {raw}") from exc


class WebhookEndpointForm(forms.Form):
    """An outbound webhook endpoint: where, and which events (none ticked: every event)."""

    url = forms.URLField(
        label="URL",
        max_length=2000,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/hooks"}),
    )
    description = forms.CharField(max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        label="Events", required=False, widget=forms.CheckboxSelectMultiple, choices=()
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from engagement.webhooks.catalog import EVENT_TYPES

        super().__init__(*args, **kwargs)
        field = cast(forms.MultipleChoiceField, self.fields["event_types"])
        field.choices = [(t, t) for t in EVENT_TYPES]


class CustomerCreateForm(forms.Form):
    display_name = forms.CharField(label="Name", max_length=200, required=False)
    email = forms.CharField(label="Email address", max_length=320, required=False)
    phone = forms.CharField(label="Phone number", max_length=32, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not any(data.get(k) for k in ("display_name", "email", "phone")):
            raise forms.ValidationError("Give at least a name, an email address or a phone number.")
        return data
