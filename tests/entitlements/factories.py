"""Small builders for entitlement tests (real services, real PostgreSQL)."""

from datetime import datetime

from accounts.models import Account, Workspace
from catalog.models import Feature, Item, Product
from catalog.services import feature_activate, feature_create, item_activate, item_create
from entitlements.models import Subscription
from entitlements.services import item_entitlement_set, subscription_create

QUANTITY_LEVELS = [
    {"value": "10", "name": "Ten"},
    {"value": "100", "name": "Hundred"},
    {"value": "unlimited", "name": "Unlimited", "is_unlimited": True},
]


def account(workspace: Workspace, external_id: str = "acct-1") -> Account:
    return Account.objects.create(workspace=workspace, external_id=external_id, name=external_id)


def feature(workspace: Workspace, product: Product, key: str, *, active: bool = True, **kwargs) -> Feature:
    created = feature_create(workspace=workspace, key=key, name=key.title(), product=product, **kwargs)
    return feature_activate(feature=created) if active else created


def metered(
    workspace: Workspace,
    product: Product,
    key: str = "api-calls",
    *,
    period: str = "month",
    anchor: str = "calendar",
    levels=None,
) -> Feature:
    return feature(
        workspace,
        product,
        key,
        type="quantity",
        levels=levels or QUANTITY_LEVELS,
        metered=True,
        reset_period=period,
        reset_anchor=anchor,
    )


def plan(workspace: Workspace, key: str, grants: dict[Feature, str], *, type: str = "plan") -> Item:
    item = item_activate(item=item_create(workspace=workspace, key=key, name=key.title(), type=type))
    for granted_feature, value in grants.items():
        item_entitlement_set(item=item, feature=granted_feature, value=value)
    return item


def subscribe(
    workspace: Workspace,
    acct: Account,
    external_id: str,
    items: list[Item],
    *,
    status: str = "active",
    term_start: datetime | None = None,
) -> Subscription:
    return subscription_create(
        workspace=workspace,
        external_id=external_id,
        account=acct,
        status=status,
        items=items,
        current_term_start=term_start,
    )


def team_account(workspace: Workspace, product: Product, external_id: str) -> Account:
    """An account subscribed (subscription s1) to plan `team`: 10 `api-calls` a month (metered), `sso`, 5 `seats`."""
    calls = metered(workspace, product, period="month")
    sso = feature(workspace, product, "sso")
    seats = feature(workspace, product, "seats", type="quantity", levels=[{"value": "5", "name": "5"}])
    acct = account(workspace, external_id)
    subscribe(workspace, acct, "s1", [plan(workspace, "team", {calls: "10", sso: "true", seats: "5"})])
    return acct
