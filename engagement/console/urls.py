from django.contrib.auth import views as auth_views
from django.urls import path

from . import (
    calls,
    customer_views,
    journey_views,
    report_views,
    search_views,
    segment_views,
    sla_views,
    team_views,
    views,
    webhook_views,
)

app_name = "console"

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.inbox, name="inbox"),
    path("home/", segment_views.home, name="home"),
    path("search/", search_views.search_page, name="search"),
    path("search/suggest/", search_views.search_suggest, name="search_suggest"),
    path("reports/", report_views.reports_page, name="reports"),
    path("reports/<slug:name>.csv", report_views.report_export, name="report_export"),
    path("settings/sla/", sla_views.sla_settings, name="sla_settings"),
    path("settings/sla/<int:policy_id>/", sla_views.sla_policy_toggle, name="sla_policy_toggle"),
    path("segments/", segment_views.segment_list, name="segments"),
    path("segments/new/", segment_views.segment_new, name="segment_new"),
    path("segments/<int:segment_id>/", segment_views.segment_detail, name="segment"),
    path("segments/<int:segment_id>/upload/", segment_views.segment_upload, name="segment_upload"),
    path("segments/<int:segment_id>/delete/", segment_views.segment_delete_view, name="segment_delete"),
    path("journeys/", journey_views.journey_list, name="journeys"),
    path("journeys/<int:journey_id>/", journey_views.journey_detail, name="journey"),
    path("journeys/<int:journey_id>/settings/", journey_views.journey_settings_view, name="journey_settings"),
    path("journeys/<int:journey_id>/test/", journey_views.journey_test_view, name="journey_test"),
    path(
        "journeys/<int:journey_id>/steps/<str:action>/",
        journey_views.journey_step_action,
        name="journey_step_action",
    ),
    path("journeys/<int:journey_id>/step/<str:key>/", journey_views.journey_step_view, name="journey_step"),
    path("journeys/<int:journey_id>/<str:verb>/", journey_views.journey_state_view, name="journey_state"),
    path(
        "enrollments/<int:enrollment_id>/remove/",
        journey_views.enrollment_remove_view,
        name="enrollment_remove",
    ),
    path("tasks/", journey_views.task_list, name="tasks"),
    path("tasks/<int:task_id>/done/", journey_views.task_done_view, name="task_done"),
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
    path("inbox/bulk/", team_views.inbox_bulk_view, name="inbox_bulk"),
    path("customers/<int:customer_id>/thread/assign/", team_views.thread_assign_view, name="thread_assign"),
    path("customers/<int:customer_id>/thread/status/", team_views.thread_status_view, name="thread_status"),
    path("customers/<int:customer_id>/thread/labels/", team_views.thread_labels_view, name="thread_labels"),
    path("customers/<int:customer_id>/thread/notes/", team_views.thread_note_view, name="thread_note"),
    path("customers/<int:customer_id>/thread/canned/", team_views.thread_canned_view, name="thread_canned"),
    path("settings/teams/", team_views.teams_view, name="teams"),
    path("settings/canned-responses/", team_views.canned_responses_view, name="canned_responses"),
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
