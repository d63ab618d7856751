"""Last-seen pairs are updated in place every minute (tens of thousands per rollup): pages kept 30 % free let
those updates stay on their page (HOT: no index entry per update)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0008_rollup_watermark"),
    ]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE analytics_accountfeaturelastseen SET (fillfactor = 70)",
            reverse_sql="ALTER TABLE analytics_accountfeaturelastseen RESET (fillfactor)",
        ),
    ]
