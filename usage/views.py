"""Dashboard page of the usage app: ingestion problems (workspace admins), newest first with counts per reason."""

from datetime import UTC, timedelta

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from core.views import workspace_page

from . import selectors

PAGE_SIZE = 50


@workspace_page(nav="ingestion-problems")
def ingestion_problems(request: HttpRequest) -> HttpResponse:
    if not request.can_edit:
        raise PermissionDenied("Ingestion problems are shown to the workspace's owners and admins.")
    now = timezone.now()
    since = now - timedelta(days=selectors.RECENT_PROBLEM_DAYS)
    page = Paginator(selectors.ingestion_problems_recent(workspace=request.workspace), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        **request.dashboard,
        "title": "Ingestion problems",
        "days": selectors.RECENT_PROBLEM_DAYS,
        "counts": selectors.ingestion_problem_counts(workspace=request.workspace, since=since),
        "ignored": selectors.segment_ignored_counts(
            workspace=request.workspace, since_day=since.astimezone(UTC).date()
        ),
        "page": page,
    }
    return render(request, "dashboard/ingestion_problems.html", context)
