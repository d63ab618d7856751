"""IngestLayer's `feature.used` event on `POST /api/v1/events/feature.used`: `{user_id, feature, count, plan}`,
one object or a list. The user resolves to its account (accounts.selectors.account_external_id_for_user, unless
the event names `account_id`), `plan` updates that account's plan label (accounts.services.account_upsert),
`count` is the quantity (default 1), `feature` the feature (a key or a display name); then the events go
through events_ingest like any other. Other fields (`event_id`, `timestamp`, `properties`) are those of
`/api/v1/events`."""

from datetime import datetime

from django.db import transaction

from accounts.models import Workspace
from accounts.selectors import account_external_id_for_user
from accounts.services import account_upsert

from .services import IngestResult, events_ingest
from .validation import Code, Rejection

UNKNOWN_USER = "unknown_user"
PLAN_MAX_LENGTH = 100
_PASSED_ON = ("event_id", "timestamp", "properties", "account_id")


def feature_used_ingest(*, workspace: Workspace, payload: list[dict], now: datetime) -> IngestResult:
    """Store IngestLayer `feature.used` events; the answer is that of /api/v1/events (indexes of `payload`)."""
    events: list[dict] = []
    origins: list[int] = []
    rejected: list[Rejection] = []
    plans: list[str | None] = []
    accounts: dict[str, str | None] = {}
    for index, item in enumerate(payload):
        user = item.get("user_id")
        if not isinstance(user, str) or not user.strip():
            rejected.append(_reject(index, Code.MISSING_FIELD, "'user_id' is required (a string).", "user_id"))
            continue
        user = user.strip()
        account = item.get("account_id")
        if account is None:
            if user not in accounts:
                accounts[user] = account_external_id_for_user(workspace=workspace, user_external_id=user)
            account = accounts[user]
        if account is None:
            rejected.append(
                _reject(
                    index,
                    UNKNOWN_USER,
                    f"No end user '{user[:64]}' in this workspace: send 'account_id', or create the user first "
                    "(PUT /api/v1/accounts/{account_id}/users/{user_id}).",
                    "user_id",
                )
            )
            continue
        plan = _plan(item.get("plan"))
        if plan is not None and (not isinstance(plan, str) or len(plan.strip()) > PLAN_MAX_LENGTH):
            rejected.append(
                _reject(
                    index, Code.INVALID_VALUE, f"'plan' must be text of at most {PLAN_MAX_LENGTH} characters.", "plan"
                )
            )
            continue
        event = {"account_id": account, "user_id": user, "feature_id": item.get("feature")}
        if "count" in item:
            event["quantity"] = item["count"]
        event.update({name: item[name] for name in _PASSED_ON if name in item and name != "account_id"})
        events.append(event)
        origins.append(index)
        plans.append(plan)
    result = events_ingest(workspace=workspace, payload=events, now=now) if events else IngestResult()
    # The plan of the last accepted event of each account wins; a rejected event changes nothing.
    refused = {r.index for r in result.rejected}
    latest = {
        event["account_id"]: plan
        for n, (event, plan) in enumerate(zip(events, plans, strict=True))
        if n not in refused and plan is not None and isinstance(event["account_id"], str)
    }
    with transaction.atomic():
        for account, plan in sorted(latest.items()):
            account_upsert(workspace=workspace, external_id=account, plan=plan)
    result.rejected = [
        *rejected,
        *[_reject(origins[r.index], r.code, r.message, r.field) for r in result.rejected],
    ]
    result.warnings = [_reindex(w, origins[w.index]) for w in result.warnings]
    return result


def _reject(index: int, code: str, message: str, field: str | None) -> Rejection:
    return Rejection(index=index, code=code, message=message, field=field)


def _reindex(warning, index: int):
    from dataclasses import replace

    return replace(warning, index=index)


def _plan(value: object) -> object:
    """Plan labels are text; a number (`plan: 3`) is taken as its text."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
