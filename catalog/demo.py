"""Demo catalog: 4 products, 10 modules, 62 features in every status and type, plans and add-ons.

Everything is created through catalog.services, so the demo obeys the same rules (caps, names, levels,
lifecycle) as the admin and the API.
"""

from __future__ import annotations

from django.db import transaction

from accounts.demo import DemoContext

from .models import Feature, Item, Lifecycle
from .services import (
    LevelSpec,
    feature_activate,
    feature_archive,
    feature_create,
    item_activate,
    item_archive,
    item_create,
    module_create,
    product_create,
)

A, D, X = Lifecycle.ACTIVE, Lifecycle.DRAFT, Lifecycle.ARCHIVED

PRODUCTS = [
    ("platform", "Platform", "Workspaces, identity and administration."),
    ("insights", "Insights", "Dashboards, reports and data export."),
    ("collab", "Collaboration", "Documents and team chat."),
    ("connect", "Connect", "Integrations and the public API."),
]

MODULES = [
    ("platform", "workspace", "Workspace"),
    ("platform", "identity", "Identity & access"),
    ("platform", "admin-console", "Admin console"),
    ("insights", "dashboards", "Dashboards"),
    ("insights", "reports", "Reports"),
    ("insights", "data-export", "Data export"),
    ("collab", "docs", "Docs"),
    ("collab", "chat", "Chat"),
    ("connect", "integrations", "Integrations"),
    ("connect", "api", "API"),
]

# (product, module or "", key, name, type, unit, levels, metering "period/anchor" or "", status)
# Levels: "3,10,*" for numbers (* = unlimited), "value:Name|value:Name" for custom levels, "min,max" for range.
FEATURES = [
    ("platform", "workspace", "seats", "Seats", "quantity", "seat", "3,10,50,*", "", A),
    ("platform", "workspace", "projects", "Projects", "quantity", "project", "5,50,*", "", A),
    ("platform", "workspace", "multi-workspace", "Multiple workspaces", "switch", "", "", "", A),
    ("platform", "workspace", "custom-roles", "Custom roles", "switch", "", "", "", A),
    ("platform", "workspace", "audit-log", "Audit log", "custom", "", "30d:30 days|90d:90 days|1y:One year", "", A),
    ("platform", "workspace", "storage", "Storage", "quantity", "gigabyte", "5,100,1000,*", "", A),
    ("platform", "identity", "sso", "Single sign-on (SAML)", "switch", "", "", "", A),
    ("platform", "identity", "scim", "SCIM provisioning", "switch", "", "", "", A),
    ("platform", "identity", "enforced-2fa", "Enforced two-factor authentication", "switch", "", "", "", A),
    ("platform", "identity", "ip-allowlist", "IP allow-list", "switch", "", "", "", D),
    ("platform", "identity", "session-policies", "Session policies", "custom", "", "basic:Basic|strict:Strict", "", X),
    ("platform", "admin-console", "admin-api", "Admin API", "switch", "", "", "", A),
    ("platform", "admin-console", "data-residency", "Data residency", "custom", "", "eu:EU|us:US|apac:APAC", "", A),
    ("platform", "admin-console", "sandboxes", "Sandbox environments", "quantity", "environment", "1,3,10", "", A),
    (
        "platform",
        "admin-console",
        "support",
        "Support",
        "custom",
        "",
        "standard:Standard|priority:Priority|dedicated:Dedicated CSM",
        "",
        A,
    ),
    ("platform", "admin-console", "legacy-billing-portal", "Legacy billing portal", "switch", "", "", "", X),
    ("insights", "dashboards", "dashboards", "Dashboards", "quantity", "dashboard", "3,25,*", "", A),
    ("insights", "dashboards", "dashboard-sharing", "Public dashboard sharing", "switch", "", "", "", A),
    ("insights", "dashboards", "custom-charts", "Custom charts", "switch", "", "", "", A),
    ("insights", "dashboards", "realtime-view", "Real-time viewers", "range", "viewer", "1,50", "", D),
    ("insights", "dashboards", "dashboard-themes", "Dashboard themes", "switch", "", "", "", X),
    (
        "insights",
        "dashboards",
        "embedded-views",
        "Embedded analytics views",
        "range",
        "view",
        "0,10000",
        "month/calendar",
        A,
    ),
    ("insights", "reports", "scheduled-reports", "Scheduled reports", "quantity", "report", "5,50,*", "", A),
    ("insights", "reports", "pdf-export", "PDF export", "switch", "", "", "", A),
    (
        "insights",
        "reports",
        "report-history",
        "Report history",
        "custom",
        "",
        "7d:7 days|30d:30 days|1y:One year",
        "",
        A,
    ),
    ("insights", "reports", "ai-summaries", "AI summaries", "quantity", "summary", "20,200,2000", "month/term", D),
    ("insights", "reports", "anomaly-alerts", "Anomaly alerts", "switch", "", "", "", D),
    ("insights", "data-export", "csv-export", "CSV export", "switch", "", "", "", A),
    (
        "insights",
        "data-export",
        "warehouse-sync",
        "Warehouse sync",
        "custom",
        "",
        "daily:Daily|hourly:Hourly|streaming:Streaming",
        "",
        A,
    ),
    (
        "insights",
        "data-export",
        "exported-rows",
        "Exported rows",
        "quantity",
        "row",
        "10000,1000000,*",
        "month/calendar",
        A,
    ),
    ("insights", "data-export", "bigquery-connector", "BigQuery connector", "switch", "", "", "", X),
    ("insights", "data-export", "parquet-export", "Parquet export", "switch", "", "", "", D),
    ("collab", "docs", "documents", "Documents", "quantity", "document", "100,10000,*", "", A),
    ("collab", "docs", "doc-templates", "Document templates", "switch", "", "", "", A),
    ("collab", "docs", "version-history", "Version history", "range", "day", "7,365", "", A),
    ("collab", "docs", "comments", "Comments", "switch", "", "", "", A),
    ("collab", "docs", "guest-access", "Guest access", "quantity", "guest", "0,5,50", "", A),
    (
        "collab",
        "docs",
        "doc-approvals",
        "Approval workflows",
        "custom",
        "",
        "single:Single approver|multi:Multi-step",
        "",
        D,
    ),
    ("collab", "docs", "offline-mode", "Offline mode", "switch", "", "", "", X),
    ("collab", "chat", "channels", "Channels", "quantity", "channel", "10,100,*", "", A),
    ("collab", "chat", "video-calls", "Video calls", "switch", "", "", "", A),
    ("collab", "chat", "call-minutes", "Call minutes", "quantity", "minute", "500,5000,*", "month/calendar", A),
    (
        "collab",
        "chat",
        "message-retention",
        "Message retention",
        "custom",
        "",
        "90d:90 days|1y:One year|forever:Forever",
        "",
        A,
    ),
    ("collab", "chat", "huddles", "Huddles", "switch", "", "", "", D),
    (
        "collab",
        "chat",
        "live-translation",
        "Live translation",
        "quantity",
        "character",
        "10000,100000",
        "day/calendar",
        D,
    ),
    ("collab", "chat", "message-search", "Message search", "switch", "", "", "", A),
    ("collab", "", "mobile-app", "Mobile app", "switch", "", "", "", A),
    ("connect", "integrations", "slack-integration", "Slack integration", "switch", "", "", "", A),
    ("connect", "integrations", "jira-integration", "Jira integration", "switch", "", "", "", A),
    ("connect", "integrations", "salesforce-sync", "Salesforce sync", "switch", "", "", "", A),
    ("connect", "integrations", "zapier", "Zapier", "switch", "", "", "", A),
    ("connect", "integrations", "webhooks", "Webhooks", "quantity", "endpoint", "1,10,50", "", A),
    ("connect", "integrations", "hubspot-sync", "HubSpot sync", "switch", "", "", "", D),
    ("connect", "integrations", "ftp-import", "FTP import", "quantity", "import", "1,10", "", X),
    ("connect", "api", "api-calls", "API calls", "quantity", "call", "1000,100000,1000000,*", "month/calendar", A),
    ("connect", "api", "api-rate-limit", "API rate limit", "range", "request", "10,500", "", A),
    ("connect", "api", "graphql-api", "GraphQL API", "switch", "", "", "", A),
    ("connect", "api", "api-keys", "API keys", "quantity", "key", "2,10,*", "", A),
    (
        "connect",
        "api",
        "webhook-deliveries",
        "Webhook deliveries",
        "quantity",
        "delivery",
        "1000,50000",
        "day/calendar",
        A,
    ),
    ("connect", "api", "batch-jobs", "Batch jobs", "range", "job", "0,100", "week/term", A),
    ("connect", "api", "api-v1", "API v1", "switch", "", "", "", X),
    (
        "connect",
        "api",
        "sdk-access",
        "SDK access",
        "custom",
        "",
        "community:Community|standard:Standard|premium:Premium",
        "",
        A,
    ),
]

# (key, name, type, status)
ITEMS = [
    ("free", "Free", Item.Type.PLAN, A),
    ("team", "Team", Item.Type.PLAN, A),
    ("business", "Business", Item.Type.PLAN, A),
    ("enterprise", "Enterprise", Item.Type.PLAN, A),
    ("extra-seats", "Extra seats", Item.Type.ADDON, A),
    ("advanced-security", "Advanced security", Item.Type.ADDON, A),
    ("priority-support", "Priority support", Item.Type.ADDON, A),
    ("ai-pack", "AI pack", Item.Type.ADDON, D),
    ("legacy-analytics", "Legacy analytics", Item.Type.ADDON, X),
]


def _levels(feature_type: str, spec: str) -> list[LevelSpec]:
    if not spec:
        return []
    if feature_type == Feature.Type.CUSTOM:
        return [LevelSpec(*part.split(":", 1)) for part in spec.split("|")]
    levels = []
    names = ("Minimum", "Maximum") if feature_type == Feature.Type.RANGE else None
    for index, value in enumerate(spec.split(",")):
        if value == "*":
            levels.append(LevelSpec("unlimited", "Unlimited", True))
        else:
            levels.append(LevelSpec(value, names[index] if names else f"{int(value):,}"))
    return levels


def _move(obj, status: str, activate, archive):
    """Walk a new (draft) object along the lifecycle to `status`; returns it as stored."""
    if status in (A, X):
        obj = activate(obj)
    if status == X:
        obj = archive(obj)
    return obj


@transaction.atomic
def seed_catalog(*, ctx: DemoContext) -> None:
    """Products, modules, features (all types and statuses, some metered) and items of the demo workspace."""
    workspace = ctx.workspace
    products = {
        key: product_create(workspace=workspace, key=key, name=name, description=description)
        for key, name, description in PRODUCTS
    }
    modules = {
        key: module_create(workspace=workspace, product=products[product], key=key, name=name)
        for product, key, name in MODULES
    }
    features: dict[str, Feature] = {}
    for product, module, key, name, ftype, unit, levels, metering, status in ctx.track(FEATURES, desc="features"):
        period, _, anchor = metering.partition("/")
        feature = feature_create(
            workspace=workspace,
            product=products[product],
            module=modules[module] if module else None,
            key=key,
            name=name,
            type=ftype,
            unit=unit,
            levels=_levels(ftype, levels),
            metered=bool(metering),
            reset_period=period or Feature.ResetPeriod.NONE,
            reset_anchor=anchor or Feature.ResetAnchor.CALENDAR,
        )
        features[key] = _move(
            feature, status, lambda f: feature_activate(feature=f), lambda f: feature_archive(feature=f)
        )
    items: dict[str, Item] = {}
    for key, name, itype, status in ITEMS:
        item = item_create(workspace=workspace, key=key, name=name, type=itype)
        items[key] = _move(item, status, lambda i: item_activate(item=i), lambda i: item_archive(item=i))
    ctx.data.update(products=products, modules=modules, features=features, items=items)
    ctx.log(f"{len(products)} products, {len(modules)} modules, {len(features)} features, {len(items)} items")
