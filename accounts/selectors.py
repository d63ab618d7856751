"""Reads for tenancy and API keys."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from .errors import NotFound
from .models import ApiKey, Membership, Workspace


def workspace_get(*, slug: str) -> Workspace:
    workspace = Workspace.objects.filter(slug=slug).first()
    if workspace is None:
        raise NotFound(f"No workspace with slug '{slug}'.", code="unknown_workspace")
    return workspace


def workspaces_for_user(*, user: AbstractBaseUser) -> QuerySet[Workspace]:
    """Superusers see every workspace; other staff the workspaces of their memberships."""
    if not user.is_authenticated or not user.is_active:
        return Workspace.objects.none()
    if user.is_superuser:
        return Workspace.objects.all()
    return Workspace.objects.filter(memberships__user=user).distinct()


def membership_roles(*, user: AbstractBaseUser) -> dict[int, str]:
    """The user's role in each workspace they belong to, by workspace id (empty for anonymous users)."""
    if not user.is_authenticated or not user.is_active:
        return {}
    return dict(Membership.objects.filter(user=user).values_list("workspace_id", "role"))


def api_key_by_prefix(*, prefix: str) -> ApiKey | None:
    return ApiKey.objects.select_related("workspace").filter(prefix=prefix).first()
