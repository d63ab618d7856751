"""Celery tasks of the usage app (autodiscovered as usage.tasks)."""

from usage.alerts.tasks import (  # noqa: F401
    alert_delivery_send_task,
    alert_events_evaluate_task,
    alert_pending_evaluate_task,
    alert_summary_send_task,
    alert_sweep_task,
)
