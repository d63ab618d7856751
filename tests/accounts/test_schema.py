import json

import pytest

pytestmark = pytest.mark.django_db


def test_schema_declares_the_bearer_api_key_on_every_api_operation(client):
    # when
    schema = json.loads(client.get("/api/schema/", HTTP_ACCEPT="application/json").content)
    # then
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key from `manage.py create_api_key SLUG --scopes ingest,read,admin`: "
        "`Authorization: Bearer upt_…`.",
    }
    operations = [
        op
        for name, path in schema["paths"].items()
        if not name.startswith("/api/segment/")  # Segment's write key: tests/usage/test_segment.py
        for op in path.values()
        if isinstance(op, dict)
    ]
    assert len(operations) >= 40
    assert all(op.get("security") == [{"ApiKey": []}] for op in operations)
