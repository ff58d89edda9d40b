from django.urls import path

from . import views

app_name = "webchat"

urlpatterns = [
    path("widget.js", views.widget_js, name="widget"),
    path("demo/", views.demo, name="demo"),
    path("files/<str:signed>/", views.attachment, name="attachment"),
    path("<str:token>/config/", views.config, name="config"),
    path("<str:token>/upload/", views.upload, name="upload"),
]
