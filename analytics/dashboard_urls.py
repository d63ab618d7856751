"""HTML dashboard routes, mounted at the site root by config/urls.py (namespace "dashboard")."""

from django.urls import path

from core.views import switch_workspace

from . import views

app_name = "dashboard"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("switch-workspace/", switch_workspace, name="switch-workspace"),
    path("search/", views.search, name="search"),
    path("features/<str:key>/", views.feature_detail, name="feature"),
    path("accounts/<external_id:external_id>/", views.account_detail, name="account"),
    path("lists/<slug:kind>/", views.account_list, name="list"),
    path("lists/<slug:kind>/export.csv", views.account_list_csv, name="list-csv"),
]
