from django.urls import path

from . import views

app_name = "channels_inbound"

urlpatterns = [
    path("<slug:provider>/<str:token>/<slug:hook>/", views.webhook, name="webhook"),
]
