"""Ingestion now reads usage's EventSubscription instead of the pipelines: subscribe every workspace that has an
enabled event-driven pipeline (from then on alerts.services keeps it up to date)."""

from django.db import migrations
from django.utils import timezone

EVENT_TRIGGERS = ['event', 'threshold', 'paid_feature_on_free_plan']


def subscribe(apps, schema_editor):
    AlertPipeline = apps.get_model('alerts', 'AlertPipeline')
    EventSubscription = apps.get_model('usage', 'EventSubscription')
    workspace_ids = set(
        AlertPipeline.objects.filter(enabled=True, trigger_type__in=EVENT_TRIGGERS).values_list('workspace_id', flat=True)
    )
    now = timezone.now()
    EventSubscription.objects.bulk_create(
        [EventSubscription(workspace_id=pk, updated_at=now) for pk in sorted(workspace_ids)], ignore_conflicts=True
    )


class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0002_tables_renamed'),
        ('usage', '0006_alerts_moved_out_events_outbox'),
    ]

    operations = [
        migrations.RunPython(subscribe, migrations.RunPython.noop),
    ]
