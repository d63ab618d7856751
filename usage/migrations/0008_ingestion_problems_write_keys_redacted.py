"""Ingestion problems recorded before the Segment API dropped `writeKey` from messages kept it, a live API key, in
their payload excerpt (shown on the dashboard): its value is replaced by "[redacted]"."""

from django.db import migrations

REDACT = r"""
UPDATE usage_ingestionproblem
   SET payload_excerpt = regexp_replace(payload_excerpt, '("writeKey":)"(\\.|[^"\\])*"?', '\1"[redacted]"', 'g')
 WHERE payload_excerpt LIKE '%"writeKey":%'
"""


def write_keys_redact(apps, schema_editor) -> None:
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(REDACT)


class Migration(migrations.Migration):
    dependencies = [("usage", "0007_segment_api")]

    operations = [migrations.RunPython(write_keys_redact, migrations.RunPython.noop)]
