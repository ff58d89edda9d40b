from django.contrib.auth import views as auth_views
from django.urls import path

from . import calls, views

app_name = "console"

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.inbox, name="inbox"),
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
    path("workspace/switch/", views.workspace_switch, name="workspace_switch"),
]
