"""Segment-compatible tracking API routes, mounted under /api/segment/v1/ by config/urls.py (a Segment or
RudderStack client's host is `https://<uptake>/api/segment`)."""

from django.urls import path

from .segment_api import VIEWS

urlpatterns = [path(endpoint, view.as_view(), name=f"segment-{endpoint}") for endpoint, view in VIEWS.items()]
