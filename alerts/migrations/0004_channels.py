"""Destinations become workspace-level channels that many pipelines reference (schema; rows in 0005).

Each destination row becomes the channel row of the same id (the table is renamed, the rows stay), so every
delivery and rate window keeps pointing at it. Destinations of one workspace with the same target (the same
webhook URL, the same addresses) merge into the oldest one: one target, one rate budget. Their deliveries and
pipelines move to it; their rate windows (one minute each) are dropped. Pipelines also gain a filter and a
template (empty: none).
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0001_initial'),
        ('alerts', '0003_event_subscriptions'),
    ]

    operations = [
        migrations.RemoveConstraint(model_name='alertdelivery', name='usage_alertdelivery_unique_dedupe_key'),
        migrations.RemoveConstraint(model_name='alertdestination', name='usage_alertdestination_type_valid'),
        migrations.RemoveConstraint(model_name='alertdestination', name='usage_alertdestination_target_matches_type'),
        migrations.RemoveConstraint(model_name='alertdestination', name='usage_alertdestination_rate_limit_positive'),
        migrations.RenameModel(old_name='AlertDestination', new_name='AlertChannel'),
        migrations.RemoveIndex(model_name='alertdelivery', name='usage_alertdelivery_dest_idx'),
        migrations.RemoveConstraint(model_name='alertratewindow', name='usage_alertratewindow_unique_window'),
        migrations.RenameField(model_name='alertdelivery', old_name='destination', new_name='channel'),
        migrations.RenameField(model_name='alertratewindow', old_name='destination', new_name='channel'),
        migrations.AddIndex(
            model_name='alertdelivery',
            index=models.Index(fields=['channel', 'status'], name='usage_alertdelivery_dest_idx'),
        ),
        migrations.AddConstraint(
            model_name='alertratewindow',
            constraint=models.UniqueConstraint(fields=('channel', 'window_start'), name='usage_alertratewindow_unique_window'),
        ),
        migrations.AlterField(
            model_name='alertchannel',
            name='workspace',
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name='alert_channels', to='accounts.workspace'
            ),
        ),
        migrations.AlterField(
            model_name='alertchannel',
            name='pipeline',
            field=models.ForeignKey(
                null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='alerts.alertpipeline'
            ),
        ),
        migrations.AddField(model_name='alertchannel', name='name', field=models.CharField(default='', max_length=200)),
        migrations.AddField(
            model_name='alertchannel', name='token', field=models.CharField(blank=True, default='', help_text='Telegram bot token.', max_length=200)
        ),
        migrations.AddField(
            model_name='alertchannel', name='chat_id', field=models.CharField(blank=True, default='', help_text='Telegram chat id or @channel name.', max_length=100)
        ),
        migrations.AddField(
            model_name='alertchannel', name='table', field=models.CharField(blank=True, default='', help_text='PostgreSQL table ([schema.]name).', max_length=130)
        ),
        migrations.AddField(
            model_name='alertchannel', name='target_key', field=models.CharField(default='', max_length=64)
        ),
        migrations.AddField(
            model_name='alertchannel', name='updated_at', field=models.DateTimeField(auto_now=True)
        ),
        migrations.AlterField(
            model_name='alertchannel', name='url', field=models.CharField(blank=True, max_length=2000)
        ),
        migrations.AlterField(
            model_name='alertchannel',
            name='type',
            field=models.CharField(
                choices=[
                    ('slack', 'Slack incoming webhook'),
                    ('discord', 'Discord webhook'),
                    ('webhook', 'Generic webhook (HMAC-signed)'),
                    ('email', 'E-mail'),
                    ('telegram', 'Telegram chat'),
                    ('postgres', 'PostgreSQL table'),
                ],
                max_length=8,
            ),
        ),
        migrations.AlterField(
            model_name='alertdelivery',
            name='pipeline',
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.CASCADE,
                related_name='deliveries',
                to='alerts.alertpipeline',
            ),
        ),
        migrations.CreateModel(
            name='AlertPipelineChannel',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.PositiveSmallIntegerField(default=0)),
                (
                    'channel',
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name='pipeline_links', to='alerts.alertchannel'
                    ),
                ),
                (
                    'pipeline',
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name='channel_links', to='alerts.alertpipeline'
                    ),
                ),
            ],
            options={'ordering': ['position', 'id']},
        ),
        migrations.AddConstraint(
            model_name='alertpipelinechannel',
            constraint=models.UniqueConstraint(fields=('pipeline', 'channel'), name='alerts_alertpipelinechannel_unique'),
        ),
        migrations.AddField(
            model_name='alertpipeline',
            name='channels',
            field=models.ManyToManyField(
                blank=True, related_name='pipelines', through='alerts.AlertPipelineChannel', to='alerts.alertchannel'
            ),
        ),
        migrations.AddField(model_name='alertpipeline', name='filter', field=models.JSONField(blank=True, default=dict)),
        migrations.AddField(model_name='alertpipeline', name='template', field=models.JSONField(blank=True, default=dict)),
    ]
