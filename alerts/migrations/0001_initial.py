"""The alert models move from usage to this app without touching the database: the state is created here, and
usage/0006 removes it there; the tables keep their names until 0002 renames them (the rows stay)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('accounts', '0001_initial'),
        ('catalog', '0002_guards'),
        ('usage', '0005_alert_events_pending'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name='AlertPipeline',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=200)),
                        ('enabled', models.BooleanField(default=True)),
                        ('trigger_type', models.CharField(choices=[('event', 'A matching usage event'), ('threshold', 'An allowance crossing a threshold'), ('paid_feature_on_free_plan', 'A free-plan account using a feature it lacks'), ('dormant', 'An account gone dormant'), ('usage_drop', 'An account whose usage dropped')], max_length=32)),
                        ('trigger_config', models.JSONField(blank=True, default=dict)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='alert_pipelines', to='accounts.workspace')),
                    ],
                    options={
                        'db_table': 'usage_alertpipeline',
                        'ordering': ['id'],
                    },
                ),
                migrations.CreateModel(
                    name='AlertDestination',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('type', models.CharField(choices=[('slack', 'Slack incoming webhook'), ('discord', 'Discord webhook'), ('webhook', 'Generic webhook (HMAC-signed)'), ('email', 'E-mail')], max_length=8)),
                        ('url', models.URLField(blank=True, max_length=2000)),
                        ('to', models.CharField(blank=True, help_text='Comma-separated e-mail addresses.', max_length=1000)),
                        ('secret', models.CharField(blank=True, max_length=200)),
                        ('rate_limit_per_minute', models.PositiveIntegerField(default=60)),
                        ('mentions', models.BooleanField(default=False)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.workspace')),
                        ('pipeline', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='destinations', to='alerts.alertpipeline')),
                    ],
                    options={
                        'db_table': 'usage_alertdestination',
                        'ordering': ['id'],
                    },
                ),
                migrations.CreateModel(
                    name='AlertDelivery',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('alert', 'Alert'), ('summary', 'Summary of rate-limited alerts'), ('test', 'Test message')], default='alert', max_length=8)),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('sent', 'Sent'), ('failed', 'Failed'), ('coalesced', 'Coalesced into a summary')], default='pending', max_length=10)),
                        ('dedupe_key', models.CharField(blank=True, max_length=200)),
                        ('attempts', models.PositiveIntegerField(default=0)),
                        ('last_error', models.TextField(blank=True)),
                        ('response_code', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('payload', models.JSONField(default=dict)),
                        ('created_at', models.DateTimeField()),
                        ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                        ('sent_at', models.DateTimeField(blank=True, null=True)),
                        ('summary', models.ForeignKey(blank=True, help_text='For a coalesced alert: the summary message that carried it.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='coalesced', to='alerts.alertdelivery')),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.workspace')),
                        ('destination', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='alerts.alertdestination')),
                        ('pipeline', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='alerts.alertpipeline')),
                    ],
                    options={
                        'db_table': 'usage_alertdelivery',
                        'verbose_name_plural': 'alert deliveries',
                        'ordering': ['-id'],
                    },
                ),
                migrations.CreateModel(
                    name='AlertRateWindow',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('window_start', models.DateTimeField()),
                        ('sent', models.PositiveIntegerField(default=0)),
                        ('held', models.PositiveIntegerField(default=0)),
                        ('destination', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='alerts.alertdestination')),
                    ],
                    options={
                        'db_table': 'usage_alertratewindow',
                    },
                ),
                migrations.CreateModel(
                    name='AlertThresholdMark',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('threshold', models.PositiveSmallIntegerField()),
                        ('period_start', models.DateTimeField()),
                        ('created_at', models.DateTimeField()),
                        ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.account')),
                        ('feature', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='catalog.feature')),
                        ('pipeline', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='alerts.alertpipeline')),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.workspace')),
                    ],
                    options={
                        'db_table': 'usage_alertthresholdmark',
                    },
                ),
                migrations.CreateModel(
                    name='AlertWindowMark',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('window_start', models.DateField()),
                        ('created_at', models.DateTimeField()),
                        ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.account')),
                        ('pipeline', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='alerts.alertpipeline')),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='accounts.workspace')),
                    ],
                    options={
                        'db_table': 'usage_alertwindowmark',
                    },
                ),
                migrations.AddIndex(
                    model_name='alertpipeline',
                    index=models.Index(fields=['workspace', 'enabled', 'trigger_type'], name='usage_alertpipeline_ws_idx'),
                ),
                migrations.AddConstraint(
                    model_name='alertpipeline',
                    constraint=models.UniqueConstraint(fields=('workspace', 'name'), name='usage_alertpipeline_unique_name'),
                ),
                migrations.AddConstraint(
                    model_name='alertpipeline',
                    constraint=models.CheckConstraint(condition=models.Q(('trigger_type__in', ['event', 'threshold', 'paid_feature_on_free_plan', 'dormant', 'usage_drop'])), name='usage_alertpipeline_trigger_type_valid'),
                ),
                migrations.AddConstraint(
                    model_name='alertpipeline',
                    constraint=models.CheckConstraint(condition=models.Q(('name', ''), _negated=True), name='usage_alertpipeline_name_not_empty'),
                ),
                migrations.AddConstraint(
                    model_name='alertdestination',
                    constraint=models.CheckConstraint(condition=models.Q(('type__in', ['slack', 'discord', 'webhook', 'email'])), name='usage_alertdestination_type_valid'),
                ),
                migrations.AddConstraint(
                    model_name='alertdestination',
                    constraint=models.CheckConstraint(condition=models.Q(models.Q(('type', 'email'), models.Q(('to', ''), _negated=True), ('url', '')), models.Q(models.Q(('type', 'email'), _negated=True), models.Q(('url', ''), _negated=True), ('to', '')), _connector='OR'), name='usage_alertdestination_target_matches_type'),
                ),
                migrations.AddConstraint(
                    model_name='alertdestination',
                    constraint=models.CheckConstraint(condition=models.Q(('rate_limit_per_minute__gte', 1)), name='usage_alertdestination_rate_limit_positive'),
                ),
                migrations.AddIndex(
                    model_name='alertdelivery',
                    index=models.Index(fields=['pipeline', '-id'], name='usage_alertdelivery_pipe_idx'),
                ),
                migrations.AddIndex(
                    model_name='alertdelivery',
                    index=models.Index(fields=['destination', 'status'], name='usage_alertdelivery_dest_idx'),
                ),
                migrations.AddConstraint(
                    model_name='alertdelivery',
                    constraint=models.CheckConstraint(condition=models.Q(('status__in', ['pending', 'sent', 'failed', 'coalesced'])), name='usage_alertdelivery_status_valid'),
                ),
                migrations.AddConstraint(
                    model_name='alertdelivery',
                    constraint=models.CheckConstraint(condition=models.Q(('kind__in', ['alert', 'summary', 'test'])), name='usage_alertdelivery_kind_valid'),
                ),
                migrations.AddConstraint(
                    model_name='alertdelivery',
                    constraint=models.CheckConstraint(condition=models.Q(models.Q(('sent_at__isnull', False), ('status', 'sent')), models.Q(('status', 'sent'), _negated=True), _connector='OR'), name='usage_alertdelivery_sent_has_time'),
                ),
                migrations.AddConstraint(
                    model_name='alertdelivery',
                    constraint=models.UniqueConstraint(condition=models.Q(('dedupe_key', ''), _negated=True), fields=('destination', 'dedupe_key'), name='usage_alertdelivery_unique_dedupe_key'),
                ),
                migrations.AddConstraint(
                    model_name='alertratewindow',
                    constraint=models.UniqueConstraint(fields=('destination', 'window_start'), name='usage_alertratewindow_unique_window'),
                ),
                migrations.AddConstraint(
                    model_name='alertthresholdmark',
                    constraint=models.UniqueConstraint(fields=('pipeline', 'account', 'feature', 'threshold', 'period_start'), name='usage_alertthresholdmark_unique_period'),
                ),
                migrations.AddConstraint(
                    model_name='alertwindowmark',
                    constraint=models.UniqueConstraint(fields=('pipeline', 'account', 'window_start'), name='usage_alertwindowmark_unique_window'),
                ),
            ],
        ),
    ]
