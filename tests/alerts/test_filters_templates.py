"""Pipeline filters (every operator, matching and not; refused with the condition named; no query per event) and
message templates (escaped per destination format; unknown placeholders refused; missing values empty)."""

from __future__ import annotations

import html

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Account, EndUser
from alerts.destinations import destination_send, discord_body, email_message, slack_body
from alerts.filters import OPS, FilterSubject, filter_matches
from alerts.models import AlertChannel, AlertDelivery, AlertPipeline
from alerts.services import pipeline_create
from alerts.telegram import telegram_body
from alerts.triggers import payload_with_template
from catalog.models import Feature
from catalog.services import feature_create
from tests.conftest import FROZEN_NOW

SECRET = "whsec-filter-0123456789"


@pytest.fixture
def subject(workspace, customer, product) -> FilterSubject:
    customer.attributes = {"tier": "gold", "seats": 40, "region": {"code": "eu"}}
    customer.save()
    user = EndUser.objects.create(
        workspace=workspace, account=customer, external_id="u-1", email="Ann@Initech.com", attributes={"role": "admin"}
    )
    feature = feature_create(workspace=workspace, key="export.csv", name="CSV export", product=product)
    account = Account.objects.select_related("owner").get(pk=customer.pk)
    return FilterSubject(
        account=account, feature=feature, end_user=user, quantity=12, properties={"format": "csv", "rows": 5000}
    )


# Each row: a condition, a value that matches the subject above, and one that does not.
OPERATOR_CASES = [
    ("feature.key", "eq", "export.csv", "export.pdf"),
    ("feature.key", "ne", "export.pdf", "export.csv"),
    ("feature.key", "in", ["export.csv", "import"], ["import"]),
    ("feature.key", "not_in", ["import"], ["export.csv"]),
    ("feature.key", "starts_with", "export.", "import."),
    ("feature.key", "glob", "export.*", "*.pdf"),
    ("account.plan", "eq", "FREE", "pro"),
    ("account.status", "in", ["active"], ["churned"]),
    ("account.owner", "contains", "carol@", "dave@"),
    ("account.attributes.tier", "eq", "gold", "silver"),
    ("account.attributes.seats", "gte", 40, 41),
    ("account.attributes.region.code", "eq", "eu", "us"),
    ("user.email", "contains", "ann@", "bob@"),
    ("user.email_domain", "eq", "initech.com", "acme.com"),
    ("user.attributes.role", "ne", "viewer", "admin"),
    ("event.quantity", "gt", 10, 12),
    ("event.quantity", "gte", 12, 13),
    ("event.quantity", "lt", 13, 12),
    ("event.quantity", "lte", 12, 11),
    ("event.quantity", "eq", 12, 11),
    ("event.properties.format", "in", ["csv", "xlsx"], ["pdf"]),
    ("event.properties.rows", "gt", 1000, 5000),
    ("event.properties.format", "exists", True, False),
    ("event.properties.missing", "exists", False, True),
]


@pytest.mark.parametrize("field, op, matching, other", OPERATOR_CASES)
def test_every_operator_matches_and_does_not(subject, field, op, matching, other):
    # given / when / then
    assert filter_matches({"match": "all", "conditions": [{"field": field, "op": op, "value": matching}]}, subject)
    assert not filter_matches({"match": "all", "conditions": [{"field": field, "op": op, "value": other}]}, subject)


def test_all_and_any(subject):
    yes = {"field": "event.quantity", "op": "gt", "value": 1}
    no = {"field": "account.plan", "op": "eq", "value": "pro"}
    assert not filter_matches({"match": "all", "conditions": [yes, no]}, subject)
    assert filter_matches({"match": "any", "conditions": [yes, no]}, subject)
    assert not filter_matches({"match": "any", "conditions": [no]}, subject)


def test_a_filtered_event_pipeline_alerts_on_the_matching_event_only(ingest, workspace, customer, receiver, eager):
    # given: alert when a free-plan account exports more than 5 rows' worth in csv
    pipeline_create(
        workspace=workspace,
        name="Big CSV exports",
        trigger={"type": "event"},
        filter={
            "match": "all",
            "conditions": [
                {"field": "feature.key", "op": "starts_with", "value": "export"},
                {"field": "event.quantity", "op": "gte", "value": 5},
                {"field": "event.properties.format", "op": "eq", "value": "csv"},
            ],
        },
        destinations=[{"type": "webhook", "url": receiver.url(), "secret": SECRET}],
    )
    # when
    ingest(
        {
            "account_id": "acc-1",
            "feature_id": "export",
            "quantity": 9,
            "event_id": "hit",
            "properties": {"format": "csv"},
        },
        {"account_id": "acc-1", "feature_id": "export", "quantity": 9, "properties": {"format": "pdf"}},
        {"account_id": "acc-1", "feature_id": "export", "quantity": 2, "properties": {"format": "csv"}},
        {"account_id": "acc-1", "feature_id": "import", "quantity": 9, "properties": {"format": "csv"}},
    )
    # then
    assert [r.json["details"]["event_id"] for r in receiver.requests] == ["hit"]
    assert AlertDelivery.objects.count() == 1


# Each operator: the condition's value, an event property that matches it and one that does not (None: absent).
EVENT_OPERATOR_CASES = {
    "eq": ("pdf", "PDF", "csv"),
    "ne": ("pdf", "csv", "pdf"),
    "in": (["csv", "xlsx"], "xlsx", "pdf"),
    "not_in": (["pdf"], "csv", "pdf"),
    "gt": (10, 11, 10),
    "gte": (10, 10, 9),
    "lt": (10, 9, 10),
    "lte": (10, 10, 11),
    "contains": ("port", "Report", "page"),
    "starts_with": ("rep", "Report", "page"),
    "glob": ("r*t", "report", "reports"),
    "exists": (True, "anything", None),
}


def test_every_operator_alerts_on_its_matching_event_and_not_on_the_other(ingest, workspace, customer, receiver, eager):
    # given one pipeline per operator, each posting to its own path of the receiver
    for op, (value, _, _) in EVENT_OPERATOR_CASES.items():
        pipeline_create(
            workspace=workspace,
            name=f"op {op}",
            trigger={"type": "event"},
            filter={
                "conditions": [
                    {"field": "event.properties.case", "op": "eq", "value": op},
                    {"field": "event.properties.v", "op": op, "value": value},
                ]
            },
            destinations=[{"type": "webhook", "url": receiver.url(f"/{op}"), "secret": SECRET}],
        )
    # when a matching and a non-matching event of each operator are ingested
    events = []
    for op, (_, matching, other) in EVENT_OPERATOR_CASES.items():
        for outcome, v in (("match", matching), ("other", other)):
            properties = {"case": op} | ({} if v is None else {"v": v})
            events.append(
                {"account_id": "acc-1", "feature_id": "export", "event_id": f"{op}-{outcome}", "properties": properties}
            )
    ingest(*events)
    # then each operator's pipeline alerted on its matching event only
    got = sorted((r.path, r.json["details"]["event_id"]) for r in receiver.requests)
    assert got == sorted((f"/{op}", f"{op}-match") for op in EVENT_OPERATOR_CASES)
    assert set(EVENT_OPERATOR_CASES) == set(OPS)  # every operator


def _pipeline_body(**extra) -> dict:
    return {
        "name": "P",
        "trigger": {"type": "event"},
        "destinations": [{"type": "slack", "url": "https://h.example.com/s"}],
        **extra,
    }


@pytest.mark.parametrize(
    "filter_, field, message",
    [
        ({"match": "most"}, "filter.match", "filter.match must be 'all' or 'any'; got 'most'."),
        ({"conditions": []}, "filter.conditions", "filter.conditions must be a list of 1 or more conditions."),
        (
            {"conditions": [{"field": "account.colour", "op": "eq", "value": "x"}]},
            "filter.conditions[0].field",
            "filter.conditions[0].field 'account.colour' is not a filter field",
        ),
        (
            {"conditions": [{"field": "event.quantity", "op": "gt", "value": "ten"}]},
            "filter.conditions[0].value",
            "filter.conditions[0].value: 'gt' needs a number; got 'ten'.",
        ),
        (
            {"conditions": [{"field": "account.plan", "op": "like", "value": "x"}]},
            "filter.conditions[0].op",
            "filter.conditions[0].op must be one of eq, ne, in, not_in",
        ),
        (
            {"conditions": [{"field": "account.plan", "op": "in", "value": "pro"}]},
            "filter.conditions[0].value",
            "filter.conditions[0].value: 'in' needs a list of 1 to 100 values",
        ),
        (
            {
                "conditions": [
                    {"field": "account.plan", "op": "eq", "value": "pro"},
                    {"field": "feature.key", "op": "in", "value": ["exprot"]},
                ]
            },
            "filter.conditions[1].value",
            "filter.conditions[1]: no feature 'exprot' in the catalog. Check the spelling, or mark the condition "
            '"expected_later": true',
        ),
        (
            {"conditions": [{"field": "account.plan", "op": "eq"}]},
            "filter.conditions[0].value",
            "filter.conditions[0].value is required: 'eq' compares account.plan with one value.",
        ),
    ],
)
def test_bad_filters_are_refused_naming_the_condition_and_nothing_is_saved(refused, filter_, field, message):
    error = refused("/api/v1/pipelines", _pipeline_body(filter=filter_), field, message)
    assert error["message"].startswith(message)


def test_rollup_triggers_refuse_event_fields_and_unknown_keys_pass_when_expected_later(api):
    # when
    dormant = api.post(
        "/api/v1/pipelines",
        {
            "name": "D",
            "trigger": {"type": "dormant"},
            "filter": {"conditions": [{"field": "event.quantity", "op": "gt", "value": 1}]},
            "destinations": [{"type": "slack", "url": "https://h.example.com/s"}],
        },
        format="json",
    )
    later = api.post(
        "/api/v1/pipelines",
        {
            "name": "L",
            "trigger": {"type": "event"},
            "filter": {
                "conditions": [{"field": "feature.key", "op": "eq", "value": "ai.summary", "expected_later": True}]
            },
            "destinations": [{"type": "slack", "url": "https://h.example.com/s"}],
        },
        format="json",
    )
    mistyped = api.post(
        "/api/v1/pipelines",
        {
            "name": "M",
            "trigger": {"type": "event", "features": ["exprot"]},
            "destinations": [{"type": "slack", "url": "https://h.example.com/s"}],
        },
        format="json",
    )
    # then
    assert dormant.status_code == 400
    assert dormant.json()["error"]["message"] == (
        "filter.conditions[0].field 'event.quantity' is not known to 'dormant' triggers (they know: account)."
    )
    assert later.status_code == 201 and later.json()["filter"]["conditions"][0]["expected_later"] is True
    assert mistyped.status_code == 400 and mistyped.json()["error"]["field"] == "trigger.features"
    assert list(AlertPipeline.objects.values_list("name", flat=True)) == ["L"]


def test_filters_are_evaluated_without_a_query_per_event(ingest, workspace, customer, receiver, eager):
    # given a pipeline filtering on the account, the end user and the event
    pipeline_create(
        workspace=workspace,
        name="Owners",
        trigger={"type": "event"},
        filter={
            "match": "all",
            "conditions": [
                {"field": "account.owner", "op": "contains", "value": "carol"},
                {"field": "user.id", "op": "starts_with", "value": "b"},
                {"field": "account.attributes.tier", "op": "exists", "value": False},
            ],
        },
        destinations=[{"type": "slack", "url": receiver.url()}],
    )
    from alerts.triggers import alert_events_evaluate
    from usage.models import UsageEvent

    def events(n: int, prefix: str) -> list[dict]:
        return [{"account_id": "acc-1", "feature_id": "export", "user_id": f"{prefix}{i}"} for i in range(n)]

    ingest(*events(1, "a"))
    ingest(*events(10, "b"))
    AlertDelivery.objects.all().delete()
    one = list(UsageEvent.objects.order_by("pk").values_list("pk", flat=True)[:1])
    ten = list(UsageEvent.objects.order_by("pk").values_list("pk", flat=True)[1:11])
    # when both batches are evaluated again, with their queries counted (no deliveries: filter says no)
    pipeline = AlertPipeline.objects.get()
    pipeline.filter["conditions"][2]["value"] = True  # nobody has a tier: nothing matches, nothing is created
    pipeline.save()
    with CaptureQueriesContext(connection) as small:
        alert_events_evaluate(workspace_id=workspace.pk, event_ids=one, now=FROZEN_NOW)
    with CaptureQueriesContext(connection) as large:
        alert_events_evaluate(workspace_id=workspace.pk, event_ids=ten, now=FROZEN_NOW)
    # then ten events cost the same queries as one: pipelines, their channels, the events with what they name
    assert len(large.captured_queries) == len(small.captured_queries) == 3


# ------------------------------------------------------------------------------------------------------------
# Templates
# ------------------------------------------------------------------------------------------------------------

TEMPLATE = {
    "title": "$event.name by $account.name",
    "body": "*$account.name* ($account.plan) exported $event.format; $user.email",
}


def _templated_payload() -> dict:
    payload = {
        "event": "export",
        "trigger": "event",
        "title": "x",
        "text": "x",
        "pipeline": {"id": 1, "name": "P"},
        "account": {"id": "acc-1", "name": "<@everyone> *Evil* & Co", "plan": "free", "owner": None, "domain": None},
        "feature": {"id": "export", "name": "Export"},
        "details": {},
        "occurred_at": FROZEN_NOW.isoformat(),
    }
    return payload_with_template(payload, template=TEMPLATE, usage_event=None)


def test_templates_render_escaped_for_each_format():
    # given an account name full of markup, and no user (renders empty)
    payload = _templated_payload()
    # then the plain rendering (webhook, PostgreSQL, logs)
    assert payload["title"] == "export by <@everyone> *Evil* & Co"
    assert payload["text"] == "*<@everyone> *Evil* & Co* (free) exported ; "
    # Slack mrkdwn: the author's *bold* stays, the value's <, > and & are escaped
    slack = slack_body(payload)
    assert slack["blocks"][1]["text"]["text"] == "*&lt;@everyone&gt; *Evil* &amp; Co* (free) exported ; "
    # Discord markdown: the value's markdown characters are escaped, the author's are not
    embed = discord_body(payload)["embeds"][0]
    assert embed["title"] == r"export by \<\@everyone\> \*Evil\* & Co"
    assert embed["description"] == r"*\<\@everyone\> \*Evil\* & Co* (free) exported ; "
    # Telegram's HTML parse mode: everything is text
    tg = telegram_body(chat_id="1", title=payload["title"], lines=[payload["text"]])
    title = "<b>export by &lt;@\u2060everyone&gt; *Evil* &amp; Co</b>"
    assert tg["text"] == title + "\n*&lt;@\u2060everyone&gt; *Evil* &amp; Co* (free) exported ; "
    # HTML e-mail
    subject, _text, body = email_message(payload)
    assert subject == "export by <@everyone> *Evil* & Co"
    assert "<h2>export by &lt;@everyone&gt; *Evil* &amp; Co</h2>" in body and "<@everyone>" not in body


def test_email_alerts_carry_the_escaped_html_part(workspace, alert_settings):
    channel = AlertChannel(workspace=workspace, type="email", to="cs@example.com")
    result = destination_send(channel=channel, payload=_templated_payload(), now=FROZEN_NOW, delivery_id=1)
    assert result.ok
    [message] = mail.outbox
    [(html_body, mime)] = message.alternatives
    assert mime == "text/html" and html.unescape(html_body).count("<@everyone> *Evil* & Co") == 3


@pytest.mark.parametrize(
    "template, field, message",
    [
        ({"title": "$account.colour"}, "template.title", "template.title: $account.colour is not a placeholder"),
        ({"body": "$order.id"}, "template.body", "template.body: $order.id is not a placeholder; use $event.*"),
        ({"body": "costs $5"}, "template.body", "template.body: a '$' must start a placeholder"),
        ({"footer": "x"}, "template.footer", "template.footer is not a template part (title, body)."),
    ],
)
def test_bad_templates_are_refused_and_nothing_is_saved(refused, template, field, message):
    error = refused("/api/v1/pipelines", _pipeline_body(template=template), field, message)
    assert error["message"].startswith(message)


def test_a_templated_event_reaches_slack_with_the_event_property(ingest, workspace, customer, receiver, eager):
    # given
    pipeline_create(
        workspace=workspace,
        name="Templated",
        trigger={"type": "event"},
        template={
            "title": "$event.name × $event.quantity",
            "body": "$account.name exported $$${event.rows} rows as $event.format",
        },
        destinations=[{"type": "slack", "url": receiver.url()}],
    )
    # when
    ingest(
        {"account_id": "acc-1", "feature_id": "export", "quantity": 3, "properties": {"format": "<csv>", "rows": 10}}
    )
    # then
    [request] = receiver.requests
    blocks = request.json["blocks"]
    assert blocks[0]["text"]["text"] == "export × 3"
    assert blocks[1]["text"]["text"] == "Initech exported $10 rows as &lt;csv&gt;"
    assert Feature.objects.filter(key="export").exists()
