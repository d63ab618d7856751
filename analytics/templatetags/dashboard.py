"""Template helpers of the dashboard pages."""

from django import template

from accounts.ids import external_id_reverse

register = template.Library()


@register.filter
def account_url(external_id: str) -> str:
    """The dashboard page of the account with this external id (`org/1` → `/accounts/org%2F1/`)."""
    return external_id_reverse("dashboard:account", external_id=external_id)
