"""Dashboard pages for customer-success managers: thin views over analytics.selectors (and the entitlement
selectors), rendered in the Django admin's look. Every query is scoped to the session's current workspace, one
of accounts.selectors.workspaces_for_user; another workspace's objects answer 404."""

from __future__ import annotations

from datetime import UTC

from django import forms
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from core.errors import DomainError
from core.views import workspace_page

from . import charts, csv_export, selectors

# The current workspace of the staff session (shared with the alert pages).
dashboard_page = workspace_page


def _render(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    return render(request, template, {**request.dashboard, **context}, status=status)


def _now():
    return timezone.now()


def _today():
    return _now().astimezone(UTC).date()


# ---------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------


class WindowForm(forms.Form):
    to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # `from` is a Python keyword: the field is added by name.
        self.fields = {
            "from": forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"})),
            **self.fields,
        }

    def window(self) -> selectors.Window | None:
        """The analytics window, or None with the error added to the form."""
        if not self.is_valid():
            return None
        try:
            return selectors.analytics_window(
                date_from=self.cleaned_data.get("from"), date_to=self.cleaned_data.get("to"), today=_today()
            )
        except DomainError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, str(exc))
            return None


class OverviewForm(WindowForm):
    product = forms.ChoiceField(required=False)
    module = forms.ChoiceField(required=False)
    plan = forms.ChoiceField(required=False)

    def __init__(self, *args, choices: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["product"].choices = [*choices["products"], (selectors.ALL_PRODUCTS, "All products")]
        self.fields["module"].choices = [("", "All modules")] + [(k, f"{n} ({p})") for k, n, p in choices["modules"]]
        self.fields["plan"].choices = [("", "All plans")] + [(p, p) for p in choices["plans"]]


def _window_error_page(request, template, form, context):
    return _render(request, template, {"window": None, **context, "form": form, "window_error": True}, status=400)


def _paid_or_notice(request: HttpRequest, title: str, nav: str) -> HttpResponse | None:
    if request.workspace.is_paid:
        return None
    return _render(request, "dashboard/upgrade.html", {"title": title, "nav": nav})


def _empty_context(request: HttpRequest) -> dict:
    return {
        "events_url": request.build_absolute_uri("/api/v1/events"),
        "keys_url": reverse("admin:accounts_apikey_changelist"),
    }


# ---------------------------------------------------------------------------
# Overview
# ---------------------------------------------------------------------------


@dashboard_page
def overview(request: HttpRequest) -> HttpResponse:
    workspace = request.workspace
    if (notice := _paid_or_notice(request, "Overview", "overview")) is not None:
        return notice
    choices = selectors.dashboard_filter_choices(workspace=workspace)
    context = {"title": "Overview", "nav": "overview", **_empty_context(request)}
    if not choices["products"] or not selectors.dashboard_has_usage(workspace=workspace):
        return _render(request, "dashboard/overview.html", {**context, "empty": True})
    data = request.GET.copy()
    data.setdefault("product", choices["products"][0][0])
    form = OverviewForm(data, choices=choices)
    window = form.window()
    if window is None:
        return _window_error_page(request, "dashboard/overview.html", form, context)
    product = (
        None
        if form.cleaned_data["product"] == selectors.ALL_PRODUCTS
        else selectors.analytics_product_get(workspace=workspace, key=form.cleaned_data["product"])
    )
    # The adoption table lists every used feature, TOP_FEATURES a page (?features_page=).
    features_page = _page_number(request, "features_page")
    usage = selectors.dashboard_overview(
        workspace=workspace,
        product=product,
        window=window,
        module_key=form.cleaned_data.get("module") or None,
        plan=form.cleaned_data.get("plan") or None,
        features_offset=(features_page - 1) * selectors.TOP_FEATURES,
    ).as_json()
    top = usage["top_features"]
    for row in top:
        row["sparkline_points"] = charts.sparkline_points(row["sparkline"])
    context.update(
        form=form,
        usage=usage,
        window=window,
        never_used=selectors.features_never_used(workspace=workspace, product=product),
        features_pages=_pages(
            request, "features_page", features_page, usage["totals"]["unique_features"], selectors.TOP_FEATURES
        ),
        features_first=(features_page - 1) * selectors.TOP_FEATURES + 1,
        features_last=(features_page - 1) * selectors.TOP_FEATURES + len(usage["top_features"]),
        top_chart=charts.top_features_bar(
            names=[r["name"] for r in top], current=[r["events"] for r in top], prior=[r["prior_events"] for r in top]
        ),
        heatmap_chart=charts.heatmap(grid=usage["usage_pattern"], timezone=usage["timezone"])
        if usage["usage_pattern"] is not None
        else None,
    )
    return _render(request, "dashboard/overview.html", context)


# ---------------------------------------------------------------------------
# Search
# ---------------------------------------------------------------------------

SEARCH_SUGGESTIONS = 8
SEARCH_PAGE_RESULTS = 50


@dashboard_page
def search(request: HttpRequest) -> HttpResponse:
    """Accounts and features matching ?q=; htmx asks for the header's suggestions, the form for the whole page."""
    from accounts.selectors import account_search
    from catalog.selectors import feature_search

    query = request.GET.get("q", "").strip()[:200]
    suggest = request.headers.get("HX-Request") == "true" and request.GET.get("suggest") == "1"
    limit = SEARCH_SUGGESTIONS if suggest else SEARCH_PAGE_RESULTS
    context = {
        "title": f"Search: {query}" if query else "Search",
        "nav": "search",
        "query": query,
        "accounts": account_search(workspace=request.workspace, query=query, limit=limit),
        "features": feature_search(workspace=request.workspace, query=query, limit=limit),
        "limit": limit,
    }
    template = "dashboard/partials/search_suggestions.html" if suggest else "dashboard/search.html"
    return _render(request, template, context)


# ---------------------------------------------------------------------------
# Feature page
# ---------------------------------------------------------------------------

# Rows per page of the feature page's account tables (accounts using it, entitled but not using it).
FEATURE_PAGE_SIZE = 25


def _page_number(request: HttpRequest, param: str) -> int:
    try:
        return max(1, min(int(request.GET.get(param) or 1), 10_000))
    except ValueError:
        return 1


def _pages(request: HttpRequest, param: str, page: int, count: int, size: int) -> dict:
    """Paging of one table on a page with several: its page, how many, and the previous/next links (the other
    parameters kept)."""
    pages = max(1, -(-count // size))
    links = {}
    params = request.GET.copy()
    for name, number in (("previous", page - 1), ("next", page + 1)):
        if 1 <= number <= pages:
            params[param] = str(number)
            links[name] = f"?{params.urlencode()}"
    return {"page": min(page, pages), "pages": pages, "first": (page - 1) * size + 1, "links": links}


@dashboard_page
def feature_detail(request: HttpRequest, key: str) -> HttpResponse:
    workspace = request.workspace
    feature = selectors.dashboard_feature_get(workspace=workspace, key=key)
    if (notice := _paid_or_notice(request, feature.name, "overview")) is not None:
        return notice
    form = WindowForm(request.GET)
    context = {"title": feature.name, "nav": "overview", "feature": feature}
    window = form.window()
    if window is None:
        return _window_error_page(request, "dashboard/feature.html", form, context)
    now = _now()
    using_page = _page_number(request, "using_page")
    series, using, using_count, using_ids, by_plan = selectors.dashboard_feature_usage(
        workspace=workspace, feature=feature, window=window, top=using_page * FEATURE_PAGE_SIZE
    )
    active = selectors.active_accounts_count(workspace=workspace, by=window.end)
    days = [d["day"] for d in series["days"]]
    # The prior window's daily uses from the feature × day rollup (its users and accounts are not shown).
    prior_days = selectors.feature_daily_uses(workspace=workspace, feature_ids=[feature.pk], window=window.prior)
    prior = [prior_days[feature.pk].get(day, 0) for day in window.prior.days]
    entitled = selectors.feature_entitled_accounts(workspace=workspace, feature=feature, now=now)
    near = [r for r in entitled if r["limit_state"] is not None]
    gap = [r for r in entitled if r["id"] not in using_ids]
    gap_page = _page_number(request, "gap_page")
    context.update(
        form=form,
        window=window,
        series=series,
        prior_uses=sum(prior),
        active_accounts=active,
        adoption_pct=selectors.percent_of(series["accounts"], active),
        using=using[(using_page - 1) * FEATURE_PAGE_SIZE :],
        using_count=using_count,
        using_pages=_pages(request, "using_page", using_page, using_count, FEATURE_PAGE_SIZE),
        entitled_count=len(entitled),
        entitled_unused=gap[(gap_page - 1) * FEATURE_PAGE_SIZE : gap_page * FEATURE_PAGE_SIZE],
        entitled_unused_count=len(gap),
        gap_pages=_pages(request, "gap_page", gap_page, len(gap), FEATURE_PAGE_SIZE),
        near_limit=near,
        by_plan=by_plan,
        near_pct=selectors.NEAR_LIMIT_PCT,
        trend_chart=charts.daily_lines(
            days=days,
            series={
                "This window": [d["uses"] for d in series["days"]],
                "Prior window": prior,
            },
            y_title="Net uses",
            dashed=["Prior window"],
        ),
        heatmap_chart=charts.heatmap(
            grid=selectors.usage_pattern(workspace=workspace, feature_ids=[feature.pk], window=window),
            timezone=workspace.timezone or "UTC",
        ),
        adoption_chart=charts.daily_lines(
            days=days,
            y_title="% of active accounts",
            series={"Adoption %": [selectors.percent_of(d["accounts"], active) for d in series["days"]]},
        ),
        plan_chart=charts.plan_bars(plans=[r["plan"] for r in by_plan], accounts=[r["accounts"] for r in by_plan]),
    )
    return _render(request, "dashboard/feature.html", context)


# ---------------------------------------------------------------------------
# Account page
# ---------------------------------------------------------------------------


@dashboard_page
def account_detail(request: HttpRequest, external_id: str) -> HttpResponse:
    from entitlements.selectors import account_entitlements

    workspace = request.workspace
    account = selectors.analytics_account_get(workspace=workspace, external_id=external_id)
    form = WindowForm(request.GET)
    context = {"title": account.name or account.external_id, "nav": "overview", "account": account}
    window = form.window()
    if window is None:
        return _window_error_page(request, "dashboard/account.html", form, context)
    now = _now()
    entitlements = account_entitlements(workspace=workspace, account_key=account.external_id, now=now)
    for e in entitlements:
        e["used_pct"] = selectors.allowance_used_pct(e)
        e["limit_state"] = selectors.allowance_limit_state(used=e.get("used"), limit=e.get("limit"))
    context.update(form=form, window=window, entitlements=entitlements, paid=workspace.is_paid)
    if workspace.is_paid:
        series, prior, trend = selectors.dashboard_account_usage(workspace=workspace, account=account, window=window)
        names = {f["key"]: f["name"] for f in selectors.analytics_features(workspace=workspace, product=None)}
        used_keys = {r["feature_id"] for r in trend if r["uses"] > 0}
        entitled_keys = {
            e["feature_id"] for e in entitlements if e["value"] is not None and e["reason"] != "not_entitled"
        }
        context.update(
            series=series,
            prior_uses=prior["uses"],
            trend=trend,
            quiet=[r for r in trend if r["quiet"]],
            last_seen=[{**r, "name": names.get(r["feature_id"], r["feature_id"])} for r in series["last_seen"]],
            used_vs_entitled=[
                {"feature_id": k, "name": names.get(k, k), "used": k in used_keys, "entitled": k in entitled_keys}
                for k in sorted(used_keys | entitled_keys)
            ],
            trend_chart=charts.daily_lines(
                days=[d["day"] for d in series["days"]],
                y_title="Net uses",
                dashed=["Prior window"],
                series={
                    "This window": [d["uses"] for d in series["days"]],
                    "Prior window": [d["uses"] for d in prior["days"]],
                },
            ),
        )
    return _render(request, "dashboard/account.html", context)


# ---------------------------------------------------------------------------
# Lists (sortable, filterable by owner and plan, exportable to CSV with the same filters)
# ---------------------------------------------------------------------------

_ACCOUNT_COLUMNS = [("external_id", "Account"), ("name", "Name"), ("plan", "Plan"), ("owner", "Owner")]

LISTS: dict[str, dict] = {
    "near-limit": {
        "title": "Near or over their limits",
        "blurb": "Accounts whose use of a metered allowance in its current period is at or above the chosen % of "
        "its limit (over limit: above it): upsell candidates. A limit of 0 means not entitled and is not listed.",
        "columns": _ACCOUNT_COLUMNS
        + [
            ("feature_key", "Feature"),
            ("used", "Used"),
            ("limit", "Limit"),
            ("used_pct", "Used %"),
            ("resets_at", "Resets at"),
            ("limit_state", "State"),
        ],
        "sort": "-used_pct",
        "window": False,
    },
    "free-unentitled": {
        "title": "Free plan using ungranted features",
        "blurb": "Accounts on the free plan whose net uses in the window include features their plan does not grant.",
        "columns": _ACCOUNT_COLUMNS + [("features", "Ungranted features used"), ("uses", "Uses")],
        "sort": "-uses",
        "window": True,
    },
    "dormant": {
        "title": "Dormant accounts",
        "blurb": "Active accounts that used features before but on none of the last N UTC days, today included "
        "(a day counts when its net uses are > 0); accounts first seen less than N days ago are left out (churn "
        "risk).",
        "columns": _ACCOUNT_COLUMNS + [("last_used_on", "Last used (UTC day)"), ("days_quiet", "Days quiet")],
        "sort": "last_used_on",
        "window": False,
    },
    "usage-drop": {
        "title": "Usage dropped",
        "blurb": "Active accounts whose net uses in the window dropped by at least the chosen % against the prior "
        "window of equal length (churn risk).",
        "columns": _ACCOUNT_COLUMNS + [("uses", "Uses"), ("prior_uses", "Prior uses"), ("change_pct", "Change %")],
        "sort": "change_pct",
        "window": True,
    },
}


LIST_PAGE_SIZE = 100
# The owner filter's choice for accounts without an owner (parentheses never occur in a username).
UNASSIGNED = "(unassigned)"
# How the page formats each column (core.templatetags.uptake_format); the CSV keeps the raw values.
COLUMN_KINDS = {
    "used": "num",
    "limit": "num",
    "uses": "num",
    "prior_uses": "num",
    "days_quiet": "num",
    "used_pct": "pct",
    "change_pct": "pct",
    "resets_at": "when",
    "last_used_at": "ago",
    "last_used_on": "when",
}


class ListForm(WindowForm):
    owner = forms.ChoiceField(required=False)
    plan = forms.ChoiceField(required=False)
    sort = forms.CharField(required=False)
    days = forms.IntegerField(required=False, min_value=1, max_value=365)
    percent = forms.IntegerField(required=False, min_value=1, max_value=100)
    threshold = forms.IntegerField(required=False, min_value=1, max_value=100)

    def __init__(self, *args, choices: dict, columns: list, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = [("", "All owners"), (UNASSIGNED, "Unassigned")] + [
            (o, o) for o in choices["owners"]
        ]
        self.fields["plan"].choices = [("", "All plans")] + [(p, p) for p in choices["plans"]]
        self.columns = {key for key, _ in columns}

    def clean_sort(self) -> str:
        sort = self.cleaned_data.get("sort") or ""
        if sort and sort.lstrip("-") not in self.columns:
            raise forms.ValidationError(f"Cannot sort by '{sort}': choose one of {', '.join(sorted(self.columns))}.")
        return sort


def _list_rows(request: HttpRequest, kind: str) -> tuple[dict, ListForm, list[dict] | None, selectors.Window | None]:
    spec = LISTS.get(kind)
    if spec is None:
        raise Http404(f"No list '{kind}'.")
    choices = selectors.dashboard_filter_choices(workspace=request.workspace)
    form = ListForm(request.GET, choices=choices, columns=spec["columns"])
    window = form.window()
    if window is None:
        return spec, form, None, None
    workspace, now, data = request.workspace, _now(), form.cleaned_data
    if kind == "near-limit":
        rows = selectors.accounts_near_limit(
            workspace=workspace, now=now, threshold=data.get("threshold") or selectors.NEAR_LIMIT_PCT
        )
    elif kind == "free-unentitled":
        rows = selectors.free_accounts_using_ungranted(workspace=workspace, window=window, now=now)
    elif kind == "dormant":
        rows = selectors.dormant_accounts(
            workspace=workspace, today=_today(), days=data.get("days") or selectors.DORMANT_DAYS
        )
    else:
        rows = selectors.accounts_usage_dropped(
            workspace=workspace, window=window, percent=data.get("percent") or selectors.USAGE_DROP_PERCENT
        )
    if data.get("owner"):
        owner = "" if data["owner"] == UNASSIGNED else data["owner"]
        rows = [r for r in rows if r["owner"] == owner]
    if data.get("plan"):
        rows = [r for r in rows if r["plan"] == data["plan"]]
    sort = data.get("sort") or spec["sort"]
    key, reverse_ = sort.lstrip("-"), sort.startswith("-")
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]  # None sorts last either way
    present.sort(key=lambda r: r["external_id"])
    present.sort(key=lambda r: r[key], reverse=reverse_)
    return spec, form, present + missing, window


@dashboard_page
def account_list(request: HttpRequest, kind: str) -> HttpResponse:
    if (notice := _paid_or_notice(request, LISTS.get(kind, {}).get("title", "Lists"), kind)) is not None:
        return notice
    spec, form, rows, window = _list_rows(request, kind)
    context = {
        "title": spec["title"],
        "nav": kind,
        "spec": spec,
        "kind": kind,
        "form": form,
        "window": window,
        "rows": rows,
        "csv_url": None,
        # What an empty parameter field means: the selectors' own defaults.
        "defaults": {
            "threshold": selectors.NEAR_LIMIT_PCT,
            "days": selectors.DORMANT_DAYS,
            "percent": selectors.USAGE_DROP_PERCENT,
        },
    }
    if rows is None:
        return _window_error_page(request, "dashboard/list.html", form, context)
    params = request.GET.copy()
    params.pop("page", None)
    current = form.cleaned_data.get("sort") or spec["sort"]
    headers = []
    for key, title in spec["columns"]:
        params["sort"] = key if current != key else f"-{key}"
        headers.append(
            {
                "key": key,
                "title": title,
                "url": f"?{params.urlencode()}",
                "sorted": "asc" if current == key else "desc" if current == f"-{key}" else "",
                "numeric": COLUMN_KINDS.get(key) in ("num", "pct"),
            }
        )
    csv_params = request.GET.copy()
    csv_params.pop("page", None)
    # One page of rows is rendered (the CSV export has them all).
    pages = max(1, -(-len(rows) // LIST_PAGE_SIZE))
    try:
        page = min(max(1, int(request.GET.get("page") or 1)), pages)
    except ValueError:
        page = 1
    shown = rows[(page - 1) * LIST_PAGE_SIZE : page * LIST_PAGE_SIZE]
    links = request.GET.copy()
    page_links = {}
    for name, number in (("previous", page - 1), ("next", page + 1)):
        if 1 <= number <= pages:
            links["page"] = str(number)
            page_links[name] = f"?{links.urlencode()}"
    context.update(
        rows=[[(r.get(k), COLUMN_KINDS.get(k, "text")) for k, _ in spec["columns"]] for r in shown],
        headers=headers,
        count=len(rows),
        page=page,
        pages=pages,
        page_links=page_links,
        csv_url=reverse("dashboard:list-csv", args=[kind]) + f"?{csv_params.urlencode()}",
    )
    return _render(request, "dashboard/list.html", context)


@dashboard_page
def account_list_csv(request: HttpRequest, kind: str) -> HttpResponse:
    if not request.workspace.is_paid:
        return HttpResponse(
            "Lists are part of the paid tier; this workspace is on the free tier.",
            status=402,
            content_type="text/plain",
        )
    spec, form, rows, _ = _list_rows(request, kind)
    if rows is None:
        return HttpResponse(
            "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()), status=400, content_type="text/plain"
        )
    return csv_export.csv_response(
        filename=f"{request.workspace.slug}-{kind}-{_today().isoformat()}.csv", columns=spec["columns"], rows=rows
    )
