"""The overview's module and plan filters go through feature_usage (one code path with the analytics API):
plan-filtered numbers partition the unfiltered ones, and a module filter gives the API's numbers for those
features."""

from datetime import timedelta

from accounts.models import Account
from analytics.models import RollupGeneration
from analytics.selectors import Window, dashboard_overview, feature_usage
from catalog.models import Product


def _window(built) -> Window:
    return Window(built.now.date() - timedelta(days=29), built.now.date())


def test_plan_filtered_overviews_partition_the_unfiltered_numbers(built):
    # given acme's product, its window and its plan labels
    product = Product.objects.get(workspace=built.workspace, key="default")
    window = _window(built)
    everyone = feature_usage(workspace=built.workspace, product=product, window=window).as_json()
    plans = sorted(set(Account.objects.filter(workspace=built.workspace).values_list("plan", flat=True)))
    # when the overview is narrowed to each plan
    by_plan = {
        p: dashboard_overview(workspace=built.workspace, product=product, window=window, plan=p).as_json()
        for p in plans
    }
    # then events, users and active accounts add up to the unfiltered numbers
    assert plans == ["free", "team"]
    for name in ("events", "unique_accounts", "active_accounts"):
        assert sum(o["totals"][name] for o in by_plan.values()) == everyone["totals"][name], name
    assert by_plan["free"]["totals"]["events"] == 3 + 4 and by_plan["team"]["totals"]["events"] == 56 + 90 + 1 + 1
    # and each top feature's events and accounts add up too, accounts listed only under their plan
    for row in everyone["top_features"]:
        parts = [t for o in by_plan.values() for t in o["top_features"] if t["feature_id"] == row["feature_id"]]
        assert sum(t["events"] for t in parts) == row["events"], row["feature_id"]
        assert sum(t["accounts"] for t in parts) == row["accounts"], row["feature_id"]
    assert [a["account_id"] for a in by_plan["free"]["top_accounts"]] == ["a2"]
    assert by_plan["free"]["usage_pattern"] is None and everyone["usage_pattern"] is not None


def test_a_plan_nobody_has_shows_nothing(built):
    # when the overview is narrowed to a plan label no account carries
    product = Product.objects.get(workspace=built.workspace, key="default")
    overview = dashboard_overview(
        workspace=built.workspace, product=product, window=_window(built), plan="gold"
    ).as_json()
    # then it holds no usage at all
    assert overview["totals"] == {
        "events": 0,
        "unique_features": 0,
        "unique_accounts": 0,
        "unique_domains": 0,
        "active_accounts": 0,
    }
    assert overview["top_features"] == [] and overview["top_accounts"] == [] and overview["quiet_features"] == []


def test_module_filter_equals_feature_usage_over_the_module_features(built):
    # given the reports module's features
    product = Product.objects.get(workspace=built.workspace, key="default")
    window = _window(built)
    # when the overview is narrowed to the module
    module = dashboard_overview(workspace=built.workspace, product=product, window=window, module_key="reports")
    everyone = feature_usage(workspace=built.workspace, product=product, window=window)
    # (typed results: compared as such, then through the API's JSON shape)
    keys = [t.feature_id for t in module.top_features]
    assert module.top_features == [t for t in everyone.top_features if t.feature_id in keys]
    module, everyone = module.as_json(), everyone.as_json()
    # then its top features are the unfiltered ones of that module, with the same numbers
    keys = [t["feature_id"] for t in module["top_features"]]
    assert keys == ["reports.view", "export.pdf"]
    assert module["top_features"] == [t for t in everyone["top_features"] if t["feature_id"] in keys]
    assert module["totals"]["events"] == 56 + 3 + 1 + 1 + 4


def test_free_unentitled_list_follows_entitlement_and_plan_changes_at_once(built):
    # given the list computed once (its rollup part is now cached)
    from analytics.selectors import free_accounts_using_ungranted
    from catalog.models import Feature
    from catalog.services import item_activate, item_create
    from entitlements.services import item_entitlement_set, subscription_create

    window = _window(built)

    def listed():
        rows = free_accounts_using_ungranted(workspace=built.workspace, window=window, now=built.now)
        return [(r["external_id"], r["features"], r["feature_count"], r["uses"]) for r in rows]

    assert listed() == [("a2", "export.pdf", 1, 4)]
    assert RollupGeneration.objects.filter(workspace=built.workspace).exists()  # so the pairs are cached
    a2 = Account.objects.get(workspace=built.workspace, external_id="a2")
    # when a2 leaves the free plan, then it is no longer listed; back on it, it is again
    Account.objects.filter(pk=a2.pk).update(plan="team")
    assert listed() == []
    Account.objects.filter(pk=a2.pk).update(plan="free")
    assert listed() == [("a2", "export.pdf", 1, 4)]
    # when a2 gets an add-on granting export.pdf
    addon = item_activate(item=item_create(workspace=built.workspace, key="pdf", name="PDF", type="addon"))
    item_entitlement_set(
        item=addon, feature=Feature.objects.get(workspace=built.workspace, key="export.pdf"), value="true"
    )
    subscription_create(workspace=built.workspace, external_id="sub-pdf", account=a2, items=[addon])
    # then the next read no longer lists it
    assert listed() == []
