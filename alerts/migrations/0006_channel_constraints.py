"""Channels stand alone (no pipeline column) and carry their rules: one target and one name per workspace, the
fields each type uses; a delivery is unique per pipeline, channel and dedupe key."""

from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):

    dependencies = [('alerts', '0005_destinations_to_channels')]

    operations = [
        migrations.RemoveField(model_name='alertchannel', name='pipeline'),
        migrations.AlterField(model_name='alertchannel', name='name', field=models.CharField(max_length=200)),
        migrations.AlterField(model_name='alertchannel', name='target_key', field=models.CharField(max_length=64)),
        migrations.AlterField(
            model_name='alertchannel',
            name='token',
            field=models.CharField(blank=True, help_text='Telegram bot token.', max_length=200),
        ),
        migrations.AlterField(
            model_name='alertchannel',
            name='chat_id',
            field=models.CharField(blank=True, help_text='Telegram chat id or @channel name.', max_length=100),
        ),
        migrations.AlterField(
            model_name='alertchannel',
            name='table',
            field=models.CharField(blank=True, help_text='PostgreSQL table ([schema.]name).', max_length=130),
        ),
        migrations.AddConstraint(
            model_name='alertchannel',
            constraint=models.CheckConstraint(
                condition=Q(type__in=['slack', 'discord', 'webhook', 'email', 'telegram', 'postgres']),
                name='alerts_alertchannel_type_valid',
            ),
        ),
        migrations.AddConstraint(
            model_name='alertchannel',
            constraint=models.CheckConstraint(
                condition=(Q(type='email') & ~Q(to='') & Q(url='') & Q(token='') & Q(chat_id='') & Q(table=''))
                | (
                    Q(type__in=['slack', 'discord', 'webhook'])
                    & ~Q(url='')
                    & Q(to='')
                    & Q(token='')
                    & Q(chat_id='')
                    & Q(table='')
                )
                | (Q(type='telegram') & ~Q(token='') & ~Q(chat_id='') & Q(url='') & Q(to='') & Q(table=''))
                | (Q(type='postgres') & ~Q(url='') & ~Q(table='') & Q(to='') & Q(token='') & Q(chat_id='')),
                name='alerts_alertchannel_target_matches_type',
            ),
        ),
        migrations.AddConstraint(
            model_name='alertchannel',
            constraint=models.CheckConstraint(
                condition=Q(rate_limit_per_minute__gte=1), name='alerts_alertchannel_rate_limit_positive'
            ),
        ),
        migrations.AddConstraint(
            model_name='alertchannel',
            constraint=models.CheckConstraint(condition=~Q(name=''), name='alerts_alertchannel_name_not_empty'),
        ),
        migrations.AddConstraint(
            model_name='alertchannel',
            constraint=models.UniqueConstraint(fields=('workspace', 'name'), name='alerts_alertchannel_unique_name'),
        ),
        migrations.AddConstraint(
            model_name='alertchannel',
            constraint=models.UniqueConstraint(
                fields=('workspace', 'target_key'), name='alerts_alertchannel_unique_target'
            ),
        ),
        migrations.AddConstraint(
            model_name='alertdelivery',
            constraint=models.UniqueConstraint(
                condition=~Q(dedupe_key=''),
                fields=('pipeline', 'channel', 'dedupe_key'),
                name='alerts_alertdelivery_unique_dedupe_key',
            ),
        ),
    ]
