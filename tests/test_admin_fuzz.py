"""Hypothesis-driven query strings on the admin's changelists and change forms, as a superuser: whatever the
filters, ordering, page and search (huge numbers, dates at the ends of the calendar, NUL, any text), every page
answers below 500. 300 derandomized examples, ~5 s on 2 idle cores. Then every field of every add and change
form of the workspace models posted with each of JUNK: never a 5xx."""

import re
from html.parser import HTMLParser
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


# ---------------------------------------------------------------------------------------------------------
# Forms: every field of every add and change form of the workspace models, posted with each junk value while
# the other fields keep what the page offered. Found: an emptied JSON box (500 on the NOT NULL column), a picker
# value that is no id (500 re-rendering the form), a database refusal on a non-service form (500 on the retry).
# ---------------------------------------------------------------------------------------------------------

FORM_MODELS = [
    ("accounts", "account"),
    ("accounts", "enduser"),
    ("accounts", "workspace"),
    ("accounts", "membership"),
    ("accounts", "apikey"),
    ("catalog", "product"),
    ("catalog", "module"),
    ("catalog", "feature"),
    ("catalog", "item"),
    ("entitlements", "itementitlement"),
    ("entitlements", "subscription"),
    ("usage", "segmentmapping"),
]
JUNK = ["", "abc", "-1", "9" * 30, "a\x00b", "{"]
# Inline rows past the first repeat its fields.
_LATER_INLINE_ROW = re.compile(r"-[1-9][0-9]*-")


class _Form(HTMLParser):
    """The fields of the page's first POST form, with the values the page fills in (selected options,
    checked boxes, textareas)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, list[str]] = {}
        self._in_form = False
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and (a.get("method") or "").lower() == "post" and a.get("id") != "logout-form":
            self._in_form = True
        elif not self._in_form or not a.get("name") and tag != "option":
            return
        elif tag == "input" and a.get("type", "text") not in ("submit", "button", "file", "image"):
            if a.get("type") not in ("checkbox", "radio") or "checked" in a:
                self.fields.setdefault(a["name"], []).append(a.get("value") or "")
        elif tag == "select":
            self._select = a["name"]
            self.fields.setdefault(self._select, [])
        elif tag == "option" and self._select and "selected" in a:
            self.fields[self._select].append(a.get("value") or "")
        elif tag == "textarea":
            self._textarea = a["name"]
            self.fields[self._textarea] = [""]

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self._in_form = False

    def handle_data(self, data):
        if self._textarea:
            self.fields[self._textarea][0] += data


def _form(page: str) -> dict[str, list[str]]:
    parser = _Form()
    parser.feed(page)
    return parser.fields


@pytest.mark.fuzz  # ~1 min: `make test-fast` skips it
@pytest.mark.parametrize(("app", "model"), FORM_MODELS, ids=[m for _, m in FORM_MODELS])
def test_no_admin_form_answers_5xx_for_junk_in_any_field(superuser, app, model):
    client, _ = superuser
    from django.apps import apps

    instance = apps.get_model(app, model).objects.order_by("pk").first()
    urls = [f"/admin/{app}/{model}/add/"] + ([f"/admin/{app}/{model}/{instance.pk}/change/"] if instance else [])
    for url in urls:
        # given the form as the page offers it
        base = _form(client.get(url).content.decode())
        editable = [
            name
            for name in base
            if name != "csrfmiddlewaretoken"
            and not name.endswith(("_FORMS", "-DELETE"))
            and not _LATER_INLINE_ROW.search(name)
        ]
        assert editable, url
        for name in editable:
            for junk in JUNK:
                # when one field holds junk (the test client re-raises any exception a view lets out)
                response = client.post(url, {**base, name: [junk]})
                # then a refusal on the form or a save, never a 5xx
                assert response.status_code in (200, 302, 403), (url, name, junk, response.status_code)
