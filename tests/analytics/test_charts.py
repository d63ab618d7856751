"""Chart labels from data are HTML-escaped: plotly.js renders `<a href>`, `<b>` and entities in text."""

import json

import pytest
from django.test import Client
from django.utils import timezone

from analytics import charts

LINK = '<a href="https://evil.example/">Upgrade</a>'
ESCAPED = '&lt;a href="https://evil.example/"&gt;Upgrade&lt;/a&gt;'


def test_every_builder_escapes_its_labels():
    bars = charts.top_features_bar(names=[LINK, "A & B"], current=[2, 1], prior=[1, 0])
    plans = charts.plan_bars(plans=[LINK], accounts=[3])
    lines = charts.daily_lines(days=["2026-11-18"], series={LINK: [1]})
    assert bars["data"][0]["y"] == ["A &amp; B", ESCAPED] and bars["data"][1]["y"] == ["A &amp; B", ESCAPED]
    assert plans["data"][0]["x"] == [ESCAPED]
    assert lines["data"][0]["name"] == ESCAPED and lines["data"][0]["x"] == ["2026-11-18"]


def _figure(html: str, element_id: str) -> dict:
    start = html.index(f'<script id="{element_id}" type="application/json">') + len(
        f'<script id="{element_id}" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


@pytest.mark.django_db
def test_the_pages_carry_escaped_labels_in_their_figure_json(api, workspace, staff_of):
    # given a feature named with a link and an account whose plan is one, both set over the API
    from datetime import timedelta

    from analytics.services import rollup_pending

    assert api.post("/api/v1/events", {"account_id": "a", "feature_id": "f"}, format="json").status_code == 200
    assert api.patch("/api/v1/features/f", {"name": LINK}, format="json").status_code == 200
    assert api.put("/api/v1/accounts/a", {"plan": LINK}, format="json").status_code == 200
    rollup_pending(now=timezone.now() + timedelta(seconds=1))
    client = Client()
    client.force_login(staff_of(workspace, "viewer"))
    # when the overview and the feature page are drawn
    overview = client.get("/").content.decode()
    feature = client.get("/features/f/").content.decode()
    # then the figures plotly.js receives hold the labels escaped
    assert _figure(overview, "top-chart-data")["data"][1]["y"] == [ESCAPED]
    assert _figure(feature, "plan-data")["data"][0]["x"] == [ESCAPED]
