"""Writes for entitlements: item and subscription entitlements, subscriptions, and allowance usage counters."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class UsageRow:
    """One stored usage event, as the allowance counters need it."""

    account_id: int
    feature_id: int
    occurred_at: datetime
    quantity: int


def allowance_usage_apply(*, workspace_id: int, rows: Iterable[UsageRow]) -> None:
    """Add stored events to the allowance counters, in the caller's transaction (the one that stored them).

    Called by every path that stores usage events (usage.services), so `used` stays exact and transactional
    with event storage. Implemented in issue 4.
    """
    raise NotImplementedError
