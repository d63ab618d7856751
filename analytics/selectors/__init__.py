"""Analytics reads, one module per topic; callers use the public names re-exported here.

- windows: the analytics window (UTC dates) and its prior window;
- common: lookups, the analytics features, account rows, the cache keyed by rollup generation;
- feature_usage: a product's feature usage (the API's answer and the dashboard overview) and its heatmap;
- daily_series: daily series of one feature or one account;
- dashboard_pages: the dashboard's overview, feature and account pages;
- account_lists: the CSM lists (near limit, free plan using ungranted features, dormant, usage dropped), one
  selector per concept, which the alert triggers call too;
- verification: rollups compared with raw events.

They read the rollup tables, never raw events across accounts (one account's heatmap reads that account's
events through their index); days without rows are filled with zeros.
"""

from .account_lists import (
    DORMANT_DAYS,
    NEAR_LIMIT_PCT,
    USAGE_DROP_PERCENT,
    accounts_near_limit,
    accounts_usage_dropped,
    allowance_limit_state,
    allowance_reached,
    allowance_used_pct,
    dormant_accounts,
    free_accounts_using_ungranted,
    usage_dropped,
)
from .common import (
    FEATURE_USAGE_CACHE_SECONDS,
    active_accounts_count,
    analytics_account_get,
    analytics_feature_get,
    analytics_features,
    analytics_product_get,
    analytics_require_paid,
    percent_of,
)
from .daily_series import account_daily_series, account_feature_last_seen, account_feature_trend, feature_daily_series
from .dashboard_pages import (
    FEATURE_PAGE_TOP_ACCOUNTS,
    dashboard_account_usage,
    dashboard_feature_get,
    dashboard_feature_usage,
    dashboard_filter_choices,
    dashboard_has_usage,
    dashboard_overview,
    feature_entitled_accounts,
    features_never_used,
)
from .feature_usage import (
    ALL_PRODUCTS,
    TOP_FEATURES,
    AccountSums,
    FeatureSums,
    FeatureUsage,
    PairCounts,
    QuietFeature,
    TopAccount,
    TopDomain,
    TopFeature,
    UsageTotals,
    WindowSums,
    feature_daily_uses,
    feature_usage,
    feature_usage_cached,
    usage_pattern,
)
from .verification import rollup_differences
from .windows import DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS, Window, analytics_window

__all__ = [
    "ALL_PRODUCTS",
    "TOP_FEATURES",
    "DEFAULT_WINDOW_DAYS",
    "DORMANT_DAYS",
    "FEATURE_PAGE_TOP_ACCOUNTS",
    "FEATURE_USAGE_CACHE_SECONDS",
    "MAX_WINDOW_DAYS",
    "NEAR_LIMIT_PCT",
    "USAGE_DROP_PERCENT",
    "AccountSums",
    "FeatureSums",
    "FeatureUsage",
    "PairCounts",
    "QuietFeature",
    "TopAccount",
    "TopDomain",
    "TopFeature",
    "UsageTotals",
    "Window",
    "WindowSums",
    "account_daily_series",
    "account_feature_last_seen",
    "account_feature_trend",
    "accounts_near_limit",
    "accounts_usage_dropped",
    "active_accounts_count",
    "allowance_limit_state",
    "allowance_reached",
    "allowance_used_pct",
    "analytics_account_get",
    "analytics_feature_get",
    "analytics_features",
    "analytics_product_get",
    "analytics_require_paid",
    "analytics_window",
    "dashboard_account_usage",
    "dashboard_feature_get",
    "dashboard_feature_usage",
    "dashboard_filter_choices",
    "dashboard_has_usage",
    "dashboard_overview",
    "dormant_accounts",
    "feature_daily_series",
    "feature_daily_uses",
    "feature_entitled_accounts",
    "features_never_used",
    "feature_usage",
    "feature_usage_cached",
    "free_accounts_using_ungranted",
    "percent_of",
    "rollup_differences",
    "usage_dropped",
    "usage_pattern",
]
