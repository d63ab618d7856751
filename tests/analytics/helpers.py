"""Test helpers for analytics: store raw events as ingestion would, race a rollup against an open ingestion, and
an independent pure-Python oracle."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.db import connection, connections, transaction

from accounts.models import Account, EndUser, Workspace
from analytics.services import rollup_day
from catalog.models import Feature
from usage.models import UsageEvent

RESERVED = ("license.", "update.", "release.", "product.", "site.")


@dataclass(frozen=True)
class Ev:
    feature: str
    account: str
    at: datetime
    q: int = 1
    user: str | None = None


def store_events(workspace: Workspace, events: list[Ev], *, now: datetime | None = None) -> None:
    """Insert raw events and upsert their dirty (workspace, UTC day) marks in one transaction, like ingestion."""
    now = now or datetime.now(UTC)
    features = {f.key: f for f in Feature.objects.filter(workspace=workspace)}
    accounts = {a.external_id: a for a in Account.objects.filter(workspace=workspace)}
    users = {(u.account_id, u.external_id): u for u in EndUser.objects.filter(workspace=workspace)}
    rows = []
    for ev in events:
        account = accounts[ev.account]
        user = None
        if ev.user is not None:
            user = users.get((account.pk, ev.user))
            if user is None:
                user = EndUser.objects.create(workspace=workspace, account=account, external_id=ev.user)
                users[(account.pk, ev.user)] = user
        rows.append(
            UsageEvent(
                workspace=workspace,
                account=account,
                end_user=user,
                feature=features[ev.feature],
                occurred_at=ev.at,
                received_at=now,
                quantity=ev.q,
            )
        )
    with transaction.atomic():
        UsageEvent.objects.bulk_create(rows)
        with connection.cursor() as cursor:
            for day in sorted({ev.at.astimezone(UTC).date() for ev in events}):
                cursor.execute(
                    """INSERT INTO usage_usagedaydirty (workspace_id, day, version, marked_at) VALUES (%s, %s, 1, %s)
                       ON CONFLICT (workspace_id, day, shard)
                       DO UPDATE SET version = usage_usagedaydirty.version + 1, marked_at = EXCLUDED.marked_at""",
                    [workspace.pk, day, now],
                )


def rollup_during_open_ingestion(*, workspace: Workspace, day: date, ingest: Callable[[], None]) -> list[bool]:
    """Run `ingest` in a transaction on a connection of its own, then, while that transaction is still open, a
    rollup of `day` on another one; the ingestion commits a second later, while the rollup runs or waits for its
    locks. Returns what the rollup returned (one item once it has finished)."""
    stored, go = threading.Event(), threading.Event()
    results: list[bool] = []

    def ingesting() -> None:
        try:
            with transaction.atomic():
                ingest()
                stored.set()
                go.wait(20)
        finally:
            connections.close_all()

    def rolling() -> None:
        try:
            results.append(rollup_day(workspace_id=workspace.pk, day=day))
        finally:
            connections.close_all()

    ingester = threading.Thread(target=ingesting)
    ingester.start()
    assert stored.wait(10)
    roller = threading.Thread(target=rolling)
    roller.start()
    roller.join(1.0)
    go.set()
    ingester.join()
    roller.join(20)
    return results


def _pct(part: int, whole: int) -> float:
    if not whole:
        return 0.0
    return float((Decimal(100 * part) / Decimal(whole)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def oracle(
    events: list[Ev],
    *,
    features: dict[str, str],
    accounts: dict[str, dict],
    start: date,
    end: date,
    active_accounts: int,
    event: str | None = None,
    account: str | None = None,
    tz: str = "UTC",
    product_id: str = "default",
) -> dict:
    """The feature-usage response computed straight from the events sent (features = the product's key → name)."""
    n = (end - start).days + 1
    prior_start, prior_end = start - timedelta(days=n), start - timedelta(days=1)
    keep = {k for k in features if not k.startswith(RESERVED) and (event is None or event.lower() in k.lower())}
    cur = [
        e
        for e in events
        if e.feature in keep
        and (account is None or e.account == account)
        and start <= e.at.astimezone(UTC).date() <= end
    ]
    prior = [
        e
        for e in events
        if e.feature in keep
        and (account is None or e.account == account)
        and prior_start <= e.at.astimezone(UTC).date() <= prior_end
    ]

    def net(evs, key):
        out = defaultdict(int)
        for e in evs:
            out[key(e)] += e.q
        return out

    f_net = net(cur, lambda e: e.feature)
    f_prior = net(prior, lambda e: e.feature)
    fa = net(cur, lambda e: (e.feature, e.account))
    a_net = net(cur, lambda e: e.account)
    dom = lambda a: accounts[a]["domain"].strip().lower()  # noqa: E731
    fd = net([e for e in cur if dom(e.account)], lambda e: (e.feature, dom(e.account)))
    d_net = net([e for e in cur if dom(e.account)], lambda e: dom(e.account))
    daily = net(cur, lambda e: (e.feature, e.at.astimezone(UTC).date()))
    used_f = sorted([f for f, v in f_net.items() if v > 0], key=lambda f: (-f_net[f], f))
    used_a = sorted([a for a, v in a_net.items() if v > 0], key=lambda a: (-a_net[a], a))
    used_d = sorted([d for d, v in d_net.items() if v > 0], key=lambda d: (-d_net[d], d))
    days = [start + timedelta(days=i) for i in range(n)]
    grid = [[0] * 24 for _ in range(7)]
    zone = ZoneInfo(tz)
    for e in cur:
        local = e.at.astimezone(zone)
        grid[(local.weekday() + 1) % 7][local.hour] += e.q
    top_features = []
    for f in used_f[:12]:
        n_acc = sum(1 for (ff, _), v in fa.items() if ff == f and v > 0)
        top_features.append(
            {
                "feature_id": f,
                "name": features[f],
                "events": f_net[f],
                "prior_events": f_prior.get(f, 0),
                "accounts": n_acc,
                "domains": sum(1 for (ff, _), v in fd.items() if ff == f and v > 0),
                "adoption_pct": _pct(n_acc, active_accounts),
                "sparkline": [daily.get((f, d), 0) for d in days],
                "sparkline_days": [d.isoformat() for d in days],
            }
        )
    quiet = sorted([f for f in keep if f_prior.get(f, 0) > 0 and f_net.get(f, 0) <= 0], key=lambda f: (-f_prior[f], f))
    return {
        "product_id": product_id,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "prior_from": prior_start.isoformat(),
        "prior_to": prior_end.isoformat(),
        "timezone": tz,
        "totals": {
            "events": sum(f_net.values()),
            "unique_features": len(used_f),
            "unique_accounts": len(used_a),
            "unique_domains": len(used_d),
            "active_accounts": active_accounts,
        },
        "top_features": top_features,
        "quiet_features": [{"feature_id": f, "name": features[f], "prior_events": f_prior[f]} for f in quiet],
        "usage_pattern": grid,
        "top_accounts": [
            {
                "account_id": a,
                "name": accounts[a]["name"],
                "customer_email": accounts[a].get("customer_email", ""),
                "events": a_net[a],
                "features": sum(1 for (_, aa), v in fa.items() if aa == a and v > 0),
            }
            for a in used_a[:12]
        ],
        "top_domains": [{"domain": d, "events": d_net[d]} for d in used_d[:12]],
    }
