"""API routes of this app, mounted under /api/v1/ by config/urls.py."""

from django.urls import path

from . import api

urlpatterns: list = [
    path(
        "products/<str:product_id>/analytics/feature-usage",
        api.FeatureUsageApi.as_view(),
        name="analytics-feature-usage",
    ),
    path(
        "products/<str:product_id>/analytics/features/<str:feature_id>/daily",
        api.FeatureDailyApi.as_view(),
        name="analytics-feature-daily",
    ),
    path(
        "accounts/<external_id:account_id>/analytics/daily",
        api.AccountDailyApi.as_view(),
        name="analytics-account-daily",
    ),
    path(
        "accounts/<external_id:account_id>/users/<external_id:user_id>/usage",
        api.EndUserUsageApi.as_view(),
        name="end-user-usage",
    ),
]
