"""Demo data for entitlements (a `seed_demo` step): what the free/team/business/enterprise plans and add-ons
grant, a subscription per demo account (its plan label, sometimes an add-on; a few trials and cancellations)
and a few overrides, through the services so every value is validated."""

from datetime import timedelta

from accounts.demo import DemoContext
from catalog.models import Feature, Lifecycle

from .services import item_entitlement_set, subscription_create, subscription_entitlement_set

PLAN_TIERS = ["free", "team", "business", "enterprise"]


def _value(feature: Feature, tier: int, rng) -> str | None:
    """The value a plan of tier 0..3 grants for a feature, or None for nothing."""
    levels = list(feature.levels.all())
    if feature.type == Feature.Type.SWITCH:
        return "true" if tier >= rng.choice([0, 1, 1, 2, 2, 3]) else None
    if feature.type == Feature.Type.CUSTOM:
        return levels[min(tier, len(levels) - 1)].value
    if feature.type == Feature.Type.QUANTITY:
        level = levels[min(tier, len(levels) - 1)]
        return "unlimited" if level.is_unlimited else level.value
    low = int(levels[0].value)
    if levels[-1].is_unlimited:
        return "unlimited" if tier == 3 else str(low + 10 ** (tier + 1))
    high = int(levels[-1].value)
    return str(low + (high - low) * tier // 3)


def seed_entitlements(*, ctx: DemoContext) -> None:
    """Plan and add-on grants, one subscription per demo account, a few overrides."""
    rng = ctx.rng("entitlements")
    workspace = ctx.workspace
    features = [f for f in ctx.data["features"].values() if f.status != Lifecycle.ARCHIVED]
    items = ctx.data["items"]
    plans = {key: items[key] for key in PLAN_TIERS if key in items}
    for tier, (_, item) in enumerate(ctx.track(list(plans.items()), desc="plan entitlements")):
        for feature in features:
            value = _value(feature, tier, rng)
            if value is not None:
                item_entitlement_set(item=item, feature=feature, value=value)
    addons = [item for item in items.values() if item.type == "addon" and item.status == Lifecycle.ACTIVE]
    for addon in addons:
        for feature in rng.sample(features, min(3, len(features))):
            item_entitlement_set(item=addon, feature=feature, value=_value(feature, 3, rng) or "true")
    metered = [f for f in features if f.metered]
    overrides = 0
    for number, account in enumerate(ctx.track(ctx.data["accounts"], desc="subscriptions")):
        plan = plans.get((account.plan or "").lower()) or rng.choice(list(plans.values()))
        chosen = [plan] + ([rng.choice(addons)] if addons and rng.random() < 0.25 else [])
        status = rng.choices(["active", "in_trial", "cancelled"], [85, 10, 5])[0]
        subscription = subscription_create(
            workspace=workspace,
            external_id=f"sub_{number:04d}",
            account=account,
            status=status,
            items=chosen,
            current_term_start=ctx.now - timedelta(days=rng.randint(0, 364), minutes=rng.randint(0, 1439)),
        )
        if metered and number % 25 == 0:
            feature = rng.choice(metered)
            subscription_entitlement_set(
                subscription=subscription,
                feature=feature,
                value=_value(feature, 3, rng),
                expires_at=ctx.now + timedelta(days=rng.choice([7, 30, 90])) if number % 50 == 0 else None,
            )
            overrides += 1
    ctx.log(f"{len(ctx.data['accounts'])} subscriptions, {overrides} overrides")
