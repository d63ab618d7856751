"""API routes of this app, mounted under /api/v1/ by config/urls.py."""

from django.urls import path

from . import api

urlpatterns = [
    path("entitlements/check", api.entitlement_check, name="entitlement-check"),
    path(
        "accounts/<external_id:account_id>/entitlements",
        api.AccountEntitlementsView.as_view(),
        name="account-entitlements",
    ),
    path("items/<str:key>/entitlements", api.ItemEntitlementListView.as_view(), name="item-entitlement-list"),
    path(
        "items/<str:key>/entitlements/<str:feature_key>",
        api.ItemEntitlementView.as_view(),
        name="item-entitlement-detail",
    ),
    path("subscriptions", api.SubscriptionListView.as_view(), name="subscription-list"),
    path(
        "subscriptions/<str:subscription_id>",
        api.SubscriptionDetailView.as_view(),
        name="subscription-detail",
    ),
    path(
        "subscriptions/<str:subscription_id>/entitlements",
        api.SubscriptionEntitlementListView.as_view(),
        name="subscription-entitlement-list",
    ),
    path(
        "subscriptions/<str:subscription_id>/entitlements/<str:feature_key>",
        api.SubscriptionEntitlementView.as_view(),
        name="subscription-entitlement-detail",
    ),
]
