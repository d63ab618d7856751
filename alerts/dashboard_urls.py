"""Alert pipeline pages of the dashboard, mounted at /alerts/ by config/urls.py (namespace "alerts")."""

from django.urls import path

from . import views

app_name = "alerts"

urlpatterns = [
    path("", views.pipeline_list, name="list"),
    path("new/", views.pipeline_new, name="new"),
    path("preview/", views.template_preview, name="preview"),
    path("<int:pipeline_id>/", views.pipeline_detail, name="detail"),
    path("<int:pipeline_id>/edit/", views.pipeline_edit, name="edit"),
    path("<int:pipeline_id>/toggle/", views.pipeline_toggle, name="toggle"),
    path("<int:pipeline_id>/test/", views.pipeline_test, name="test"),
    path("<int:pipeline_id>/delete/", views.pipeline_delete, name="delete"),
    path("channels/", views.channel_list, name="channels"),
    path("channels/new/", views.channel_new, name="channel-new"),
    path("channels/<int:channel_id>/", views.channel_detail, name="channel"),
    path("channels/<int:channel_id>/edit/", views.channel_edit, name="channel-edit"),
    path("channels/<int:channel_id>/test/", views.channel_test, name="channel-test"),
    path("channels/<int:channel_id>/delete/", views.channel_remove, name="channel-delete"),
]
