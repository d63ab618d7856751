"""Each destination becomes the channel row of the same id (see 0004); destinations of one workspace with the
same target merge into the oldest: its pipelines and deliveries move to it, the others' one-minute rate windows
are dropped. A migration of its own: on PostgreSQL, row updates and ALTER TABLE do not share a transaction."""

import hashlib

from django.db import migrations

TYPE_LABELS = {'slack': 'Slack', 'discord': 'Discord', 'webhook': 'Webhook', 'email': 'E-mail'}


def _target_key(kind, url, to):
    # The normalisation of alerts.channels.channel_target_key for the four types that existed then.
    if kind == 'email':
        target = ','.join(sorted(a.strip().lower() for a in to.split(',') if a.strip()))
    else:
        target = url.strip()
    return hashlib.sha256(f'{kind}\n{target}'.encode()).hexdigest()


def _label(channel):
    target = channel.to if channel.type == 'email' else channel.url.split('//', 1)[-1].split('/', 1)[0]
    return f'{TYPE_LABELS.get(channel.type, channel.type)} {target}'[:180]


def destinations_to_channels(apps, schema_editor):
    Channel = apps.get_model('alerts', 'AlertChannel')
    Link = apps.get_model('alerts', 'AlertPipelineChannel')
    Delivery = apps.get_model('alerts', 'AlertDelivery')
    RateWindow = apps.get_model('alerts', 'AlertRateWindow')
    survivors, positions, names = {}, {}, set()
    for channel in Channel.objects.order_by('id'):
        key = _target_key(channel.type, channel.url, channel.to)
        survivor = survivors.setdefault((channel.workspace_id, key), channel)
        if not Link.objects.filter(pipeline_id=channel.pipeline_id, channel_id=survivor.pk).exists():
            position = positions.get(channel.pipeline_id, 0)
            positions[channel.pipeline_id] = position + 1
            Link.objects.create(pipeline_id=channel.pipeline_id, channel_id=survivor.pk, position=position)
        if survivor.pk != channel.pk:
            Delivery.objects.filter(channel_id=channel.pk).update(channel_id=survivor.pk)
            RateWindow.objects.filter(channel_id=channel.pk).delete()
            channel.delete()
            continue
        base = _label(channel)
        name, n = base, 2
        while (channel.workspace_id, name) in names:
            name, n = f'{base} ({n})', n + 1
        names.add((channel.workspace_id, name))
        channel.name, channel.target_key = name, key
        channel.save(update_fields=['name', 'target_key'])


def channels_to_destinations(apps, schema_editor):
    # Back to one destination per pipeline: a channel goes with the first pipeline that used it.
    Channel = apps.get_model('alerts', 'AlertChannel')
    Link = apps.get_model('alerts', 'AlertPipelineChannel')
    for channel in Channel.objects.order_by('id'):
        link = Link.objects.filter(channel_id=channel.pk).order_by('id').first()
        if link is None:
            channel.delete()
            continue
        channel.pipeline_id = link.pipeline_id
        channel.save(update_fields=['pipeline'])


class Migration(migrations.Migration):

    dependencies = [('alerts', '0004_channels')]

    operations = [migrations.RunPython(destinations_to_channels, channels_to_destinations)]
