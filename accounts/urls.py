"""API routes of this app, mounted under /api/v1/ by config/urls.py."""

from django.urls import path

from .api import WorkspaceApi

urlpatterns = [
    path("workspace", WorkspaceApi.as_view(), name="workspace"),
]
