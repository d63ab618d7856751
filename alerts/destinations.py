"""Destination adapters: how one alert payload becomes a Slack, Discord, webhook or e-mail message, and the
send.

An alert payload (stored in `AlertDelivery.payload`) is a plain dict:
`{"event", "title", "text", "pipeline": {"id", "name"}, "account": {...} | None, "feature": {...} | None,
"details": {...}, "occurred_at"}`. Builders here are pure functions of that dict; `destination_send` does I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

import urllib3
from django.conf import settings
from django.core.mail import send_mail

from core.outbound import OutboundRefused, OutboundUnresolved, outbound_post, outbound_target

from .models import AlertDestination

DISCORD_MAX_FIELDS = 25
DISCORD_MAX_TOTAL = 6000
DISCORD_MAX_TITLE = 256
DISCORD_MAX_DESCRIPTION = 4096
DISCORD_MAX_FIELD_NAME = 256
DISCORD_MAX_FIELD_VALUE = 1024
DISCORD_MAX_FOOTER = 2048
SLACK_MAX_FIELDS = 10
SLACK_MAX_TEXT = 3000
SIGNATURE_HEADER = "X-Uptake-Signature"
TIMESTAMP_HEADER = "X-Uptake-Timestamp"
USER_AGENT = "Uptake-Alerts/1.0"
MASK = "••••"

_MENTION_ALL = {"parse": ["everyone", "roles", "users"]}
_MENTION_NONE: dict = {"parse": []}


# ------------------------------------------------------------------------------------------------------------
# Payload → display fields
# ------------------------------------------------------------------------------------------------------------


def _display(value) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def message_fields(payload: dict) -> list[tuple[str, str]]:
    """The (name, value) pairs every destination shows: enrichment first, then the trigger's details."""
    fields: list[tuple[str, str]] = []
    account = payload.get("account") or {}
    if account:
        fields += [
            ("Account", f"{account.get('name') or account.get('id')} ({account.get('id')})"),
            ("Plan", _display(account.get("plan"))),
            ("Owner", _display(account.get("owner"))),
            ("Domain", _display(account.get("domain"))),
        ]
    feature = payload.get("feature") or {}
    if feature:
        fields.append(("Feature", f"{feature.get('name') or feature.get('id')} ({feature.get('id')})"))
    for key, value in (payload.get("details") or {}).items():
        fields.append((key.replace("_", " ").capitalize(), _display(value)))
    return fields


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


def mask_secret(secret: str) -> str | None:
    """`••••abcd`: enough to recognise a secret, never enough to use it."""
    if not secret:
        return None
    return MASK + secret[-4:] if len(secret) > 8 else MASK


def mask_url(url: str, *, path: bool = True) -> str:
    """A URL fit to show back: credentials (`user:pw@`) always masked, and with `path` (Slack and Discord
    webhook URLs carry their token in the path) only scheme, host and the last 4 characters."""
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)([^/?#]*)(.*)$", url)
    if not match:
        return url
    scheme, authority, rest = match.groups()
    if "@" in authority:
        authority = MASK + "@" + authority.rsplit("@", 1)[1]
    if not path or rest in ("", "/"):
        return f"{scheme}{authority}{rest}"
    return f"{scheme}{authority}/{MASK}{url[-4:]}"


def destination_url_shown(destination: AlertDestination) -> str:
    """The destination's URL as shown back (API, dashboard): Slack and Discord tokens masked, credentials
    never shown."""
    tokened = destination.type in (AlertDestination.Type.SLACK, AlertDestination.Type.DISCORD)
    return mask_url(destination.url, path=tokened)


# ------------------------------------------------------------------------------------------------------------
# Builders
# ------------------------------------------------------------------------------------------------------------


def _slack_escape(text: str) -> str:
    # Slack reads <!channel>, <!here>, <@U123> and <#C1> as mentions; escaping the brackets shows them as
    # text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_body(payload: dict, *, mentions: bool = False) -> dict:
    """A Slack incoming-webhook body: `text` (notification fallback) and Block Kit `blocks`."""
    esc = (lambda s: s) if mentions else _slack_escape
    title = payload.get("title") or payload.get("event") or "Uptake alert"
    text = payload.get("text") or title
    fields = message_fields(payload)
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": _truncate(title, 150), "emoji": False}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _truncate(esc(text), SLACK_MAX_TEXT)}},
    ]
    shown = fields[:SLACK_MAX_FIELDS]
    if len(fields) > SLACK_MAX_FIELDS:
        shown = fields[: SLACK_MAX_FIELDS - 1] + [("More", f"{len(fields) - SLACK_MAX_FIELDS + 1} more fields")]
    if shown:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": _truncate(f"*{esc(name)}*\n{esc(value)}", 2000)} for name, value in shown
                ],
            }
        )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": esc(_footer(payload))}]})
    return {
        "text": _truncate(esc(f"{title}: {text}" if text != title else title), SLACK_MAX_TEXT),
        "blocks": blocks,
    }


def _footer(payload: dict) -> str:
    pipeline = payload.get("pipeline") or {}
    return f"Uptake · {pipeline.get('name', 'alert')} · {payload.get('event', '')}".strip(" ·")


def _embed_size(embed: dict) -> int:
    size = len(embed.get("title", "")) + len(embed.get("description", ""))
    size += len((embed.get("footer") or {}).get("text", ""))
    return size + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))


def discord_body(payload: dict, *, mentions: bool = False) -> dict:
    """A Discord webhook body: one embed titled with the event, fields from the payload, within Discord's
    limits (≤ 25 fields, ≤ 6000 characters in all); what does not fit is summarised in a last field."""
    title = _truncate(payload.get("title") or payload.get("event") or "Uptake alert", DISCORD_MAX_TITLE)
    description = _truncate(payload.get("text") or "", DISCORD_MAX_DESCRIPTION)
    fields = [
        {
            "name": _truncate(name, DISCORD_MAX_FIELD_NAME) or "—",
            "value": _truncate(value, DISCORD_MAX_FIELD_VALUE) or "—",
            "inline": len(value) <= 40,
        }
        for name, value in message_fields(payload)
    ]
    omitted = 0
    if len(fields) > DISCORD_MAX_FIELDS:
        omitted = len(fields) - (DISCORD_MAX_FIELDS - 1)
        fields = fields[: DISCORD_MAX_FIELDS - 1]
    embed = {
        "title": title,
        "description": description,
        "fields": fields,
        "footer": {"text": _footer(payload)},
    }
    if payload.get("occurred_at"):
        embed["timestamp"] = payload["occurred_at"]
    # Room for the summary field ("… N more fields") that may be appended below.
    budget = DISCORD_MAX_TOTAL - 80
    while _embed_size(embed) > budget:
        excess = _embed_size(embed) - budget
        if len(embed["description"]) > 200:
            embed["description"] = _truncate(embed["description"], max(200, len(embed["description"]) - excess))
        elif embed["fields"]:
            embed["fields"].pop()
            omitted += 1
        else:  # pragma: no cover - title and footer alone are far below the limit
            break
    if omitted:
        fields.append(
            {
                "name": "More",
                "value": f"{omitted} more fields not shown; see the delivery log.",
                "inline": False,
            }
        )
    return {
        "username": "Uptake",
        "embeds": [embed],
        "allowed_mentions": dict(_MENTION_ALL) if mentions else dict(_MENTION_NONE),
    }


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, f"{timestamp}.{body}")."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def webhook_verify(
    *, secret: str, timestamp: str, body: bytes, signature: str, now: float, tolerance: int = 300
) -> bool:
    """What a receiver does: recompute the signature, compare in constant time, refuse stale timestamps."""
    try:
        fresh = abs(now - int(timestamp)) <= tolerance
    except ValueError:
        return False
    return fresh and hmac.compare_digest(webhook_signature(secret=secret, timestamp=timestamp, body=body), signature)


def webhook_request(payload: dict, *, secret: str, now: datetime) -> tuple[bytes, dict[str, str]]:
    """The signed body and headers of a generic webhook POST."""
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    timestamp = str(int(now.timestamp()))
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: webhook_signature(secret=secret, timestamp=timestamp, body=body),
    }
    return body, headers


def email_message(payload: dict) -> tuple[str, str]:
    """Subject and plain-text body of an e-mail alert."""
    title = payload.get("title") or payload.get("event") or "Uptake alert"
    lines = [payload.get("text") or title, ""]
    lines += [f"{name}: {value}" for name, value in message_fields(payload)]
    lines += ["", _footer(payload)]
    return f"[Uptake] {_truncate(title, 200)}", "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------
# Sending
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    ok: bool
    response_code: int | None = None
    # Worth another attempt (timeouts, connection errors, 5xx, 429); 4xx other than 429 are final.
    retryable: bool = False
    retry_after: float | None = None
    error: str = ""


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - now).total_seconds())


def _post(url: str, *, data: bytes, headers: dict[str, str], now: datetime) -> SendResult:
    headers = {"User-Agent": USER_AGENT, **headers}
    timeout = settings.UPTAKE_ALERT_HTTP_TIMEOUT_SECONDS
    try:
        # Checked again at every send (the address policy or DNS may have changed since the save), and the
        # connection goes to the address checked here.
        target = outbound_target(url)
    except OutboundUnresolved as exc:
        return SendResult(ok=False, retryable=True, error=f"connection failed: {exc.reason}")
    except OutboundRefused as exc:
        return SendResult(ok=False, retryable=False, error=f"refused: {exc.reason}")
    try:
        response = outbound_post(target, body=data, headers=headers, timeout=timeout)
    except urllib3.exceptions.NewConnectionError as exc:  # a subclass of ConnectTimeoutError in urllib3
        return SendResult(ok=False, retryable=True, error=f"connection failed: {exc.__class__.__name__}: {exc}"[:500])
    except urllib3.exceptions.TimeoutError:
        return SendResult(ok=False, retryable=True, error=f"timed out after {timeout}s")
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        return SendResult(ok=False, retryable=True, error=f"connection failed: {exc.__class__.__name__}: {exc}"[:500])
    code = response.status
    if 200 <= code < 300:
        return SendResult(ok=True, response_code=code)
    snippet = response.text[:300]
    if code == 429:
        return SendResult(
            ok=False,
            response_code=code,
            retryable=True,
            retry_after=parse_retry_after(response.headers.get("Retry-After"), now=now),
            error=f"HTTP 429 rate limited: {snippet}",
        )
    if 300 <= code < 400:
        # Redirects are never followed: a public URL could point the request inside.
        return SendResult(ok=False, response_code=code, error=f"HTTP {code}: redirects are not followed")
    return SendResult(ok=False, response_code=code, retryable=code >= 500, error=f"HTTP {code}: {snippet}")


def _json(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":"), default=str).encode()


def destination_send(*, destination: AlertDestination, payload: dict, now: datetime) -> SendResult:
    """Send one payload to one destination (one attempt, no retry here)."""
    kind = destination.type
    if kind == AlertDestination.Type.SLACK:
        body = _json(slack_body(payload, mentions=destination.mentions))
        return _post(destination.url, data=body, headers={"Content-Type": "application/json"}, now=now)
    if kind == AlertDestination.Type.DISCORD:
        body = _json(discord_body(payload, mentions=destination.mentions))
        return _post(destination.url, data=body, headers={"Content-Type": "application/json"}, now=now)
    if kind == AlertDestination.Type.WEBHOOK:
        body, headers = webhook_request(payload, secret=destination.secret, now=now)
        return _post(destination.url, data=body, headers=headers, now=now)
    if kind == AlertDestination.Type.EMAIL:
        subject, text = email_message(payload)
        recipients = [address.strip() for address in destination.to.split(",") if address.strip()]
        try:
            send_mail(subject, text, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False)
        except Exception as exc:  # noqa: BLE001 - any mail backend error is a failed, retryable attempt
            return SendResult(ok=False, retryable=True, error=f"e-mail failed: {exc.__class__.__name__}: {exc}"[:500])
        return SendResult(ok=True)
    return SendResult(ok=False, error=f"unknown destination type {kind!r}")
