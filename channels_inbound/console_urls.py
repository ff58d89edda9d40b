"""Console pages of the inbound adapters, mounted under /settings/unprocessed-events/ (config/urls.py)."""

from django.urls import path

from . import console_views

app_name = "inbound_console"

urlpatterns = [
    path("", console_views.unprocessed_events, name="unprocessed_events"),
    path("process/", console_views.unprocessed_events_reprocess_all, name="unprocessed_events_reprocess_all"),
    path(
        "<int:request_id>/process/",
        console_views.unprocessed_event_reprocess,
        name="unprocessed_event_reprocess",
    ),
    path(
        "<int:request_id>/discard/",
        console_views.unprocessed_event_discard,
        name="unprocessed_event_discard",
    ),
]
