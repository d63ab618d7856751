from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.urls import register_converter

        from core.staff import StaffDirectory, staff_directory_register

        from . import schema  # noqa: F401  (registers the OpenAPI security scheme)
        from .ids import ExternalIdConverter
        from .models import Workspace
        from .selectors import membership_roles, workspaces_for_user

        staff_directory_register(
            StaffDirectory(
                workspace_model=Workspace,
                workspaces_for_user=workspaces_for_user,
                membership_roles=membership_roles,
            )
        )
        register_converter(ExternalIdConverter, "external_id")
