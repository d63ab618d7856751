"""Message templates: a pipeline's `{"title", "body"}` with `$event.*`, `$account.*`, `$user.*`, `$feature.*` and
`$pipeline.name` placeholders (`${account.name}` where text follows directly, `$$` for a dollar sign).

Unknown placeholders are refused at save time; a value the alert does not have renders empty. The values are
stored with the delivery (`payload["values"]`) and each destination renders the template itself, escaping the
values for its format (Slack mrkdwn, Discord markdown, Telegram's HTML parse mode, HTML e-mail), so an event can
never inject markup, links or mentions.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from core.errors import DomainError

TITLE_MAX = 250
BODY_MAX = 3000
# `$event.<property>` reads the event's properties; the other roots have a fixed list.
KNOWN = {
    "event": {"name", "quantity", "occurred_at", "id", "feature"},
    "account": {"id", "name", "plan", "owner", "domain", "status"},
    "user": {"id", "email"},
    "feature": {"key", "name"},
    "pipeline": {"name"},
}
PLACEHOLDER = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_.]*)\}|\$([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)+)")


def _check_name(name: str, *, field: str) -> None:
    root, _, rest = name.partition(".")
    if root not in KNOWN or not rest:
        raise DomainError(
            f"{field}: ${name} is not a placeholder; use $event.*, $account.*, $user.*, $feature.* or $pipeline.name.",
            code="unknown_placeholder",
            field=field,
        )
    if root == "event" and (rest in KNOWN["event"] or re.fullmatch(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*", rest)):
        return
    if rest not in KNOWN[root]:
        raise DomainError(
            f"{field}: ${name} is not a placeholder; ${root}. takes {', '.join(sorted(KNOWN[root]))}.",
            code="unknown_placeholder",
            field=field,
        )


def template_validate(raw: Any) -> dict:
    """Check a template and return it (`{}` for none), or raise naming the part and the placeholder at fault."""
    if raw is None or raw == {}:
        return {}
    if not isinstance(raw, dict):
        raise DomainError('template must be an object: {"title", "body"}.', code="invalid_type", field="template")
    unknown = sorted(set(raw) - {"title", "body"})
    if unknown:
        raise DomainError(
            f"template.{unknown[0]} is not a template part (title, body).",
            code="unknown_field",
            field=f"template.{unknown[0]}",
        )
    out = {}
    for part, limit in (("title", TITLE_MAX), ("body", BODY_MAX)):
        value = raw.get(part, "")
        field = f"template.{part}"
        if not isinstance(value, str):
            raise DomainError(f"{field} must be text.", code="invalid_type", field=field)
        if len(value) > limit:
            raise DomainError(f"{field} is longer than {limit} characters.", code="too_long", field=field)
        for match in PLACEHOLDER.finditer(value):
            name = match.group(1) or match.group(2)
            if name:
                _check_name(name, field=field)
        stray = re.search(r"\$(?![\${A-Za-z_])", PLACEHOLDER.sub("", value))
        if stray:
            raise DomainError(
                f"{field}: a '$' must start a placeholder like $account.name; write $$ for a dollar sign.",
                code="unknown_placeholder",
                field=field,
            )
        out[part] = value
    if not out["title"].strip() and not out["body"].strip():
        return {}
    return out


def template_values(
    *,
    event_name: str,
    quantity: int | None,
    occurred_at: str | None,
    event_id: str | None,
    properties: dict | None,
    account: dict | None,
    user: dict | None,
    feature: dict | None,
    pipeline_name: str,
) -> dict[str, str]:
    """The flat `{"event.name": "...", ...}` values an alert offers its template (stored with the delivery)."""
    values: dict[str, str] = {
        "event.name": event_name,
        "event.quantity": "" if quantity is None else str(quantity),
        "event.occurred_at": occurred_at or "",
        "event.id": event_id or "",
        "event.feature": (feature or {}).get("name") or "",
        "feature.key": (feature or {}).get("id") or "",
        "feature.name": (feature or {}).get("name") or "",
        "pipeline.name": pipeline_name,
    }
    for key in KNOWN["account"]:
        value = (account or {}).get(key)
        values[f"account.{key}"] = "" if value is None else str(value)
    for key in KNOWN["user"]:
        value = (user or {}).get(key)
        values[f"user.{key}"] = "" if value is None else str(value)

    def flatten(prefix: str, data: Any) -> None:
        if isinstance(data, dict):
            for k, v in data.items():
                flatten(f"{prefix}.{k}", v)
        elif f"{prefix}" not in values:
            values[prefix] = "" if data is None else str(data)

    flatten("event", properties or {})
    return values


def template_render(text: str, values: dict[str, str], *, escape: Callable[[str], str] = lambda s: s) -> str:
    """The text with each placeholder replaced by its value passed through `escape` (missing: empty)."""

    def replace(match: re.Match) -> str:
        name = match.group(1) or match.group(2)
        if name is None:
            return "$"
        return escape(values.get(name, ""))

    return PLACEHOLDER.sub(replace, text)


# Escapes for the values, per destination format (the template's own text is the author's markup).
def escape_slack(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_DISCORD_SPECIAL = re.compile(r"([\\*_~`|>#\-\[\]()<:@])")


def escape_discord(value: str) -> str:
    return _DISCORD_SPECIAL.sub(r"\\\1", value)
