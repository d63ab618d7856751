"""The moved tables take this app's names (ALTER TABLE … RENAME: the rows stay), and the admin's content types
and permissions follow the models to this app."""

from django.db import migrations

MODELS = ['alertpipeline', 'alertdestination', 'alertdelivery', 'alertratewindow', 'alertthresholdmark', 'alertwindowmark']


def content_types_to_alerts(apps, schema_editor):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    taken = set(ContentType.objects.filter(app_label='alerts').values_list('model', flat=True))
    ContentType.objects.filter(app_label='usage', model__in=[m for m in MODELS if m not in taken]).update(
        app_label='alerts'
    )


def content_types_to_usage(apps, schema_editor):
    ContentType = apps.get_model('contenttypes', 'ContentType')
    taken = set(ContentType.objects.filter(app_label='usage').values_list('model', flat=True))
    ContentType.objects.filter(app_label='alerts', model__in=[m for m in MODELS if m not in taken]).update(
        app_label='usage'
    )


class Migration(migrations.Migration):

    dependencies = [
        ('alerts', '0001_initial'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('usage', '0006_alerts_moved_out_events_outbox'),
    ]

    operations = [
        *[migrations.AlterModelTable(name=model, table=None) for model in MODELS],
        migrations.RunPython(content_types_to_alerts, content_types_to_usage),
    ]
