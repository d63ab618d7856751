"""Paced channels (Telegram): each delivery keeps the send slot it reserved, so the chat's recent sends are
read from the delivery log (alerts/pacing.py)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_account_search_indexes'),
        ('alerts', '0006_channel_constraints'),
    ]

    operations = [
        migrations.AddField(
            model_name='alertdelivery',
            name='send_after',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name='alertdelivery',
            index=models.Index(condition=models.Q(('send_after__isnull', False)), fields=['channel', '-send_after'], name='alerts_alertdelivery_slot_idx'),
        ),
    ]
