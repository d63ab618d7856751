"""The Segment HTTP tracking API's messages mapped onto Uptake's ingestion (the views: segment_api.py): `track`
becomes a usage event through `events_ingest`; `identify`, `group` and `alias` are upserts through
accounts.services (SegmentUser keeps the workspace-wide user, its traits and its last group); `page` and `screen`
are counted. A message that cannot be used is recorded as an IngestionProblem. The field mapping is README's
"Drop-in ingestion" section."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DataError, connection, transaction

from accounts.models import Workspace
from accounts.services import account_upsert, end_user_upsert
from core.body import BodyError
from core.errors import DomainError
from core.text import DuplicateKeyError, echo, json_loads, json_raw_decode, json_text_problem, text_problem
from core.unset import UNSET

from .models import IngestionProblem, SegmentMapping, SegmentUser
from .problems import Problem, ingestion_problems_record
from .services import events_ingest
from .validation import iso_timestamp_parse, json_body_errors

MESSAGE_TYPES = ("track", "identify", "group", "page", "screen", "alias")
IGNORED_TYPES = ("page", "screen")


class Reason:
    """Stable reason codes of ingestion problems (documented in README)."""

    INVALID_MESSAGE = "invalid_message"
    MISSING_USER = "missing_user"
    MISSING_EVENT = "missing_event"
    MISSING_GROUP_ID = "missing_group_id"
    NO_ACCOUNT = "no_account"
    INVALID_TRAIT = "invalid_trait"
    # … and every rejection code of events_ingest (too_old, feature_cap_reached, hierarchy_conflict, …).


def segment_body_parse(raw: bytes, *, endpoint: str, max_message_bytes: int) -> tuple[list[dict], dict]:
    """The messages of a request body and the body itself; BodyError (400) when the body is not a JSON object,
    a batch is not a list of objects, or a message is over `max_message_bytes`. A message's size is its bytes
    in the body as sent (for the official clients, exactly what they measured before sending it). Nothing is
    stored for a refused body."""
    if not raw.strip():
        raise BodyError("The body is empty: send a JSON object.", code="invalid_body")
    with json_body_errors():
        text = raw.decode("utf-8")
        if endpoint == "batch":
            body, sizes = _scan_batch(text)
        else:
            body = json_loads(text)
            sizes = [len(raw)]
    if not isinstance(body, dict):
        raise BodyError(f"The body must be a JSON object, not a JSON {type(body).__name__}.", code="invalid_body")
    if endpoint == "batch":
        messages = body.get("batch")
        if not isinstance(messages, list):
            raise BodyError("'batch' must be a list of message objects.", code="invalid_body")
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                raise BodyError(f"Message at index {index} of 'batch' is not an object.", code="invalid_body")
    else:
        messages = [{**body, "type": endpoint}]
    # The write key is a credential: it is read from the body (segment_api), never kept with a message (an
    # ingestion problem's payload excerpt is shown on the dashboard).
    messages = [_without_write_key(message) for message in messages]
    for index, size in enumerate(sizes):
        if size > max_message_bytes:
            raise BodyError(
                f"Message at index {index} is {size} bytes; the limit is {max_message_bytes} bytes per message.",
                code="message_too_large",
            )
    return messages, body


def _without_write_key(message: dict) -> dict:
    return {name: value for name, value in message.items() if name != "writeKey"} if "writeKey" in message else message


_WHITESPACE = " \t\n\r"


def _scan_batch(text: str) -> tuple[object, list[int]]:
    """json_loads(text), and the size in bytes of each element of its top-level "batch" list as written in the
    text, in one pass (a raw decode per value). Raises ValueError as json_loads does (a key twice included)."""
    i = _skip(text, 0)
    if not text.startswith("{", i):
        value = json_loads(text)  # not an object: json_loads gives the error or the value to refuse
        return value, []
    body: dict = {}
    sizes: list[int] = []
    i = _skip(text, i + 1)
    if text.startswith("}", i):
        return _end(text, i + 1, body, sizes)
    while True:
        key, i = json_raw_decode(text, i)
        if not isinstance(key, str):
            raise ValueError(f"Expecting a property name at char {i}")
        i = _skip(text, i)
        if not text.startswith(":", i):
            raise ValueError(f"Expecting ':' delimiter at char {i}")
        i = _skip(text, i + 1)
        if key in body:
            raise DuplicateKeyError(key)
        if key == "batch" and text.startswith("[", i):
            body[key], sizes, i = _scan_list(text, i)
        else:
            body[key], i = json_raw_decode(text, i)
        i = _skip(text, i)
        if text.startswith("}", i):
            return _end(text, i + 1, body, sizes)
        if not text.startswith(",", i):
            raise ValueError(f"Expecting ',' delimiter at char {i}")
        i = _skip(text, i + 1)


def _scan_list(text: str, i: int) -> tuple[list, list[int], int]:
    items: list = []
    sizes: list[int] = []
    i = _skip(text, i + 1)
    if text.startswith("]", i):
        return items, sizes, i + 1
    while True:
        item, end = json_raw_decode(text, i)
        items.append(item)
        # Characters are bytes unless the message has non-ASCII text (then count its UTF-8 bytes).
        span = end - i
        sizes.append(span if text[i:end].isascii() else len(text[i:end].encode()))
        i = _skip(text, end)
        if text.startswith("]", i):
            return items, sizes, i + 1
        if not text.startswith(",", i):
            raise ValueError(f"Expecting ',' delimiter at char {i}")
        i = _skip(text, i + 1)


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WHITESPACE:
        i += 1
    return i


def _end(text: str, i: int, body: dict, sizes: list[int]) -> tuple[dict, list[int]]:
    if _skip(text, i) != len(text):
        raise ValueError(f"Extra data at char {i}")
    return body, sizes


@dataclass
class SegmentResult:
    """What a request's messages became (for tests and logs; the client is answered {"success": true})."""

    tracked: int = 0
    duplicates: int = 0
    identified: int = 0
    grouped: int = 0
    aliased: int = 0
    ignored: int = 0
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class Mapping:
    feature_property: str = "feature_id"
    module_property: str = "module_id"
    product_property: str = "product_id"
    quantity_property: str = "quantity"
    account_property: str = "account_id"
    plan_trait: str = "plan"
    owner_email_trait: str = "owner_email"


# Every request reads its workspace's mapping: kept in-process this long (an admin change is seen within it).
MAPPING_CACHE_SECONDS = 5.0
_MAPPING_CACHE: dict[int, tuple[float, Mapping]] = {}


def segment_mapping_get(*, workspace: Workspace) -> Mapping:
    """The workspace's property and trait names (the defaults when it has no SegmentMapping)."""
    now = time.monotonic()
    cached = _MAPPING_CACHE.get(workspace.pk)
    if cached is not None and cached[0] > now:
        return cached[1]
    row = SegmentMapping.objects.filter(workspace=workspace).first()
    mapping = (
        Mapping() if row is None else Mapping(**{name: getattr(row, name) for name in Mapping.__dataclass_fields__})
    )
    _MAPPING_CACHE[workspace.pk] = (now + MAPPING_CACHE_SECONDS, mapping)
    return mapping


def segment_mapping_cache_forget() -> None:
    """Drop this process's cached mappings (after a change, so this process sees it at once)."""
    _MAPPING_CACHE.clear()


def segment_messages_ingest(
    *, workspace: Workspace, messages: list[dict], sent_at: object, received_at: datetime
) -> SegmentResult:
    """Apply a request's messages in order: identify, group and alias as upserts, tracks as one batch of
    events; record every message that could not be used as an IngestionProblem."""
    mapping = segment_mapping_get(workspace=workspace)
    result = SegmentResult()
    events: list[dict] = []
    origins: list[dict] = []  # the message of each event
    ignored: dict[str, int] = {}
    # The account each track user was last grouped with: stored, then as this batch's group calls move it.
    grouped = _last_groups(workspace=workspace, messages=messages)
    for message in messages:
        kind = message.get("type")
        user = _user_key(message)
        if kind == "track":
            event = _track_event(message, mapping=mapping, user=user, grouped=grouped, sent_at=sent_at, now=received_at)
            if isinstance(event, Problem):
                result.problems.append(event)
            else:
                events.append(event)
                origins.append(message)
        elif kind in IGNORED_TYPES:
            ignored[kind] = ignored.get(kind, 0) + 1
        elif kind in ("identify", "group", "alias"):
            applied, problem = _apply(kind, message, workspace=workspace, mapping=mapping, user=user, now=received_at)
            if problem is not None:
                result.problems.append(problem)
            if not applied:
                continue
            if kind == "group":
                result.grouped += 1
                if user is not None:
                    grouped[user] = str(message["groupId"]).strip()
            elif kind == "identify":
                result.identified += 1
            else:
                result.aliased += 1
        else:
            result.problems.append(
                _problem(
                    Reason.INVALID_MESSAGE,
                    f"Unknown message type {str(kind)[:40]!r}: use one of {', '.join(MESSAGE_TYPES)}.",
                    message,
                )
            )
    if events:
        ingested = events_ingest(workspace=workspace, payload=events, now=received_at)
        result.tracked = ingested.accepted
        result.duplicates = ingested.duplicates
        result.ignored += ingested.ignored
        for rejection in ingested.rejected:
            result.problems.append(_problem(rejection.code, rejection.message, origins[rejection.index]))
    if ignored:
        _ignored_count(workspace=workspace, counts=ignored, day=received_at.astimezone(UTC).date())
        result.ignored += sum(ignored.values())
    ingestion_problems_record(
        workspace=workspace, problems=result.problems, source=IngestionProblem.Source.SEGMENT, now=received_at
    )
    return result


def _problem(reason: str, text: str, message: dict) -> Problem:
    return Problem(
        reason=reason,
        message=text,
        message_type=str(message.get("type") or ""),
        message_id=message.get("messageId"),
        payload=message,
    )


def _user_key(message: dict) -> str | None:
    """`userId`, else `anonymousId`, as text (clients may send numbers); None when neither is usable."""
    for name in ("userId", "anonymousId"):
        value = message.get(name)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float | str) and str(value).strip():
            return str(value).strip()
    return None


def _context_group(message: dict) -> str | None:
    context = message.get("context")
    value = context.get("groupId") if isinstance(context, dict) else None
    if isinstance(value, int | str) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()
    return None


def _last_groups(*, workspace: Workspace, messages: list[dict]) -> dict[str, str]:
    """user id → external id of the account it was last grouped with, for the users of the batch's tracks."""
    # Tracks naming their account in context.groupId need no lookup (the common case of a busy batch).
    users = {_user_key(m) for m in messages if m.get("type") == "track" and _context_group(m) is None} - {None}
    # An id PostgreSQL cannot take (NUL, a lone surrogate) names no stored user; its track is refused later.
    users = {user for user in users if text_problem(user) is None}
    if not users:
        return {}
    return dict(
        SegmentUser.objects.filter(workspace=workspace, user_id__in=users, account__isnull=False).values_list(
            "user_id", "account__external_id"
        )
    )


def _timestamp(message: dict, *, sent_at: object, now: datetime) -> object:
    """`timestamp` as sent; else `originalTimestamp` moved by the client's clock skew (now − sentAt); else None
    (the time of receipt). A value that does not parse is passed on for the ingestion rules to refuse."""
    if message.get("timestamp") is not None:
        return message["timestamp"]
    original = message.get("originalTimestamp")
    if original is None:
        return None
    sent = message.get("sentAt", sent_at)
    original_at, sent_at_parsed = _parse_time(original), _parse_time(sent)
    if original_at is None or sent_at_parsed is None:
        return original
    try:
        return (now - (sent_at_parsed - original_at)).isoformat()
    except OverflowError:
        # A skew that moves the time out of years 1–9999 (`sentAt` 0001-01-01, say): the time as sent is judged.
        return original


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = iso_timestamp_parse(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _track_event(
    message: dict, *, mapping: Mapping, user: str | None, grouped: dict[str, str], sent_at: object, now: datetime
) -> dict | Problem:
    """The usage event of a track message, or the Problem that stops it."""
    properties = message.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        return _problem(Reason.INVALID_MESSAGE, "'properties' must be an object.", message)
    properties = dict(properties)
    feature = properties.pop(mapping.feature_property, None)
    if feature is None:
        feature = message.get("event")
    if feature is None or (isinstance(feature, str) and not feature.strip()):
        return _problem(Reason.MISSING_EVENT, "A track call needs an 'event' name.", message)
    account = _context_group(message)
    property_account = properties.pop(mapping.account_property, None)
    if account is None and isinstance(property_account, int | str) and str(property_account).strip():
        account = str(property_account).strip()
    if account is None and user is not None:
        account = grouped.get(user)
    if account is None:
        return _problem(
            Reason.NO_ACCOUNT,
            f"No account for this event: send context.groupId or properties.{mapping.account_property}, or a "
            f"group call for user {user!r} first."
            if user
            else "No account and no user for this event.",
            message,
        )
    event: dict = {"account_id": account, "feature_id": feature}
    if user is not None:
        event["user_id"] = user
    for name, target in (
        (mapping.product_property, "product_id"),
        (mapping.module_property, "module_id"),
        (mapping.quantity_property, "quantity"),
    ):
        if name in properties:
            event[target] = properties.pop(name)
    timestamp = _timestamp(message, sent_at=sent_at, now=now)
    if timestamp is not None:
        event["timestamp"] = timestamp
    if message.get("messageId") is not None:
        event["event_id"] = message["messageId"]
    if properties:
        event["properties"] = properties
    return event


def _apply(
    kind: str, message: dict, *, workspace: Workspace, mapping: Mapping, user: str | None, now: datetime
) -> tuple[bool, Problem | None]:
    """Apply an identify, group or alias message: (applied, the Problem to record if any). A message can be
    applied with a problem (an invalid e-mail or owner trait is left out, the rest applied)."""
    traits = message.get("traits")
    if traits is None:
        traits = {}
    if not isinstance(traits, dict):
        return False, _problem(Reason.INVALID_MESSAGE, "'traits' must be an object.", message)
    context = message.get("context")
    if kind == "identify" and isinstance(context, dict) and isinstance(context.get("traits"), dict):
        # RudderStack's clients send identify traits in context.traits.
        traits = {**context["traits"], **traits}
    if found := json_text_problem(traits):
        path, problem = found
        return False, _problem(Reason.INVALID_TRAIT, f"'traits.{path}' {problem.phrase}.", message)
    try:
        if kind == "identify":
            if user is None:
                return False, _problem(
                    Reason.MISSING_USER, "An identify call needs a 'userId' or 'anonymousId'.", message
                )
            problem = segment_identify(
                workspace=workspace, user=user, traits=traits, group=_context_group(message), now=now, message=message
            )
            return True, problem
        if kind == "group":
            group = message.get("groupId")
            if isinstance(group, bool) or not isinstance(group, int | str) or not str(group).strip():
                return False, _problem(Reason.MISSING_GROUP_ID, "A group call needs a 'groupId'.", message)
            problem = segment_group(
                workspace=workspace,
                group=str(group).strip(),
                user=user,
                traits=traits,
                mapping=mapping,
                now=now,
                message=message,
            )
            return True, problem
        previous = _user_key({"userId": message.get("previousId")})
        if previous is None or user is None:
            return False, _problem(Reason.MISSING_USER, "An alias call needs 'previousId' and 'userId'.", message)
        segment_alias(workspace=workspace, previous=previous, user=user, now=now)
        return True, None
    except DomainError as exc:
        return False, _problem(exc.code, exc.message, message)
    except DataError:
        # Text PostgreSQL cannot store (NUL, an unpaired surrogate, NaN in JSON): the call's transaction rolled back.
        return False, _problem(
            Reason.INVALID_TRAIT, "The traits hold text PostgreSQL cannot store (NUL, invalid Unicode, NaN).", message
        )


def _email(traits: dict, message: dict) -> tuple[str | None, Problem | None]:
    """The `email` trait when it is a valid address; else None, and a Problem when one was given."""
    email = traits.get("email")
    if email is None or email == "":
        return None, None
    if isinstance(email, str):
        try:
            validate_email(email.strip())
            return email.strip(), None
        except ValidationError:
            pass
    return None, _problem(Reason.INVALID_TRAIT, f"'email' {str(email)[:100]!r} is not an e-mail address.", message)


@transaction.atomic
def segment_identify(
    *, workspace: Workspace, user: str, traits: dict, group: str | None, now: datetime, message: dict
) -> Problem | None:
    """Keep the user's e-mail and traits; upsert the end user in its account (context.groupId, else the account
    it was last grouped with). An invalid e-mail is left out (and reported), the other traits are kept."""
    email, problem = _email(traits, message)
    rest = {k: v for k, v in traits.items() if k != "email"}
    profile = _profile_upsert(workspace=workspace, user=user, email=email, traits=rest, account=None, now=now)
    account = group or (profile.account.external_id if profile.account_id else None)
    if account is not None:
        _end_user_merge(workspace=workspace, account=account, user=user, email=email, traits=rest)
        if group is not None:
            _profile_upsert(workspace=workspace, user=user, email=None, traits={}, account=group, now=now)
    return problem


@transaction.atomic
def segment_group(
    *,
    workspace: Workspace,
    group: str,
    user: str | None,
    traits: dict,
    mapping: Mapping,
    now: datetime,
    message: dict,
) -> Problem | None:
    """Upsert the account from the group's traits and link the user to it. An owner e-mail that is no staff
    member of the workspace is left out (and reported); the other traits are applied."""
    rest = dict(traits)
    fields: dict = {}
    if "name" in rest:
        fields["name"] = _trait_text(rest.pop("name"))
    domain_trait = "domain" if rest.get("domain") else "website"
    domain = rest.pop("domain", None) or rest.pop("website", None)
    rest.pop("website", None)
    problem = None
    if domain is not None:
        try:
            fields["domain"] = _domain(domain)
        except ValueError:  # not a URL urlsplit can read (`http://[::1`): left out, the rest applied
            problem = _problem(
                Reason.INVALID_TRAIT,
                f"'traits.{domain_trait}' ({echo(domain, limit=100)}) is neither a host name nor a URL; the "
                "account's domain is left as it was.",
                message,
            )
    if mapping.plan_trait in rest:
        fields["plan"] = _trait_text(rest.pop(mapping.plan_trait))
    owner = rest.pop(mapping.owner_email_trait, None)
    try:
        with transaction.atomic():
            account, _ = account_upsert(
                workspace=workspace,
                external_id=group,
                **fields,
                owner_email=owner or UNSET,
                attributes=rest,
                merge_attributes=True,
            )
    except DomainError as exc:
        if exc.field != "owner_email":
            raise
        problem = problem or _problem(exc.code, exc.message, message)
        account, _ = account_upsert(
            workspace=workspace, external_id=group, **fields, attributes=rest, merge_attributes=True
        )
    if user is not None:
        profile = _profile_upsert(
            workspace=workspace, user=user, email=None, traits={}, account=account.external_id, now=now
        )
        _end_user_merge(
            workspace=workspace,
            account=account.external_id,
            user=user,
            email=profile.email,
            traits=profile.traits or UNSET,
        )
    return problem


@transaction.atomic
def segment_alias(*, workspace: Workspace, previous: str, user: str, now: datetime) -> None:
    """Give `user` what `previous` had (its account unless `user` has one, its e-mail unless `user` has one,
    its traits under `user`'s)."""
    old = SegmentUser.objects.filter(workspace=workspace, user_id=previous).select_related("account").first()
    if old is None:
        _profile_upsert(workspace=workspace, user=user, email=None, traits={}, account=None, now=now)
        return
    current = SegmentUser.objects.filter(workspace=workspace, user_id=user).first()
    account = current.account_id if current is not None and current.account_id else old.account_id
    email = current.email if current is not None and current.email else old.email
    traits = {**old.traits, **(current.traits if current is not None else {})}
    profile = _profile_upsert(workspace=workspace, user=user, email=email or None, traits=traits, account=None, now=now)
    if account is not None and profile.account_id is None:
        SegmentUser.objects.filter(pk=profile.pk).update(account_id=account)
    account_external_id = old.account.external_id if account == old.account_id and old.account else None
    if account_external_id is not None:
        _end_user_merge(workspace=workspace, account=account_external_id, user=user, email=email, traits=traits)


def _end_user_merge(*, workspace: Workspace, account: str, user: str, email: str | None, traits: dict) -> None:
    """Upsert the Segment user as an end user of `account`: its e-mail when it has one, its traits merged into
    the end user's attributes (UNSET: attributes untouched)."""
    end_user_upsert(
        workspace=workspace,
        account_external_id=account,
        external_id=user,
        email=email or UNSET,
        attributes=traits,
        merge_attributes=True,
    )


_PROFILE_UPSERT_SQL = (
    "INSERT INTO usage_segmentuser (workspace_id, user_id, account_id, email, traits, updated_at) "
    "VALUES (%s, %s, (SELECT id FROM accounts_account WHERE workspace_id = %s AND external_id = %s), "
    "COALESCE(%s, ''), %s::jsonb, %s) "
    "ON CONFLICT (workspace_id, user_id) DO UPDATE SET "
    "account_id = COALESCE(EXCLUDED.account_id, usage_segmentuser.account_id), "
    "email = COALESCE(NULLIF(%s, ''), usage_segmentuser.email), "
    "traits = usage_segmentuser.traits || EXCLUDED.traits, updated_at = EXCLUDED.updated_at "
    "RETURNING id"
)


def _profile_upsert(
    *, workspace: Workspace, user: str, email: str | None, traits: dict, account: str | None, now: datetime
) -> SegmentUser:
    """Insert or update the user's SegmentUser in one statement (concurrent calls for one user merge): the
    account moves when given, the e-mail when given, traits are merged."""
    with connection.cursor() as cursor:
        cursor.execute(
            _PROFILE_UPSERT_SQL,
            [workspace.pk, user[:64], workspace.pk, account, email, json.dumps(traits, default=str), now, email],
        )
        (pk,) = cursor.fetchone()
    return SegmentUser.objects.select_related("account").get(pk=pk)


def _trait_text(value: object) -> object:
    """Numbers and booleans as text (clients send `plan: 3`); other types pass on for the service to refuse."""
    if isinstance(value, bool | int | float):
        return str(value)
    return value


def _domain(value: object) -> object:
    """`https://www.acme.com/about` → `acme.com`; not text passes on for the service to refuse; ValueError for
    text that is not a URL (an unclosed `[`)."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    host = urlsplit(text if "//" in text else f"//{text}").hostname or ""
    return host.removeprefix("www.")


def _ignored_count(*, workspace: Workspace, counts: dict[str, int], day) -> None:
    with connection.cursor() as cursor:
        for kind, count in sorted(counts.items()):
            cursor.execute(
                "INSERT INTO usage_segmentignoredday (workspace_id, day, kind, count) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (workspace_id, day, kind) DO UPDATE SET count = usage_segmentignoredday.count + "
                "EXCLUDED.count",
                [workspace.pk, day, kind, count],
            )
