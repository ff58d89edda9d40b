from django.contrib import admin

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


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace", "kind", "provider", "address", "is_active")
    list_filter = ("workspace", "kind", "provider")
    readonly_fields = ("webhook_token",)


@admin.register(AutomationRule)
class AutomationRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "workspace", "enabled", "trigger", "channel_kind", "match_type", "keywords")
    list_filter = ("workspace", "enabled", "trigger")
    list_editable = ("enabled",)


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
