from django.contrib import admin

from .models import InboundRequest, ProviderEvent


@admin.register(ProviderEvent)
class ProviderEventAdmin(admin.ModelAdmin):
    list_display = ("provider", "provider_event_id", "event_type", "workspace", "received_at", "processed_at")
    list_filter = ("provider", "event_type")
    readonly_fields = [f.name for f in ProviderEvent._meta.fields]


@admin.register(InboundRequest)
class InboundRequestAdmin(admin.ModelAdmin):
    list_display = ("pk", "provider", "hook", "stage", "workspace", "received_at", "processed_at", "attempts")
    list_filter = ("provider", "hook", "stage")
    readonly_fields = [f.name for f in InboundRequest._meta.fields]
