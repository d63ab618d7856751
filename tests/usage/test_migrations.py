"""Data migrations of the usage app, run on rows written as the code before them wrote them."""

import importlib
import json

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone

from usage.models import IngestionProblem

pytestmark = pytest.mark.django_db

redacted = importlib.import_module("usage.migrations.0008_ingestion_problems_write_keys_redacted")


def test_write_keys_in_stored_problem_excerpts_are_redacted(workspace):
    # given problems recorded with a write key in their excerpt: whole, cut short by the 1,000-character limit,
    # with an escaped quote; and one without a key
    excerpts = [
        json.dumps({"writeKey": "upt_0123456789ab_secret", "userId": "u"}, separators=(",", ":")),
        '{"userId":"u","writeKey":"upt_0123456789ab_sec…',
        '{"writeKey":"a\\"b","event":"x"}',
        '{"userId":"nobody"}',
    ]
    for n, excerpt in enumerate(excerpts):
        IngestionProblem.objects.create(
            workspace=workspace,
            source="segment",
            reason="no_account",
            message="m",
            message_id=f"m-{n}",
            payload_excerpt=excerpt,
            created_at=timezone.now(),
        )
    # when
    with connection.schema_editor() as schema_editor:
        redacted.write_keys_redact(apps, schema_editor)
    # then
    assert list(IngestionProblem.objects.order_by("message_id").values_list("payload_excerpt", flat=True)) == [
        '{"writeKey":"[redacted]","userId":"u"}',
        '{"userId":"u","writeKey":"[redacted]"',
        '{"writeKey":"[redacted]","event":"x"}',
        '{"userId":"nobody"}',
    ]
