"""Dashboard test data, built through the real paths: catalog and entitlement services, account upserts,
usage.services.events_ingest and analytics.services.rollup_pending.

Relative to `now` (the browser tests drive a live server on the real clock), in workspace "acme":
- a1 Alpha (team, owner carol): reports.view daily, api.calls 90 of its 100/month allowance → near limit;
- a2 Beta (free, owner carol): reports.view and export.pdf, which the free plan does not grant;
- a3 Gamma (team, owner dave): last used anything 20 days ago → dormant; legacy.import gone quiet;
- a4 Delta (team, no owner): 10 uses of reports.view in the prior window, 1 in the current → usage dropped.
Workspace "globex" gets one account with the same shapes (free, over its limit, dormant) whose name and id
("g-secret", "Globex Secret") must never show up for acme's users.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.auth import get_user_model

from accounts.models import Workspace
from accounts.services import account_upsert, membership_set
from analytics.services import rollup_pending
from catalog.models import Product
from catalog.services import feature_activate, feature_create, item_activate, item_create, module_create, product_create
from entitlements.services import item_entitlement_set, subscription_create
from usage.services import events_ingest

# Every dashboard page of the scenario (HTML; the lists' CSV exports are their path + "export.csv").
DASHBOARD_PAGES = [
    "/",
    "/features/reports.view/",
    "/accounts/a1/",
    "/lists/near-limit/",
    "/lists/free-unentitled/",
    "/lists/dormant/",
    "/lists/usage-drop/",
]


@dataclass
class Built:
    workspace: Workspace
    product: Product
    now: datetime


def _catalog(workspace: Workspace) -> Product:
    product = product_create(workspace=workspace, key="default", name="Default")
    reports = module_create(workspace=workspace, product=product, key="reports", name="Reports")
    specs = [
        ("reports.view", "Reports", reports, {}),
        ("export.pdf", "PDF export", reports, {}),
        ("legacy.import", "Legacy import", None, {}),
        (
            "api.calls",
            "API calls",
            None,
            {
                "type": "quantity",
                "levels": [{"value": "100", "name": "Team"}, {"value": "1000", "name": "Max"}],
                "metered": True,
                "reset_period": "month",
                "reset_anchor": "calendar",
            },
        ),
    ]
    features = {}
    for key, name, module, extra in specs:
        features[key] = feature_activate(
            feature=feature_create(workspace=workspace, key=key, name=name, product=product, module=module, **extra)
        )
    free = item_activate(item=item_create(workspace=workspace, key="free", name="Free"))
    team = item_activate(item=item_create(workspace=workspace, key="team", name="Team"))
    item_entitlement_set(item=free, feature=features["reports.view"], value="true")
    for key in ("reports.view", "export.pdf", "legacy.import"):
        item_entitlement_set(item=team, feature=features[key], value="true")
    item_entitlement_set(item=team, feature=features["api.calls"], value="100")
    return product


def _ev(account: str, feature: str, at: datetime, quantity: int = 1, user: str | None = None) -> dict:
    event = {"account_id": account, "feature_id": feature, "timestamp": at.isoformat(), "quantity": quantity}
    if user:
        event["user_id"] = user
    return event


def _accounts(workspace: Workspace, specs: list[tuple[str, str, str, str | None, str]], now: datetime) -> None:
    from catalog.models import Item

    for external_id, name, plan, owner_email, domain in specs:
        account, _ = account_upsert(
            workspace=workspace,
            external_id=external_id,
            name=name,
            plan=plan,
            domain=domain,
            **({"owner_email": owner_email} if owner_email else {}),
        )
        item = Item.objects.get(workspace=workspace, key=plan)
        subscription_create(
            workspace=workspace,
            external_id=f"sub-{external_id}",
            account=account,
            items=[item],
            current_term_start=now - timedelta(days=200),
        )


def _on_day(now: datetime, *, days: int, hours: int) -> datetime:
    """`hours` before the same time `days` ago, but never before that UTC day starts: in the first hours of a day
    the offset would carry the event into the day before (a run just after midnight saw 110 uses for 112)."""
    at = now - timedelta(days=days)
    return max(at.replace(hour=0, minute=0, second=0, microsecond=0), at - timedelta(hours=hours))


def build(*, now: datetime | None = None) -> Built:
    now = now or datetime.now(UTC)
    User = get_user_model()
    carol = User.objects.get_or_create(username="carol", defaults={"email": "carol@example.com", "is_staff": True})[0]
    carol.set_password("pw-carol-123")
    carol.is_staff = True
    carol.save()
    dave = User.objects.get_or_create(username="dave", defaults={"email": "dave@example.com", "is_staff": True})[0]

    from accounts.services import workspace_create

    acme = workspace_create(slug="acme", name="Acme Inc.")
    globex = workspace_create(slug="globex", name="Globex")
    for ws in (acme, globex):
        ws.late_event_window_days = 90
        ws.save(update_fields=["late_event_window_days"])
        membership_set(workspace=ws, user=dave, role="manager")
    membership_set(workspace=acme, user=carol, role="manager")

    product = _catalog(acme)
    _catalog(globex)
    _accounts(
        acme,
        [
            ("a1", "Alpha", "team", "carol@example.com", "alpha.com"),
            ("a2", "Beta", "free", "carol@example.com", "beta.io"),
            ("a3", "Gamma", "team", "dave@example.com", "gamma.org"),
            ("a4", "Delta", "team", None, "delta.net"),
        ],
        now,
    )
    _accounts(
        globex,
        [
            ("g-secret", "Globex Secret", "free", "dave@example.com", "secret.example"),
            ("g-hidden", "Globex Hidden", "team", "dave@example.com", "hidden.example"),
        ],
        now,
    )

    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    in_month = max(month_start, now - timedelta(days=1))
    events = []
    for d in range(0, 28):
        events.append(_ev("a1", "reports.view", _on_day(now, days=d, hours=1), 2, "u1"))
    events.append(_ev("a1", "api.calls", in_month, 90, "u1"))
    events += [_ev("a2", "reports.view", _on_day(now, days=d, hours=2), 1, "u2") for d in (1, 3, 5)]
    events += [_ev("a2", "export.pdf", _on_day(now, days=2, hours=3), 4, "u2")]
    events += [_ev("a3", "legacy.import", now - timedelta(days=d), 3) for d in (35, 40, 45)]
    events += [_ev("a3", "reports.view", now - timedelta(days=20), 1)]
    events += [_ev("a4", "reports.view", now - timedelta(days=31 + d), 1) for d in range(10)]
    events += [_ev("a4", "reports.view", now - timedelta(days=4), 1)]
    result = events_ingest(workspace=acme, payload=events, now=now)
    assert not result.rejected, result.as_dict() if hasattr(result, "as_dict") else result.rejected
    g_events = [_ev("g-secret", "export.pdf", now - timedelta(days=d), 50) for d in range(1, 4)]
    g_events += [
        _ev("g-hidden", "api.calls", in_month, 500),
        _ev("g-hidden", "legacy.import", now - timedelta(days=40), 9),
    ]
    result = events_ingest(workspace=globex, payload=g_events, now=now)
    assert not result.rejected, result.rejected
    rollup_pending(now=now + timedelta(seconds=1))
    return Built(workspace=acme, product=product, now=now)
