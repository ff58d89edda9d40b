from django.contrib.auth import views as auth_views
from django.urls import path

from . import calls, campaign_views, customer_views, segment_views, views, webhook_views

app_name = "console"

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.inbox, name="inbox"),
    path("home/", segment_views.home, name="home"),
    path("segments/", segment_views.segment_list, name="segments"),
    path("segments/new/", segment_views.segment_new, name="segment_new"),
    path("segments/<int:segment_id>/", segment_views.segment_detail, name="segment"),
    path("segments/<int:segment_id>/upload/", segment_views.segment_upload, name="segment_upload"),
    path("segments/<int:segment_id>/delete/", segment_views.segment_delete_view, name="segment_delete"),
    path("campaigns/", campaign_views.campaign_list, name="campaigns"),
    path("campaigns/new/", campaign_views.campaign_new, name="campaign_new"),
    path("campaigns/audience/", campaign_views.campaign_audience_fragment, name="campaign_audience"),
    path("campaigns/<int:campaign_id>/", campaign_views.campaign_detail, name="campaign"),
    path(
        "campaigns/<int:campaign_id>/progress/",
        campaign_views.campaign_progress_fragment,
        name="campaign_progress",
    ),
    path(
        "campaigns/<int:campaign_id>/preview/",
        campaign_views.campaign_preview_fragment,
        name="campaign_preview",
    ),
    path("campaigns/<int:campaign_id>/test/", campaign_views.campaign_test_send_view, name="campaign_test"),
    path(
        "campaigns/<int:campaign_id>/recipients/",
        campaign_views.campaign_recipients_view,
        name="campaign_recipients",
    ),
    path(
        "campaigns/<int:campaign_id>/recipients.csv",
        campaign_views.campaign_export,
        name="campaign_export",
    ),
    path("campaigns/<int:campaign_id>/<str:verb>/", campaign_views.campaign_action, name="campaign_action"),
    path("conversations/<int:conversation_id>/", views.conversation_detail, name="conversation"),
    path(
        "conversations/<int:conversation_id>/status/",
        views.conversation_status,
        name="conversation_status",
    ),
    path("conversations/<int:conversation_id>/call/", calls.conversation_call, name="conversation_call"),
    path("simulator/", views.simulator, name="simulator"),
    path("settings/api-keys/", views.api_keys, name="api_keys"),
    path("settings/api-keys/<int:key_id>/revoke/", views.api_key_revoke_view, name="api_key_revoke"),
    path("settings/webhooks/", webhook_views.webhooks, name="webhooks"),
    path("settings/webhooks/<int:endpoint_id>/", webhook_views.webhook_endpoint, name="webhook_endpoint"),
    path(
        "settings/webhooks/<int:endpoint_id>/<str:verb>/",
        webhook_views.webhook_endpoint_action,
        name="webhook_endpoint_action",
    ),
    path(
        "settings/webhooks/deliveries/<int:delivery_id>/",
        webhook_views.webhook_delivery,
        name="webhook_delivery",
    ),
    path(
        "settings/webhooks/deliveries/<int:delivery_id>/replay/",
        webhook_views.webhook_delivery_replay,
        name="webhook_delivery_replay",
    ),
    path("workspace/switch/", views.workspace_switch, name="workspace_switch"),
    path("customers/", customer_views.customer_list, name="customers"),
    path("customers/new/", customer_views.customer_create_view, name="customer_create"),
    path("customers/<int:customer_id>/", customer_views.customer_profile, name="customer"),
    path("customers/<int:customer_id>/thread/", views.customer_thread, name="customer_thread"),
    path("customers/<int:customer_id>/edit/", customer_views.customer_edit_view, name="customer_edit"),
    path(
        "customers/<int:customer_id>/identities/",
        customer_views.customer_identity_add_view,
        name="customer_identity_add",
    ),
    path("settings/profile/", views.member_settings, name="member_settings"),
    path("customers/<int:customer_id>/merge/", customer_views.customer_merge_view, name="customer_merge"),
    path(
        "customers/<int:customer_id>/consent/", customer_views.customer_consent_view, name="customer_consent"
    ),
    path("customers/<int:customer_id>/export/", customer_views.customer_export_view, name="customer_export"),
    path("customers/<int:customer_id>/erase/", customer_views.customer_erase_view, name="customer_erase"),
    path(
        "customer-merges/<int:merge_id>/undo/", customer_views.customer_unmerge_view, name="customer_unmerge"
    ),
    path(
        "merge-suggestions/<int:suggestion_id>/",
        customer_views.customer_suggestion_view,
        name="customer_suggestion",
    ),
]
