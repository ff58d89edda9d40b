from typing import Any

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from engagement.credentials import MASK, SECRET_CONFIG_KEYS, config_masked, config_unmask
from engagement.models import (
    ApiKey,
    AutomationRule,
    Channel,
    Conversation,
    Interaction,
    Membership,
    Workspace,
)


@admin.register(Workspace)
class WorkspaceAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "created_at")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "workspace", "role")
    list_filter = ("workspace", "role")


class ChannelAdminForm(forms.ModelForm):
    """The config is shown with every secret masked; a secret left masked keeps its stored value, a
    new value replaces it. Secrets are never sent back to the browser once set."""

    class Meta:
        model = Channel
        fields = ["workspace", "kind", "provider", "name", "address", "config", "is_active"]
        help_texts = {
            "config": f"Secrets ({', '.join(sorted(SECRET_CONFIG_KEYS))}) show as {MASK!r}: leave them so to "
            "keep them, or type a new value. They are stored encrypted."
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and isinstance(self.instance.config, dict):
            self.initial["config"] = config_masked(self.instance.config)

    def clean_config(self) -> Any:
        config = self.cleaned_data.get("config")
        if isinstance(config, dict) and self.instance.pk:
            stored = Channel.objects.filter(pk=self.instance.pk).values_list("config", flat=True).first()
            return config_unmask(config, previous=stored if isinstance(stored, dict) else {})
        return config


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    form = ChannelAdminForm
    list_display = ("name", "workspace", "kind", "provider", "address", "is_active")
    list_filter = ("workspace", "kind", "provider")
    readonly_fields = ("webhook_token",)


@admin.register(AutomationRule)
class AutomationRuleAdmin(admin.ModelAdmin):
    """Read-only: automation rules are one-step journeys now, edited in the console (Journeys,
    /journeys/). A rule's journey is linked from here; changing the rule row would not change it."""

    list_display = ("name", "workspace", "enabled", "trigger", "channel_kind", "match_type", "keywords")
    list_filter = ("workspace", "enabled", "trigger")

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        messages.info(
            request,
            "Automation rules are edited in the console under Journeys (/journeys/): each rule is a "
            "one-step journey there. This list is read-only.",
        )
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at")


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("pk", "workspace", "customer", "channel", "status", "last_activity_at")
    list_filter = ("workspace", "status")


@admin.register(Interaction)
class InteractionAdmin(admin.ModelAdmin):
    list_display = ("pk", "workspace", "customer", "direction", "kind", "status", "created_at")
    list_filter = ("workspace", "direction", "status")
    raw_id_fields = ("customer", "conversation")
