from django.contrib import admin

from .models import Customer, Identity


class IdentityInline(admin.TabularInline):
    model = Identity
    extra = 0


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("pk", "display_name", "workspace", "created_at")
    list_filter = ("workspace",)
    inlines = [IdentityInline]
