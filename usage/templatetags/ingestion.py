"""`{% ingestion_problems_link %}`: the dashboard header's count of recent ingestion problems (workspace admins)."""

from django import template
from django.urls import reverse
from django.utils import timezone

from usage.selectors import RECENT_PROBLEM_DAYS, ingestion_problem_count

register = template.Library()


@register.inclusion_tag("dashboard/partials/ingestion_problems_link.html", takes_context=True)
def ingestion_problems_link(context) -> dict:
    workspace = context.get("workspace")
    if workspace is None or not context.get("can_edit"):
        return {"show": False}
    return {
        "show": True,
        "count": ingestion_problem_count(workspace=workspace, now=timezone.now()),
        "days": RECENT_PROBLEM_DAYS,
        "url": reverse("ingestion:problems"),
    }
