"""Dashboard pages of the usage app, mounted at /ingestion/ by config/urls.py (namespace "ingestion")."""

from django.urls import path

from . import views

app_name = "ingestion"

urlpatterns = [path("problems/", views.ingestion_problems, name="problems")]
