"""Hypothesis-driven query strings on the admin's changelists and change forms, as a superuser: whatever the
filters, ordering, page and search (huge numbers, dates at the ends of the calendar, NUL, any text), every page
answers below 500. 300 derandomized examples, ~5 s on 2 idle cores."""

from urllib.parse import urlencode

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .analytics.browser.data import build

PAGES = [
    "/admin/catalog/product/",
    "/admin/catalog/module/",
    "/admin/catalog/feature/",
    "/admin/catalog/item/",
    "/admin/alerts/alertpipeline/",
    "/admin/alerts/alertdelivery/",
    "/admin/entitlements/itementitlement/",
    "/admin/entitlements/subscription/",
    "/admin/accounts/workspace/",
    "/admin/accounts/membership/",
    "/admin/accounts/apikey/",
    "/admin/accounts/account/",
    "/admin/accounts/enduser/",
    "/admin/accounts/account/{account}/change/",
    "/admin/catalog/feature/{feature}/change/",
]
KEYS = ["q", "o", "p", "e", "all", "_changelist_filters", "workspace__id__exact", "status__exact", "type__exact"]
values = (
    st.integers().map(str)
    | st.text(max_size=30)
    | st.sampled_from(["99999999999999999999", "9" * 5000, "-1", "0001-01-01", "9999-12-31", "²", "a\x00", "%", "-pk"])
)
pairs = st.lists(st.tuples(st.sampled_from(KEYS) | st.text(max_size=10), values), max_size=4)


@pytest.fixture
def superuser(db) -> tuple[Client, dict]:
    built = build()
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client = Client()
    client.force_login(root)  # the login form itself is django-axes' (tests/accounts/test_login_security.py)
    ids = {
        "account": built.workspace.accounts.order_by("pk").first().pk,
        "feature": built.product.features.order_by("pk").first().pk,
    }
    return client, ids


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(page=st.sampled_from(PAGES), query=pairs)
def test_no_admin_page_answers_5xx_for_any_query(superuser, page, query):
    client, ids = superuser
    # when (the test client re-raises any exception a view lets out)
    response = client.get(f"{page.format(**ids)}?{urlencode(query)}")
    # then
    assert response.status_code in (200, 302, 400, 404), (page, query, response.status_code)
