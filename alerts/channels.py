"""Channels: the workspace's alert targets (validated, normalised, keyed by target) and their writes. A pipeline
names channels by id or describes them inline (`destinations`), which creates or updates the channel of that
target; either way one target is one channel, with one rate budget."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.utils import timezone

from accounts.models import Workspace
from core.errors import Conflict, DomainError

from .destinations import MASK, channel_target_shown, mask_url, url_unmask
from .models import AlertChannel, AlertDelivery, AlertPipelineChannel
from .outbound_hooks import channel_host_check, channel_url_check
from .telegram import telegram_is_group, telegram_max_per_minute

ChannelType = AlertChannel.Type

DEFAULT_RATE_LIMIT_PER_MINUTE = {
    ChannelType.DISCORD: 30,  # Discord webhooks allow about 30 messages a minute per channel
    ChannelType.SLACK: 60,  # Slack incoming webhooks: about one message a second
    ChannelType.WEBHOOK: 120,
    ChannelType.EMAIL: 30,
    ChannelType.TELEGRAM: 20,  # Telegram: 20 messages a minute to a group (and about one a second per chat)
    ChannelType.POSTGRES: 600,
}
MIN_WEBHOOK_SECRET = 16
SHORT_LABELS = {
    ChannelType.SLACK: "Slack",
    ChannelType.DISCORD: "Discord",
    ChannelType.WEBHOOK: "Webhook",
    ChannelType.EMAIL: "E-mail",
    ChannelType.TELEGRAM: "Telegram",
    ChannelType.POSTGRES: "PostgreSQL",
}
MAX_RATE_LIMIT = 10_000
CHANNEL_FIELDS = (
    "name",
    "type",
    "url",
    "to",
    "secret",
    "token",
    "chat_id",
    "table",
    "mentions",
    "rate_limit_per_minute",
)
# What channel_validate returns besides the name: the values a channel row stores.
STORED_FIELDS = (*CHANNEL_FIELDS[1:], "target_key")
# Which target fields each type takes; the others must be absent or empty.
_TARGET_FIELDS = {
    ChannelType.SLACK: {"url"},
    ChannelType.DISCORD: {"url"},
    ChannelType.WEBHOOK: {"url", "secret"},
    ChannelType.EMAIL: {"to"},
    ChannelType.TELEGRAM: {"token", "chat_id"},
    ChannelType.POSTGRES: {"url", "table"},
}
_SECRET_FIELDS = ("secret", "token")
TELEGRAM_TOKEN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{10,100}$")
TELEGRAM_CHAT = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$")
PG_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,62}"
PG_TABLE = re.compile(rf"^{PG_NAME}(\.{PG_NAME})?$")


def channel_target_key(
    *, type: str, url: str = "", to: str = "", token: str = "", chat_id: str = "", table: str = ""
) -> str:
    """sha256 of the type and normalised target: equal for two channels that reach the same place."""
    if type == ChannelType.EMAIL:
        target = ",".join(sorted(a.strip().lower() for a in to.split(",") if a.strip()))
    elif type == ChannelType.TELEGRAM:
        target = f"{token}|{chat_id}"
    elif type == ChannelType.POSTGRES:
        target = f"{url.strip()}|{table.lower()}"
    else:
        target = url.strip()
    return hashlib.sha256(f"{type}\n{target}".encode()).hexdigest()


def _err(message: str, *, code: str, field: str) -> DomainError:
    return DomainError(message, code=code, field=field)


def int_between(value: Any, *, field: str, low: int, high: int) -> int:
    """`value` when it is an integer from `low` to `high`; otherwise a DomainError naming `field`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _err(f"{field} must be an integer between {low} and {high}.", code="invalid_type", field=field)
    if not low <= value <= high:
        raise _err(f"{field} must be between {low} and {high}; got {value}.", code="out_of_range", field=field)
    return value


def _text(value: Any, *, field: str, max_length: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _err(f"{field} must be a string.", code="invalid_type", field=field)
    value = value.strip()
    if len(value) > max_length:
        raise _err(f"{field} is longer than {max_length} characters.", code="too_long", field=field)
    return value


def _email_to(value: Any, *, field: str) -> str:
    addresses = value if isinstance(value, list) else (value.split(",") if isinstance(value, str) else None)
    if not addresses or not all(isinstance(a, str) and a.strip() for a in addresses):
        raise _err(
            f"{field}.to is required for e-mail channels: one or more addresses.",
            code="missing_field",
            field=f"{field}.to",
        )
    for address in addresses:
        try:
            validate_email(address.strip())
        except DjangoValidationError:
            raise _err(
                f"{field}.to: {address.strip()!r} is not an e-mail address.", code="invalid_email", field=f"{field}.to"
            ) from None
    joined = ",".join(a.strip() for a in addresses)
    if len(joined) > 1000:
        raise _err(f"{field}.to is longer than 1000 characters.", code="too_long", field=f"{field}.to")
    return joined


def _http_url(value: Any, *, field: str, kind: str) -> str:
    url = _text(value, field=f"{field}.url", max_length=2000)
    if not url:
        raise _err(f"{field}.url is required for {kind} channels.", code="missing_field", field=f"{field}.url")
    try:
        URLValidator(schemes=["http", "https"])(url)
    except DjangoValidationError:
        raise _err(
            f"{field}.url must be an http(s) URL; got {mask_url(url, path=False)!r}.",
            code="invalid_url",
            field=f"{field}.url",
        ) from None
    channel_url_check(url, field=f"{field}.url")
    return url


def _postgres_url(value: Any, *, field: str) -> str:
    url = _text(value, field=f"{field}.url", max_length=2000)
    if not url:
        raise _err(
            f"{field}.url is required for postgres channels: the connection URL, "
            "postgresql://user:password@host:5432/database.",
            code="missing_field",
            field=f"{field}.url",
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _err(f"{field}.url is not a valid connection URL.", code="invalid_url", field=f"{field}.url") from None
    if parts.scheme not in ("postgres", "postgresql") or not parts.hostname or not parts.path.strip("/"):
        raise _err(
            f"{field}.url must be a postgresql://user:password@host[:port]/database URL with a host and a database.",
            code="invalid_url",
            field=f"{field}.url",
        )
    if parts.query:
        raise _err(
            f"{field}.url must not carry query options (host, hostaddr and the like are decided by Uptake).",
            code="invalid_url",
            field=f"{field}.url",
        )
    channel_host_check(parts.hostname, port or 5432, field=f"{field}.url")
    return url


def _secrets(spec: dict, kind: str, kept, field: str) -> dict[str, str]:
    out = {"secret": "", "token": ""}
    if kind == ChannelType.WEBHOOK:
        secret = kept("secret")
        if not isinstance(secret, str) or not MIN_WEBHOOK_SECRET <= len(secret) <= 200:
            raise _err(
                f"{field}.secret is required for webhook channels: {MIN_WEBHOOK_SECRET} to 200 characters, used to "
                "sign each body with HMAC-SHA256.",
                code="invalid_secret",
                field=f"{field}.secret",
            )
        out["secret"] = secret
    if kind == ChannelType.TELEGRAM:
        token = kept("token")
        if not isinstance(token, str) or not TELEGRAM_TOKEN.match(token.strip()):
            raise _err(
                f"{field}.token is required for telegram channels: the bot token BotFather gave, like 123456789:AAH…",
                code="invalid_token",
                field=f"{field}.token",
            )
        out["token"] = token.strip()
    return out


def _target(spec: dict, kind: str, kept, field: str) -> dict[str, str]:
    out = {"url": "", "to": "", "chat_id": "", "table": ""}
    if kind == ChannelType.EMAIL:
        out["to"] = _email_to(kept("to"), field=field)
    elif kind == ChannelType.TELEGRAM:
        chat = kept("chat_id")
        chat = str(chat) if isinstance(chat, int) and not isinstance(chat, bool) else chat
        if not isinstance(chat, str) or not TELEGRAM_CHAT.match(chat.strip()):
            raise _err(
                f"{field}.chat_id is required for telegram channels: a chat id like -1001234567890 or a public "
                "@channelname.",
                code="invalid_chat_id",
                field=f"{field}.chat_id",
            )
        out["chat_id"] = chat.strip()
    elif kind == ChannelType.POSTGRES:
        out["url"] = _postgres_url(kept("url"), field=field)
        table = _text(kept("table"), field=f"{field}.table", max_length=130)
        if not PG_TABLE.match(table):
            raise _err(
                f"{field}.table is required for postgres channels: a table name like uptake_alerts or "
                "analytics.uptake_alerts (letters, digits and _, at most 63 each).",
                code="invalid_table",
                field=f"{field}.table",
            )
        out["table"] = table
    else:
        out["url"] = _http_url(kept("url"), field=field, kind=kind)
    return out


def _kept(name: str, *, spec: dict, previous: AlertChannel | None, kind: str, field: str) -> Any:
    """The value of `name` to validate: the stored one when left out or sent back masked (a URL edited around
    its masked credentials keeps them); a masked value with nothing stored behind it is refused."""
    value = spec.get(name)
    same_kind = previous is not None and previous.type == kind
    if same_kind and value is None:
        return getattr(previous, name)
    if not (isinstance(value, str) and MASK in value):
        return value
    stored = getattr(previous, name) if same_kind else ""
    if name == "url" and stored:
        value = url_unmask(value, stored, path=kind in (ChannelType.SLACK, ChannelType.DISCORD))
    elif stored:
        value = stored
    else:
        value = None
    if value is None:
        raise _err(
            f"{field}.{name} still holds a masked part ({MASK}): send back the value as shown to keep the stored one, "
            f"or type the whole {name}.",
            code="masked_value",
            field=f"{field}.{name}",
        )
    return value


def _rate_limit(spec: dict, *, kind: str, chat_id: str, previous: AlertChannel | None, field: str) -> int:
    """The channel's budget a minute: as given, else as stored, else the type's default; never more than a
    Telegram chat accepts (20 a minute in a group, 60 in a private chat)."""
    ceiling = telegram_max_per_minute(chat_id) if kind == ChannelType.TELEGRAM else MAX_RATE_LIMIT
    if "rate_limit_per_minute" not in spec:
        stored = previous.rate_limit_per_minute if previous and previous.type == kind else None
        return min(stored or DEFAULT_RATE_LIMIT_PER_MINUTE[kind], ceiling)
    limit = int_between(
        spec["rate_limit_per_minute"], field=f"{field}.rate_limit_per_minute", low=1, high=MAX_RATE_LIMIT
    )
    if limit > ceiling:
        where = "a group or channel" if telegram_is_group(chat_id) else "a private chat"
        raise _err(
            f"{field}.rate_limit_per_minute: Telegram accepts at most {ceiling} messages a minute in {where}; "
            f"got {limit}.",
            code="out_of_range",
            field=f"{field}.rate_limit_per_minute",
        )
    return limit


def channel_validate(spec: Any, *, field: str, previous: AlertChannel | None = None) -> dict:
    """Check a channel body (`{"type", "url"?, "to"?, "secret"?, "token"?, "chat_id"?, "table"?, "mentions"?,
    "rate_limit_per_minute"?, "name"?}`) and return its normalised values (name may be None), or raise naming
    the field. A value shown back masked (`••••abcd`) or left out keeps what `previous` stores."""
    if not isinstance(spec, dict):
        raise _err(f"{field} must be an object.", code="invalid_type", field=field)
    kind = spec.get("type", previous.type if previous else None)
    if kind not in ChannelType.values:
        raise _err(
            f"{field}.type must be one of {', '.join(ChannelType.values)}; got {kind!r}.",
            code="invalid_choice",
            field=f"{field}.type",
        )
    for name in ("url", "to", "secret", "token", "chat_id", "table"):
        if spec.get(name) not in (None, "", []) and name not in _TARGET_FIELDS[kind]:
            uses = " and ".join(sorted(_TARGET_FIELDS[kind]))
            raise _err(
                f"{field}.{name} is not used by {kind} channels (they take {uses}).",
                code="unknown_field",
                field=f"{field}.{name}",
            )

    kept = functools.partial(_kept, spec=spec, previous=previous, kind=kind, field=field)

    values: dict[str, Any] = {"type": kind, **_target(spec, kind, kept, field), **_secrets(spec, kind, kept, field)}
    mentions = spec.get("mentions", previous.mentions if previous else False)
    if not isinstance(mentions, bool):
        raise _err(f"{field}.mentions must be true or false.", code="invalid_type", field=f"{field}.mentions")
    values["mentions"] = mentions
    values["rate_limit_per_minute"] = _rate_limit(
        spec, kind=kind, chat_id=values["chat_id"], previous=previous, field=field
    )
    name = spec.get("name")
    if name is not None:
        if not isinstance(name, str) or not name.strip():
            raise _err(f"{field}.name must be a non-empty string.", code="invalid_type", field=f"{field}.name")
        if len(name.strip()) > 200:
            raise _err(f"{field}.name is longer than 200 characters.", code="too_long", field=f"{field}.name")
        name = name.strip()
    values["name"] = name
    values["target_key"] = channel_target_key(
        type=kind,
        url=values["url"],
        to=values["to"],
        token=values["token"],
        chat_id=values["chat_id"],
        table=values["table"],
    )
    return values


def _default_name(workspace_id: int, values: dict) -> str:
    label = SHORT_LABELS[values["type"]]
    target = channel_target_shown(type=values["type"], **{k: values[k] for k in ("url", "to", "chat_id", "table")})
    base = f"{label} {target}"
    base = base[:180]
    taken = set(
        AlertChannel.objects.filter(workspace_id=workspace_id, name__startswith=base).values_list("name", flat=True)
    )
    name, n = base, 2
    while name in taken:
        name, n = f"{base} ({n})", n + 1
    return name


def save_or_conflict(obj: Model, conflicts: dict[str, Callable[[], Conflict]]) -> None:
    """Save `obj`; a unique constraint it breaks (named in `conflicts`) is answered with that Conflict."""
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        for constraint, conflict in conflicts.items():
            if constraint in str(exc):
                raise conflict() from None
        raise


def name_taken(noun: str, name: str) -> Conflict:
    return Conflict(f"A {noun} named {name!r} already exists in this workspace.", code="duplicate_name", field="name")


def _target_taken(channel: AlertChannel) -> Conflict:
    other = AlertChannel.objects.filter(workspace_id=channel.workspace_id, target_key=channel.target_key).first()
    return Conflict(
        f"Channel {other.name!r} (id {other.pk}) already posts to this target; use it instead."
        if other
        else "Another channel already posts to this target.",
        code="duplicate_target",
        field="url" if channel.url else "to" if channel.to else "chat_id",
    )


def _save(channel: AlertChannel) -> AlertChannel:
    save_or_conflict(
        channel,
        {
            "alerts_alertchannel_unique_name": lambda: name_taken("channel", channel.name),
            "alerts_alertchannel_unique_target": lambda: _target_taken(channel),
        },
    )
    return channel


def _apply(channel: AlertChannel, values: dict) -> None:
    for key in STORED_FIELDS:
        setattr(channel, key, values[key])
    if values.get("name"):
        channel.name = values["name"]


@transaction.atomic
def channel_create(*, workspace: Workspace, spec: dict, field: str = "channel") -> AlertChannel:
    """Create a channel; its name is required over REST (`field` prefixes the names in error messages)."""
    values = channel_validate(spec, field=field)
    if values["name"] is None:
        raise _err("name is required: a non-empty string.", code="missing_field", field="name")
    channel = AlertChannel(workspace=workspace)
    _apply(channel, values)
    return _save(channel)


@transaction.atomic
def channel_update(*, channel: AlertChannel, spec: dict, field: str = "channel") -> AlertChannel:
    """Change a channel (what `spec` leaves out, or shows masked, stays as stored)."""
    channel = AlertChannel.objects.select_for_update().get(pk=channel.pk)
    values = channel_validate(spec, field=field, previous=channel)
    _apply(channel, values)
    return _save(channel)


@transaction.atomic
def channel_delete(*, channel: AlertChannel) -> None:
    """Delete a channel and its delivery log; refused while a pipeline posts to it."""
    names = list(
        AlertPipelineChannel.objects.filter(channel=channel)
        .order_by("pipeline__name")
        .values_list("pipeline__name", flat=True)
    )
    if names:
        raise Conflict(
            f"Channel {channel.name!r} is used by the pipeline(s) {', '.join(repr(n) for n in names)}; remove it from "
            "them first.",
            code="channel_in_use",
            field="id",
        )
    channel.delete()


def channel_test_send(*, channel: AlertChannel, now: Any = None) -> AlertDelivery:
    """Queue a test message to a channel (sent after commit, like any alert, and counted in its budget)."""
    from .delivery import deliveries_enqueue

    now = now or timezone.now()
    payload = {
        "event": "test",
        "title": f"Test message to '{channel.name}'",
        "text": "If you can read this, Uptake can deliver alerts here.",
        "pipeline": None,
        "account": None,
        "feature": None,
        "details": {"channel": channel.name},
        "occurred_at": now.isoformat(),
    }
    with transaction.atomic():
        delivery = AlertDelivery.objects.create(
            workspace_id=channel.workspace_id,
            pipeline=None,
            channel=channel,
            kind=AlertDelivery.Kind.TEST,
            payload=payload,
            created_at=now,
            next_attempt_at=now,
        )
        transaction.on_commit(lambda: deliveries_enqueue([delivery.pk]))
    return delivery


def pipeline_channels_resolve(
    *, workspace_id: int, channel_ids: Any, destinations: Any, current: dict[int, AlertChannel], max_channels: int
) -> list[AlertChannel | dict]:
    """The pipeline's channels in order: existing channels named by id (`channels`), then inline `destinations`
    as validated values (an entry with an `id` updates that channel of the pipeline; one without creates the
    channel of its target, or updates the workspace's channel for that target). Nothing is written here."""
    out: list[AlertChannel | dict] = []
    if channel_ids is not None:
        if not isinstance(channel_ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in channel_ids
        ):
            raise _err("channels must be a list of channel ids.", code="invalid_type", field="channels")
        found = {c.pk: c for c in AlertChannel.objects.filter(workspace_id=workspace_id, pk__in=channel_ids)}
        for index, channel_id in enumerate(channel_ids):
            if channel_id not in found:
                raise _err(
                    f"channels[{index}]: no channel {channel_id} in this workspace.",
                    code="not_found",
                    field=f"channels[{index}]",
                )
            out.append(found[channel_id])
    if destinations is not None:
        if not isinstance(destinations, list):
            raise _err("destinations must be a list.", code="invalid_type", field="destinations")
        for index, spec in enumerate(destinations):
            field = f"destinations[{index}]"
            if isinstance(spec, dict):
                unknown = sorted(set(spec) - {"id", *CHANNEL_FIELDS})
                if unknown:
                    known = ", ".join(sorted({"id", *CHANNEL_FIELDS}))
                    raise _err(
                        f"{field}.{unknown[0]} is not a destination field ({known}).",
                        code="unknown_field",
                        field=f"{field}.{unknown[0]}",
                    )
            previous = None
            if isinstance(spec, dict) and spec.get("id") is not None:
                previous = current.get(spec["id"]) if isinstance(spec["id"], int) else None
                if previous is None:
                    raise _err(
                        f"{field}.id {spec['id']!r} is not a channel of this pipeline.",
                        code="not_found",
                        field=f"{field}.id",
                    )
            values = channel_validate(spec, field=field, previous=previous)
            values["id"] = previous.pk if previous else None
            out.append(values)
    if not out:
        if channel_ids is None:
            raise _err(
                "destinations: at least one destination is required (or channels: ids of the workspace's channels).",
                code="missing_field",
                field="destinations",
            )
        raise _err(
            "channels: at least one channel is required (channel ids, or destinations described inline).",
            code="missing_field",
            field="channels",
        )
    if len(out) > max_channels:
        raise _err(f"channels: at most {max_channels} per pipeline.", code="too_many", field="channels")
    return out


def pipeline_channels_save(*, workspace_id: int, resolved: list[AlertChannel | dict]) -> list[AlertChannel]:
    """Write the inline channels `pipeline_channels_resolve` validated; return every channel in order."""
    channels: list[AlertChannel] = []
    for item in resolved:
        if isinstance(item, AlertChannel):
            channel = item
        else:
            channel = None
            if item["id"]:
                channel = AlertChannel.objects.select_for_update().get(pk=item["id"])
            else:
                channel = (
                    AlertChannel.objects.select_for_update()
                    .filter(workspace_id=workspace_id, target_key=item["target_key"])
                    .first()
                )
            if channel is None:
                channel = AlertChannel(
                    workspace_id=workspace_id, name=item["name"] or _default_name(workspace_id, item)
                )
            _apply(channel, item)
            _save(channel)
        if channel.pk not in {c.pk for c in channels}:
            channels.append(channel)
    return channels
