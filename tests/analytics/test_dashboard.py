"""Dashboard pages through Django's test client: login, workspace scoping (404 across workspaces, nothing of
another workspace in lists or exports), numbers equal to the analytics API's, CSV export, free tier, empty state."""

import csv
import importlib
import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from accounts.services import membership_set, workspace_create
from core.views import SESSION_KEY

from .browser.data import DASHBOARD_PAGES


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def _total(html: str, name: str) -> int:
    match = re.search(rf'data-total="{name}">([-\d]+)', html)
    assert match, f"no total {name}"
    return int(match.group(1))


PAGES = [*DASHBOARD_PAGES, "/lists/dormant/export.csv"]


@pytest.mark.parametrize("path", PAGES)
def test_anonymous_users_are_sent_to_login(built, path):
    # given an anonymous client
    client = Client()
    # when it opens a dashboard page
    response = client.get(path)
    # then it is redirected to the admin login, coming back to the page afterwards
    assert response.status_code == 302
    assert response["Location"] == f"/admin/login/?next={path}"


def test_every_page_renders_for_a_member(carol_client):
    for path in PAGES[:-1]:
        response = carol_client.get(path)
        assert response.status_code == 200, path
        assert b"Acme Inc." in response.content


def test_overview_numbers_equal_the_analytics_api(built, carol_client, make_client):
    # given the same window on the page and on the API
    window = {"from": (built.now - timedelta(days=29)).date().isoformat(), "to": built.now.date().isoformat()}
    api = make_client(built.workspace, "read").get("/api/v1/products/default/analytics/feature-usage", window).json()
    # when the overview is opened with that window
    html = carol_client.get("/", {**window, "product": "default"}).content.decode()
    # then the totals and every top feature's numbers are the API's
    for name in ("events", "unique_features", "unique_accounts", "unique_domains", "active_accounts"):
        assert _total(html, name) == api["totals"][name], name
    assert api["totals"]["events"] == 56 + 90 + 3 + 4 + 1 + 1 and api["totals"]["active_accounts"] == 4
    rows = re.findall(
        r'data-feature="([^"]+)">.*?data-col="events">(-?\d+)</td><td class="num" data-col="prior_events">'
        r'(-?\d+)</td>\s*<td class="num" data-col="accounts">(\d+)</td><td class="num" '
        r'data-col="adoption_pct">([\d.]+) %',
        html,
        re.S,
    )
    assert [(f, int(e), int(p), int(a), float(pct)) for f, e, p, a, pct in rows] == [
        (t["feature_id"], t["events"], t["prior_events"], t["accounts"], t["adoption_pct"]) for t in api["top_features"]
    ]
    assert [q["feature_id"] for q in api["quiet_features"]] == ["legacy.import"]
    assert 'href="/features/legacy.import/"' in html


def test_feature_and_account_pages_equal_the_daily_apis(built, carol_client, make_client):
    # given an API client of the same workspace
    api = make_client(built.workspace, "read")
    window = {"from": (built.now - timedelta(days=13)).date().isoformat(), "to": built.now.date().isoformat()}
    # when the feature and account pages are opened for that window
    feature_api = api.get("/api/v1/products/default/analytics/features/reports.view/daily", window).json()
    account_api = api.get("/api/v1/accounts/a1/analytics/daily", window).json()
    feature_html = carol_client.get("/features/reports.view/", window).content.decode()
    account_html = carol_client.get("/accounts/a1/", window).content.decode()
    # then they show the API's numbers
    assert _total(feature_html, "uses") == feature_api["uses"] == 14 * 2 + 2 + 1 + 1
    assert _total(feature_html, "accounts") == feature_api["accounts"] == 3
    assert _total(feature_html, "users") == feature_api["users"]
    assert _total(account_html, "uses") == account_api["uses"] == 14 * 2 + 90
    # and the account page shows the allowance with its reset date (in the workspace's timezone, UTC here) and its
    # owner and plan
    assert re.search(
        r'data-feature="api.calls">.*?90.0 %.*?<td class="num">90</td><td class="num">100</td>'
        r'<td><time datetime="\d{4}-\d\d-01T00:00:00\+00:00" title="\d{4}-\d\d-01 00:00 UTC">'
        r"\d{4}-\d\d-01 00:00</time>",
        account_html,
        re.S,
    )
    assert re.search(r"plan <strong>team</strong> · owner <strong>carol</strong>", account_html)


def test_feature_page_pages_the_accounts_using_it_and_splits_all_of_them_by_plan(built, carol_client, monkeypatch):
    # given pages of 2 rows
    from analytics import views

    monkeypatch.setattr(views, "FEATURE_PAGE_SIZE", 2)
    # when the feature page is opened for the default window (30 days), then its second page
    html = carol_client.get("/features/reports.view/").content.decode()
    second = carol_client.get("/features/reports.view/", {"using_page": "2"}).content.decode()
    # then a1 (28 days x 2) and a2 (3) are on the first page with plan and owner, a3 and a4 (1 each) on the second
    row = (
        r'<tr><td><a href="/accounts/(\w+)/">[^<]*</a></td><td>([\w—]*)</td><td>([\w—]*)</td>'
        r'<td class="num">(\d+)</td><td><time '
    )

    def using(page: str) -> list[tuple]:
        return re.findall(row, re.search(r'<table class="data" id="using">.*?</table>', page, re.S).group(0))

    assert using(html) == [("a1", "team", "carol", "56"), ("a2", "free", "carol", "3")]
    assert using(second) == [("a3", "team", "dave", "1"), ("a4", "team", "—", "1")]
    assert "Accounts using it (4)" in html
    assert 'page 1 of 2 <a href="?using_page=2"' in html
    # and the plan split covers all 4
    by_plan = re.search(r'<table class="data" id="by-plan">.*?</table>', html, re.S).group(0)
    assert re.findall(r'<tr><td>(\w+)</td><td class="num">(\d+)</td><td class="num">(\d+)</td></tr>', by_plan) == [
        ("team", "3", "58"),
        ("free", "1", "3"),
    ]
    # and the page draws its own heatmap and the trend against the prior window
    assert 'id="heatmap" data-figure="heatmap-data"' in html
    assert '"name": "Prior window"' in html


def test_feature_page_shows_the_accounts_entitled_but_not_using_it(built, carol_client):
    # given export.pdf, granted by the team plan (a1, a3, a4) and used only by a2 (free, not granted)
    # when its page is opened
    html = carol_client.get("/features/export.pdf/").content.decode()
    # then the adoption gap lists the three team accounts with plan, owner and value
    gap = re.search(r'<table class="data" id="entitled-unused">.*?</table>', html, re.S).group(0)
    rows = re.findall(r'<a href="/accounts/(\w+)/">[^<]*</a></td><td>(\w+)</td><td>([\w—]+)</td><td>(\w+)</td>', gap)
    assert rows == [("a1", "team", "carol", "true"), ("a3", "team", "dave", "true"), ("a4", "team", "—", "true")]
    assert "Entitled but not using it (3 of 3 entitled)" in html
    assert _total(html, "entitled_unused") == 3


def test_a_user_of_workspace_a_cannot_open_b_pages(built, carol_client):
    # given carol, a member of acme only, and objects that exist in globex only
    for path in ("/accounts/g-secret/", "/accounts/g-hidden/"):
        # when she opens them, then they do not exist for her
        assert carol_client.get(path).status_code == 404
    # and she cannot switch to globex
    assert carol_client.post("/switch-workspace/", {"workspace": "globex"}).status_code == 404
    assert SESSION_KEY not in carol_client.session


def test_lists_and_exports_never_show_another_workspace(built, carol_client):
    # given globex accounts that would be on every list
    for kind in ("near-limit", "free-unentitled", "dormant", "usage-drop"):
        # when carol opens each list and its CSV
        page = carol_client.get(f"/lists/{kind}/").content.decode()
        rows = _csv(carol_client.get(f"/lists/{kind}/export.csv"))
        # then nothing of globex appears
        assert "Globex" not in page and "g-secret" not in page and "g-hidden" not in page, kind
        assert all(not r[0].startswith("g-") for r in rows[1:]), kind


def test_switching_workspace_scopes_every_page(built, db):
    # given dave, a member of both workspaces
    from django.contrib.auth import get_user_model

    dave = get_user_model().objects.get(username="dave")
    dave.set_password("pw-dave-123")
    dave.save()
    client = Client()
    client.force_login(get_user_model().objects.get(username="dave"))
    # when he switches to globex
    response = client.post("/switch-workspace/", {"workspace": "globex"})
    # then lists show globex's accounts only, and acme's account pages are 404
    assert response.status_code == 302
    rows = _csv(client.get("/lists/near-limit/export.csv"))
    assert rows == [
        ["Account", "Name", "Plan", "Owner", "Feature", "Used", "Limit", "Used %", "Resets at", "State"],
        ["g-hidden", "Globex Hidden", "team", "dave", "api.calls", "500", "100", "500.0", rows[1][8], "over"],
    ]
    assert client.get("/accounts/a1/").status_code == 404
    assert client.get("/accounts/g-secret/").status_code == 200


def test_lists_hold_the_expected_accounts(built, carol_client):
    # when each list is exported with its defaults
    near = _csv(carol_client.get("/lists/near-limit/export.csv"))
    free = _csv(carol_client.get("/lists/free-unentitled/export.csv"))
    dormant = _csv(carol_client.get("/lists/dormant/export.csv"))
    dropped = _csv(carol_client.get("/lists/usage-drop/export.csv"))
    # then each holds exactly the accounts of the scenario
    assert [r[:8] for r in near[1:]] == [["a1", "Alpha", "team", "carol", "api.calls", "90", "100", "90.0"]]
    assert free[1:] == [["a2", "Beta", "free", "carol", "export.pdf", "4"]]
    assert [r[0] for r in dormant[1:]] == ["a3"] and dormant[1][5] == "20"
    assert dropped[0] == ["Account", "Name", "Plan", "Owner", "Uses", "Prior uses", "Change %"]
    assert dropped[1:] == [
        ["a4", "Delta", "team", "", "1", "10", "-90.0"],
        ["a3", "Gamma", "team", "dave", "1", "9", "-88.9"],
    ]


def test_list_filters_and_sort_apply_to_page_and_csv(built, carol_client):
    # given the usage-drop list widened to every account with any drop
    params = {"percent": "1", "sort": "-uses"}
    all_rows = _csv(carol_client.get("/lists/usage-drop/export.csv", params))
    # when filtered by owner (one, or nobody) and plan
    dave_rows = _csv(carol_client.get("/lists/usage-drop/export.csv", {**params, "owner": "dave"}))
    nobodys_rows = _csv(carol_client.get("/lists/usage-drop/export.csv", {**params, "owner": "(unassigned)"}))
    team_rows = _csv(carol_client.get("/lists/usage-drop/export.csv", {**params, "plan": "team"}))
    free_rows = _csv(carol_client.get("/lists/usage-drop/export.csv", {**params, "plan": "free"}))
    page = carol_client.get("/lists/usage-drop/", {**params, "owner": "dave"}).content.decode()
    # then the rows are sorted by uses (descending) and only the owner's / plan's accounts stay
    uses = [int(r[4]) for r in all_rows[1:]]
    assert [r[0] for r in all_rows[1:]] == ["a3", "a4"] and uses == [1, 1]
    assert [r[0] for r in dave_rows[1:]] == ["a3"]
    assert [(r[0], r[3]) for r in nobodys_rows[1:]] == [("a4", "")]
    assert [r[0] for r in team_rows[1:]] == ["a3", "a4"] and free_rows == all_rows[:1]
    assert '<p class="help" id="count">1 account</p>' in page and "/accounts/a4/" not in page


def test_bad_filters_are_refused_with_a_message(built, carol_client):
    # when the range is reversed, or the sort names an unknown column
    reversed_ = carol_client.get("/", {"from": "2026-02-10", "to": "2026-02-01"})
    bad_sort = carol_client.get("/lists/dormant/export.csv", {"sort": "password"})
    # then both say what is wrong
    assert reversed_.status_code == 400 and b"is before" in reversed_.content
    assert bad_sort.status_code == 400 and b"Cannot sort by 'password'" in bad_sort.content


def test_free_workspace_sees_an_upgrade_notice(db, staff_user):
    # given a free-tier workspace with a member
    free = workspace_create(slug="freebie", name="Freebie", tier="free")
    membership_set(workspace=free, user=staff_user, role="viewer")
    client = Client()
    client.force_login(get_user_model().objects.get(username="carol"))
    # when the overview and a list are opened
    overview = client.get("/")
    listing = client.get("/lists/dormant/")
    export = client.get("/lists/dormant/export.csv")
    # then they show the upgrade notice, never data
    assert b'id="upgrade-notice"' in overview.content and b'id="upgrade-notice"' in listing.content
    assert export.status_code == 402


def test_new_workspace_shows_how_to_send_a_first_event(db, staff_user, workspace, staff_of):
    # given a paid workspace without any event
    staff_of(workspace)
    client = Client()
    client.force_login(get_user_model().objects.get(username="carol"))
    # when the overview is opened
    html = client.get("/").content.decode()
    # then it shows a curl example with the events URL of this server
    assert 'id="empty-state"' in html
    assert "curl -X POST http://testserver/api/v1/events" in html
    assert "create_api_key acme --scopes ingest,read" in html


def test_overview_module_and_plan_filters(built, carol_client):
    # when the overview is narrowed to the reports module, then to the free plan
    module = carol_client.get("/", {"module": "reports"}).content.decode()
    plan = carol_client.get("/", {"plan": "free"}).content.decode()
    # then only reports features count, and only free accounts
    assert re.findall(r'<tr data-feature="([^"]+)"', module) == ["reports.view", "export.pdf"]
    assert _total(module, "events") == 56 + 3 + 1 + 1 + 4
    assert _total(plan, "events") == 3 + 4 and _total(plan, "unique_accounts") == 1
    assert _total(plan, "active_accounts") == 1


def test_top_features_chart_opens_on_a_log_axis_when_values_spread_widely():
    from analytics import charts

    # given one heavy feature and small ones
    wide = charts.top_features_bar(names=["Heavy", "Small"], current=[44735, 172], prior=[49227, 166])
    close = charts.top_features_bar(names=["A", "B"], current=[120, 100], prior=[90, 0])
    # then the wide spread opens on a log axis, the close one on a linear axis, both with the toggle
    assert (wide["layout"]["xaxis"]["type"], close["layout"]["xaxis"]["type"]) == ("log", "linear")
    labels = [b["label"] for b in wide["layout"]["updatemenus"][0]["buttons"]]
    assert labels == ["Linear", "Log scale"]
    # and every bar carries its value with thousands separators, largest on top
    assert wide["data"][1]["text"] == ["172", "44,735"]
    # and the heatmap's colour bar is titled
    assert charts.heatmap(grid=[[0] * 24] * 7, timezone="UTC")["data"][0]["colorbar"]["title"]["text"] == "Net uses"


def test_overview_lists_active_features_that_were_never_used(built, carol_client):
    from catalog.services import feature_activate, feature_create

    # given an active feature nobody used, and a draft one nobody used
    feature_activate(
        feature=feature_create(workspace=built.workspace, key="sso.login", name="Single sign-on", product=built.product)
    )
    feature_create(workspace=built.workspace, key="beta.thing", name="Beta thing", product=built.product)
    # when the overview is opened
    html = carol_client.get("/").content.decode()
    # then only the active one is listed as never used, beside the quiet features
    never = re.search(r'<table class="data" id="never-used">.*?</table>', html, re.S).group(0)
    assert re.findall(r'<a href="/features/([\w.]+)/">([^<]+)</a>', never) == [("sso.login", "Single sign-on")]
    assert "Never used (1)" in html


def _feature_rows(html: str) -> list[tuple[str, int]]:
    return [
        (f, int(e.replace(",", "")))
        for f, e in re.findall(r'data-feature="([^"]+)">.*?data-col="events">([-\d,]+)<', html, re.S)
    ]


def test_overview_pages_through_every_used_feature_and_says_how_many(built, carol_client, monkeypatch):
    # given pages of 2 features (4 used in the window: reports.view 62, api.calls 90, export.pdf 4, legacy.import 0)
    from analytics import selectors

    feature_usage = importlib.import_module("analytics.selectors.feature_usage")

    monkeypatch.setattr(selectors, "TOP_FEATURES", 2)
    monkeypatch.setattr(feature_usage, "TOP_FEATURES", 2)
    # when the overview's adoption table is opened, then its second page
    first = carol_client.get("/").content.decode()
    second = carol_client.get("/", {"features_page": "2"}).content.decode()
    # then the used features are split over two pages, largest first, and the page says how many there are
    assert _feature_rows(first) == [("api.calls", 90), ("reports.view", 61)]
    assert _feature_rows(second) == [("export.pdf", 4)]
    assert "1–2 of 3 used features, by uses" in first
    assert "3–3 of 3 used features, by uses" in second
    assert 'page 1 of 2 <a href="?features_page=2"' in first


def test_overview_has_an_all_products_choice(built, carol_client):
    from analytics.services import rollup_pending
    from usage.services import events_ingest

    # given uses of a feature of a second product
    events_ingest(
        workspace=built.workspace,
        payload=[{"account_id": "a1", "feature_id": "chat.send", "product_id": "chat", "quantity": 7}],
        now=built.now,
    )
    rollup_pending(now=built.now + timedelta(seconds=2))
    # when the overview is opened for the default product and for all products
    default = carol_client.get("/", {"product": "default"}).content.decode()
    every = carol_client.get("/", {"product": "*"}).content.decode()
    # then "All products" adds the second product's uses and feature, and keeps the accounts distinct
    assert '<option value="*" selected>All products</option>' in every
    assert _total(every, "events") == _total(default, "events") + 7
    assert _total(every, "unique_features") == _total(default, "unique_features") + 1
    assert _total(every, "unique_accounts") == _total(default, "unique_accounts") == 4
    assert ("chat.send", 7) in _feature_rows(every)
    assert "chat.send" not in default
    # and its heatmap is drawn from every product's buckets
    assert 'id="heatmap" data-figure="heatmap-data"' in every
