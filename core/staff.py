"""Staff roles, and who may see which workspace: the one definition the admin and the dashboard pages share.

Memberships belong to the accounts app, which sits above core; it registers its lookups here when Django starts
(`accounts/apps.py`), so core reads them without importing an app above it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db import models


class StaffRole(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MANAGER = "manager", "Manager"
    VIEWER = "viewer", "Viewer"


# Any membership may view; owners and admins may edit (catalog, entitlements, alert pipelines, the dashboard).
VIEW_ROLES = frozenset(StaffRole.values)
EDIT_ROLES = frozenset({StaffRole.OWNER, StaffRole.ADMIN})


@dataclass(frozen=True)
class StaffDirectory:
    """The lookups core needs from the app that owns workspaces and memberships."""

    workspace_model: type[models.Model]
    # (user) → QuerySet of the workspaces the user may see.
    workspaces_for_user: Callable[..., Any]
    # (user) → {workspace id: role}.
    membership_roles: Callable[..., dict[int, str]]


_directory: StaffDirectory | None = None


def staff_directory_register(directory: StaffDirectory) -> None:
    """Called once by the accounts app's `ready()`."""
    global _directory
    _directory = directory


def staff_directory() -> StaffDirectory:
    if _directory is None:
        raise ImproperlyConfigured("No staff directory registered: is 'accounts' in INSTALLED_APPS?")
    return _directory
