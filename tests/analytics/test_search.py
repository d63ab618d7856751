"""The dashboard's search (GET /search/): accounts by name, domain or external id, ranked exact id > prefix >
substring, features by name or key; the header's htmx suggestions; scoped to the current workspace; the
queries are answered from the search indexes."""

import re

from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client

from accounts.models import Account
from accounts.selectors import account_search
from catalog.selectors import feature_search


def _ids(accounts) -> list[str]:
    return [a.external_id for a in accounts]


def test_accounts_are_found_by_part_of_name_domain_or_id_case_insensitively(built):
    # given acme's accounts a1 Alpha (alpha.com), a2 Beta (beta.io), a3 Gamma (gamma.org), a4 Delta (delta.net)
    ws = built.workspace
    # then substrings of a name, a domain and an id find them, in any case
    assert _ids(account_search(workspace=ws, query="LPH")) == ["a1"]
    assert _ids(account_search(workspace=ws, query="ta.n")) == ["a4"]
    assert _ids(account_search(workspace=ws, query="mma")) == ["a3"]
    # and a query under three characters matches prefixes only ("et" is inside Beta but starts nothing)
    assert _ids(account_search(workspace=ws, query="et")) == []
    assert _ids(account_search(workspace=ws, query="de")) == ["a4"]
    # and nothing of another workspace (globex's "Globex Secret") is ever found
    assert _ids(account_search(workspace=ws, query="secret")) == []
    assert _ids(account_search(workspace=ws, query="  ")) == []


def test_the_exact_id_ranks_first_then_prefixes_then_substrings(built):
    # given accounts matching "alp" by exact id, by prefixes (a1 Alpha, Alpine) and inside a name (Ralph)
    ws = built.workspace
    Account.objects.create(workspace=ws, external_id="zz-9", name="Ralph & Sons")
    Account.objects.create(workspace=ws, external_id="b-2", name="Alpine")
    Account.objects.create(workspace=ws, external_id="alp", name="Zulu")
    # when searching "ALP"
    found = _ids(account_search(workspace=ws, query="ALP"))
    # then the exact id comes first, then prefixes (by name), then substrings
    assert found == ["alp", "a1", "b-2", "zz-9"]
    # and the limit keeps the best
    assert _ids(account_search(workspace=ws, query="ALP", limit=2)) == ["alp", "a1"]


def test_features_are_found_by_name_or_key(built):
    ws = built.workspace
    assert [f.key for f in feature_search(workspace=ws, query="pdf")] == ["export.pdf"]
    assert [f.key for f in feature_search(workspace=ws, query="REPORTS.view")] == ["reports.view"]
    assert [f.key for f in feature_search(workspace=ws, query="calls")] == ["api.calls"]


def test_search_page_lists_accounts_and_features_without_javascript(carol_client):
    # when the full results page is opened for "a"
    html = carol_client.get("/search/", {"q": "alp"}).content.decode()
    # then it links the matching account to its dashboard page and shows id, domain, plan and owner
    row = re.search(r'<table class="data" id="search-accounts">.*?</table>', html, re.S).group(0)
    assert '<a href="/accounts/a1/">Alpha</a></td><td><code>a1</code></td><td>alpha.com</td><td>team</td>' in row
    assert "<td>carol</td>" in row
    assert row.count("<tr>") == 2  # header + one account
    assert "Globex" not in html


def test_header_suggestions_answer_htmx_with_a_fragment(carol_client):
    # when htmx asks for suggestions as the user types
    response = carol_client.get("/search/", {"q": "rep", "suggest": "1"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    # then the answer is the fragment only, with the feature and a link to all results
    assert response.status_code == 200
    assert "<html" not in html
    assert 'href="/features/reports.view/" data-kind="feature"' in html
    assert 'href="/search/?q=rep"' in html


def test_every_page_has_the_search_box(carol_client):
    html = carol_client.get("/accounts/a1/").content.decode()
    assert 'action="/search/" class="site-search"' in html
    assert 'hx-get="/search/?suggest=1"' in html


def test_substring_search_uses_the_trigram_indexes(built):
    # given the planner told not to scan the table (a few rows would otherwise make a scan cheaper)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        # when the search's query is explained
        queryset = Account.objects.filter(name__icontains="lph")
        plan = queryset.explain()
    # then it reads the name's trigram index
    assert "accounts_acct_name_trgm" in plan


def test_admin_change_pages_link_to_the_dashboard_and_back(built, carol_client):
    from catalog.models import Feature

    # given a superuser on the admin's account and feature change pages
    admin_user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client = Client()
    client.force_login(admin_user)
    account = Account.objects.get(workspace=built.workspace, external_id="a1")
    feature = Feature.objects.get(workspace=built.workspace, key="reports.view")
    account_page = client.get(f"/admin/accounts/account/{account.pk}/change/").content.decode()
    feature_page = client.get(f"/admin/catalog/feature/{feature.pk}/change/").content.decode()
    # then their dashboard links open the dashboard pages in their workspace
    assert 'href="/accounts/a1/?workspace=acme"' in account_page
    assert 'href="/features/reports.view/?workspace=acme"' in feature_page
    # and the dashboard pages, opened from there, are acme's and link back to the admin for those who may edit
    dashboard = client.get("/accounts/a1/?workspace=acme").content.decode()
    assert f'href="/admin/accounts/account/{account.pk}/change/" id="admin-link"' in dashboard
    feature_dashboard = client.get("/features/reports.view/").content.decode()
    assert f'href="/admin/catalog/feature/{feature.pk}/change/" id="admin-link"' in feature_dashboard
    # but not for carol, a manager (who may not edit)
    assert 'id="admin-link"' not in carol_client.get("/features/reports.view/").content.decode()
