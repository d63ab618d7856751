"""Destination adapters: how one alert payload becomes a Slack, Discord, webhook, e-mail or Telegram message or a
PostgreSQL row, and the send.

An alert payload (stored in `AlertDelivery.payload`) is a plain dict:
`{"event", "title", "text", "pipeline": {"id", "name"}, "account": {...} | None, "feature": {...} | None,
"details": {...}, "occurred_at"}`. Builders here are pure functions of that dict; `destination_send` does I/O.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
from dataclasses import dataclass, replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urlsplit

import psycopg
import urllib3
from django.conf import settings
from django.core.mail import send_mail

from core.outbound import OutboundRefused, OutboundUnresolved, outbound_post, outbound_target

from .message_templates import escape_discord, escape_slack, template_render
from .models import AlertChannel
from .outbound_hooks import HostRefused, HostUnresolved
from .postgres_sink import postgres_write
from .telegram import telegram_body, telegram_retry_after, telegram_send_url

DISCORD_MAX_FIELDS = 25
DISCORD_MAX_TOTAL = 6000
DISCORD_MAX_TITLE = 256
DISCORD_MAX_DESCRIPTION = 4096
DISCORD_MAX_FIELD_NAME = 256
DISCORD_MAX_FIELD_VALUE = 1024
DISCORD_MAX_FOOTER = 2048
SLACK_FIELDS_PER_SECTION = 10  # Slack's limit per section block
SLACK_MAX_FIELDS = 40  # in four sections; the rest is summarised in a last "More" field
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


# A payload read back from jsonb has lost its key order: the details are shown in this one (other keys after them
# by name, the event's properties last, by name).
_DETAIL_ORDER = {
    key: rank
    for rank, key in enumerate(
        ("quantity", "occurred_at", "event_id", "user", "threshold_percent", "used", "limit", "period_start")
        + ("resets_at", "current", "prior", "drop_percent", "days", "last_used_on")
    )
}


def _detail_rank(item: tuple[str, object]) -> tuple[bool, int, str]:
    key = item[0]
    return key == "properties", _DETAIL_ORDER.get(key, len(_DETAIL_ORDER)), key


def _flattened(data: dict, prefix: str = "") -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for key, value in sorted(data.items()):
        if isinstance(value, dict) and value:
            out += _flattened(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def message_fields(payload: dict) -> list[tuple[str, str]]:
    """The (name, value) pairs every destination shows, the alert's payload: the enrichment (account, feature),
    then the trigger's details, each event property a field of its own under its own name (nested ones dotted)."""
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
    for key, value in sorted((payload.get("details") or {}).items(), key=_detail_rank):
        if key == "properties" and isinstance(value, dict):
            fields += [(name, _display(item)) for name, item in _flattened(value)]
        else:
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
    """A URL fit to show back, the one rule for every URL a channel stores: its credentials (`user:password@`,
    the user name as much as the password) always masked, and with `path` (Slack and Discord webhook URLs carry
    their token in the path) only scheme, host and the last 4 characters. `postgresql://app:pw@db:5432/dw` →
    `postgresql://••••@db:5432/dw`."""
    match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)([^/?#]*)(.*)$", url)
    if not match:
        return url
    scheme, authority, rest = match.groups()
    if "@" in authority:
        authority = MASK + "@" + authority.rsplit("@", 1)[1]
    if not path or rest in ("", "/"):
        return f"{scheme}{authority}{rest}"
    return f"{scheme}{authority}/{MASK}{url[-4:]}"


def mask_url_in(text: str, url: str, *, path: bool = False) -> str:
    """`text` (an error message, a log line) with `url` shown as mask_url shows it, and its user name and password
    (and with `path`, its path) masked wherever they stand alone (a driver's `authentication failed for user
    "app"`)."""
    parts = urlsplit(url)
    text = text.replace(url, mask_url(url, path=path))
    secrets = {unquote(parts.password or ""), unquote(parts.username or "")} - {""}
    if path and len(parts.path) > 1:
        secrets.add(parts.path)
    for secret in sorted(secrets, key=len, reverse=True):
        text = re.sub(rf"(?<![\w.-]){re.escape(secret)}(?![\w.-])", MASK, text)
    return text


def url_unmask(shown: str, stored: str, *, path: bool) -> str | None:
    """The URL meant by `shown`, a URL sent back as mask_url showed `stored`: `stored` when unchanged, the new URL
    with the stored credentials when only the part after `••••@` changed; None when a masked part remains that
    cannot be restored (the whole URL must then be typed)."""
    shown = shown.strip()
    if shown == mask_url(stored, path=path):
        return stored
    new, old = urlsplit(shown), urlsplit(stored)
    if new.netloc.startswith(MASK + "@") and "@" in old.netloc:
        restored = new._replace(netloc=old.netloc.rsplit("@", 1)[0] + "@" + new.netloc.split("@", 1)[1]).geturl()
        return None if MASK in restored else restored
    return None


def _masks_path(type: str) -> bool:
    return type in (AlertChannel.Type.SLACK, AlertChannel.Type.DISCORD)


def channel_target_shown(*, type: str, url: str = "", to: str = "", chat_id: str = "", table: str = "") -> str:
    """Where a channel posts, fit to show back: tokens, secrets and credentials masked."""
    if type == AlertChannel.Type.EMAIL:
        return to
    if type == AlertChannel.Type.TELEGRAM:
        return f"chat {chat_id}"
    if type == AlertChannel.Type.POSTGRES:
        return f"{mask_url(url, path=False)} · {table}"
    return mask_url(url, path=_masks_path(type))


def channel_url_shown(channel: AlertChannel) -> str | None:
    """The channel's URL as the API, the admin and the dashboard show it (mask_url)."""
    if not channel.url:
        return None
    return mask_url(channel.url, path=_masks_path(channel.type))


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
    # A template's text is the author's mrkdwn; only its placeholder values are escaped.
    section = _templated(payload, "body", escape_slack) or esc(text)
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": _truncate(title, 150), "emoji": False}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _truncate(section, SLACK_MAX_TEXT)}},
    ]
    shown = fields[:SLACK_MAX_FIELDS]
    if len(fields) > SLACK_MAX_FIELDS:
        shown = fields[: SLACK_MAX_FIELDS - 1] + [("More", f"{len(fields) - SLACK_MAX_FIELDS + 1} more fields")]
    for start in range(0, len(shown), SLACK_FIELDS_PER_SECTION):
        section_fields = shown[start : start + SLACK_FIELDS_PER_SECTION]
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": _truncate(f"*{esc(name)}*\n{esc(value)}", 2000)}
                    for name, value in section_fields
                ],
            }
        )
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": esc(_footer(payload))}]})
    return {
        "text": _truncate(esc(f"{title}: {text}" if text != title else title), SLACK_MAX_TEXT),
        "blocks": blocks,
    }


def _templated(payload: dict, part: str, escape) -> str | None:
    """The pipeline template's `part` rendered with values escaped for a format, or None without one."""
    template = payload.get("template") or {}
    if not (template.get(part) or "").strip():
        return None
    return template_render(template[part], payload.get("values") or {}, escape=escape)


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
    title = (
        _templated(payload, "title", escape_discord) or payload.get("title") or payload.get("event") or "Uptake alert"
    )
    title = _truncate(title, DISCORD_MAX_TITLE)
    description = _truncate(
        _templated(payload, "body", escape_discord) or payload.get("text") or "", DISCORD_MAX_DESCRIPTION
    )
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


def email_message(payload: dict) -> tuple[str, str, str]:
    """Subject, plain-text body and HTML body (every text escaped) of an e-mail alert."""
    title = payload.get("title") or payload.get("event") or "Uptake alert"
    text = payload.get("text") or title
    fields = message_fields(payload)
    lines = [text, ""] + [f"{name}: {value}" for name, value in fields] + ["", _footer(payload)]
    esc = html.escape
    rows = "".join(f'<tr><th align="left">{esc(n)}</th><td>{esc(v)}</td></tr>' for n, v in fields)
    html_body = (
        f"<h2>{esc(title)}</h2><p>{esc(text).replace(chr(10), '<br>')}</p>"
        f"<table>{rows}</table><p><small>{esc(_footer(payload))}</small></p>"
    )
    # The subject is the title alone; a line break (from an event property) would be a header injection.
    return _truncate(" ".join(title.split()), 200), "\n".join(lines), html_body


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


def _telegram_send(channel: AlertChannel, payload: dict, now: datetime) -> SendResult:
    title = payload.get("title") or payload.get("event") or "Uptake alert"
    lines = [payload.get("text") or ""] if payload.get("text") and payload.get("text") != title else []
    lines += [f"{name}: {value}" for name, value in message_fields(payload)]
    body = telegram_body(chat_id=channel.chat_id, title=title, lines=lines, mentions=channel.mentions)
    result = _post(
        telegram_send_url(channel.token), data=_json(body), headers={"Content-Type": "application/json"}, now=now
    )
    if result.response_code == 429 and result.retry_after is None:
        result = replace(result, retry_after=telegram_retry_after(result.error.split(": ", 1)[-1]))
    return result


def _postgres_send(channel: AlertChannel, payload: dict, delivery_id: int) -> SendResult:
    try:
        postgres_write(url=channel.url, table=channel.table, delivery_id=delivery_id, payload=payload)
    except HostUnresolved as exc:
        return SendResult(ok=False, retryable=True, error=f"connection failed: {exc}")
    except HostRefused as exc:
        return SendResult(ok=False, retryable=False, error=f"refused: {exc}")
    except psycopg.OperationalError as exc:
        # Connection refused, timeouts, server shutting down: worth another attempt, like an HTTP 5xx. (The
        # driver's words may name the user: destination_send masks them before anything is stored.)
        return SendResult(ok=False, retryable=True, error=f"connection failed: {exc}")
    except psycopg.Error as exc:
        # Permission denied, a table of another shape: the user must act; retrying would not help.
        return SendResult(ok=False, retryable=False, error=f"PostgreSQL refused: {exc.__class__.__name__}: {exc}")
    return SendResult(ok=True)


def destination_send(*, channel: AlertChannel, payload: dict, now: datetime, delivery_id: int) -> SendResult:
    """Send one payload to one channel (one attempt, no retry here). The error it reports, which the delivery log
    keeps, never shows the channel's credentials, URL token, bot token or signing secret."""
    result = _send(channel=channel, payload=payload, now=now, delivery_id=delivery_id)
    if not result.error:
        return result
    error = mask_url_in(result.error, channel.url, path=_masks_path(channel.type)) if channel.url else result.error
    for secret in (channel.token, channel.secret):
        error = error.replace(secret, MASK) if secret else error
    return replace(result, error=error[:500])


def _send(*, channel: AlertChannel, payload: dict, now: datetime, delivery_id: int) -> SendResult:
    kind = channel.type
    if kind == AlertChannel.Type.SLACK:
        body = _json(slack_body(payload, mentions=channel.mentions))
        return _post(channel.url, data=body, headers={"Content-Type": "application/json"}, now=now)
    if kind == AlertChannel.Type.DISCORD:
        body = _json(discord_body(payload, mentions=channel.mentions))
        return _post(channel.url, data=body, headers={"Content-Type": "application/json"}, now=now)
    if kind == AlertChannel.Type.WEBHOOK:
        body, headers = webhook_request(payload, secret=channel.secret, now=now)
        return _post(channel.url, data=body, headers=headers, now=now)
    if kind == AlertChannel.Type.TELEGRAM:
        return _telegram_send(channel, payload, now)
    if kind == AlertChannel.Type.POSTGRES:
        return _postgres_send(channel, payload, delivery_id)
    if kind == AlertChannel.Type.EMAIL:
        subject, text, html_text = email_message(payload)
        recipients = [address.strip() for address in channel.to.split(",") if address.strip()]
        try:
            send_mail(
                subject, text, settings.DEFAULT_FROM_EMAIL, recipients, fail_silently=False, html_message=html_text
            )
        except Exception as exc:  # noqa: BLE001 - any mail backend error is a failed, retryable attempt
            return SendResult(ok=False, retryable=True, error=f"e-mail failed: {exc.__class__.__name__}: {exc}"[:500])
        return SendResult(ok=True)
    return SendResult(ok=False, error=f"unknown channel type {kind!r}")
