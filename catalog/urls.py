"""API routes of this app, mounted under /api/v1/ by config/urls.py."""

from django.urls import path

from . import api

urlpatterns = [
    path("products", api.ProductListView.as_view(), name="product-list"),
    path("products/<str:key>", api.ProductDetailView.as_view(), name="product-detail"),
    path("modules", api.ModuleListView.as_view(), name="module-list"),
    path("modules/<str:key>", api.ModuleDetailView.as_view(), name="module-detail"),
    path("features", api.FeatureListView.as_view(), name="feature-list"),
    path("features/<str:key>", api.FeatureDetailView.as_view(), name="feature-detail"),
    path("items", api.ItemListView.as_view(), name="item-list"),
    path("items/<str:key>", api.ItemDetailView.as_view(), name="item-detail"),
]
for _action in ("activate", "archive", "reactivate"):
    urlpatterns += [
        path(
            f"features/<str:key>/{_action}",
            api.FeatureActionView.as_view(action_name=_action),
            name=f"feature-{_action}",
        ),
        path(
            f"items/<str:key>/{_action}",
            api.ItemActionView.as_view(action_name=_action),
            name=f"item-{_action}",
        ),
    ]
