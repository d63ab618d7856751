"""The alert models now live in the alerts app (alerts/0001 took their state; their tables are untouched here).
The outbox becomes neutral (AlertEventsPending → EventOutbox, rows kept) and EventSubscription tells ingestion
which workspaces' events go through it."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('alerts', '0001_initial'),
        ('usage', '0005_alert_events_pending'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(name='AlertWindowMark'),
                migrations.DeleteModel(name='AlertThresholdMark'),
                migrations.DeleteModel(name='AlertRateWindow'),
                migrations.DeleteModel(name='AlertDelivery'),
                migrations.DeleteModel(name='AlertDestination'),
                migrations.DeleteModel(name='AlertPipeline'),
            ],
        ),
        migrations.RenameModel(old_name='AlertEventsPending', new_name='EventOutbox'),
        migrations.RenameIndex(
            model_name='eventoutbox', new_name='usage_eventoutbox_created', old_name='usage_alertpending_created'
        ),
        migrations.CreateModel(
            name='EventSubscription',
            fields=[
                ('workspace', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='accounts.workspace')),
                ('updated_at', models.DateTimeField()),
            ],
        ),
    ]
