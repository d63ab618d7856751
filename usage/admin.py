"""Admin of the usage app."""

from usage.alerts import admin as alerts_admin  # noqa: F401 - registers the alert pipeline admin
