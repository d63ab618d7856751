"""API routes of this app, mounted under /api/v1/ by config/urls.py."""

from django.urls import path

from . import api, record

urlpatterns: list = [
    path("events", api.events, name="events-ingest"),
    path("events/feature.used", api.FeatureUsedView.as_view(), name="events-feature-used"),
    path("accounts/<external_id:account_id>", api.AccountView.as_view(), name="account-upsert"),
    path(
        "accounts/<external_id:account_id>/users/<external_id:user_id>",
        api.EndUserView.as_view(),
        name="end-user-upsert",
    ),
    path("usage/record", record.UsageRecordView.as_view(), name="usage-record"),
]
