"""IngestLayer's `feature.used` event on `POST /api/v1/events/feature.used`: `{user_id, feature, count, plan}`,
one object or a list. The user resolves to its account (accounts.selectors.account_external_id_for_user, unless
the event names `account_id`), `plan` updates that account's plan label (accounts.services.account_plans_set),
`count` is the quantity (default 1), `feature` the feature (a key or a display name); then the events go
through events_ingest like any other. Other fields (`event_id`, `timestamp`, `properties`) are those of
`/api/v1/events`."""

from datetime import datetime

from accounts.models import Workspace
from accounts.selectors import account_external_id_for_user
from accounts.services import account_plans_set
from core.text import text_problem

from .services import IngestResult, events_ingest
from .validation import Code, Rejection

UNKNOWN_USER = "unknown_user"
PLAN_MAX_LENGTH = 100
# IngestLayer's field names for ours; the alias next to a field it stands for is `conflicting_fields`.
ALIASES = {"feature": "feature_id", "count": "quantity"}
_SAME_AS = {"feature": ("feature_id",), "count": ("quantity", "total")}
_OWN_FIELDS = frozenset(("user_id", "account_id", "plan", *ALIASES))


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
        refusal = _plan_refusal(plan) or _conflict(item)
        if refusal is not None:
            code, message, field = refusal
            rejected.append(_reject(index, code, message, field))
            continue
        # IngestLayer's names become ours; every other field goes on as sent (unknown ones are warned about).
        event = {name: value for name, value in item.items() if name not in _OWN_FIELDS}
        event.update(account_id=account, user_id=user)
        for alias, name in ALIASES.items():
            if alias in item:
                event[name] = item[alias]
        events.append(event)
        origins.append(index)
        plans.append(plan)
    result = events_ingest(workspace=workspace, payload=events, now=now) if events else IngestResult()
    # The plan of the last stored event of each account wins, on the account it was stored under; an event
    # refused, ignored (count 0) or a duplicate changes nothing.
    latest = {
        stored.account_id: plans[stored.index]
        for stored in sorted(result.stored, key=lambda stored: stored.index)
        if plans[stored.index] is not None
    }
    if latest:
        account_plans_set(workspace=workspace, plans=latest)
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


def _plan_refusal(plan: object) -> tuple[str, str, str] | None:
    """Why `plan` cannot be an account's plan label (checked before any event is stored: the label is written
    after the events' commit, where a refusal could no longer be answered)."""
    if plan is None:
        return None
    if not isinstance(plan, str) or len(plan.strip()) > PLAN_MAX_LENGTH:
        return Code.INVALID_VALUE, f"'plan' must be text of at most {PLAN_MAX_LENGTH} characters.", "plan"
    if problem := text_problem(plan):
        return Code.INVALID_VALUE, f"'plan' {problem.phrase}.", "plan"
    return None


def _conflict(item: dict) -> tuple[str, str, str] | None:
    for alias, names in _SAME_AS.items():
        for name in names:
            if alias in item and name in item:
                message = f"'{alias}' and '{name}' are the same field; send one of them."
                return Code.CONFLICTING_FIELDS, message, alias
    return None


def _plan(value: object) -> object:
    """Plan labels are text; a number (`plan: 3`) is taken as its text."""
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
