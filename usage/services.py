"""Writes for usage ingestion: the bulk write path behind `POST /api/v1/events`. A batch costs a handful of
queries whatever its size; its events, allowance counters, outbox row and (workspace, UTC day) dirty mark commit
in one transaction. How the queries are laid out: docs/internals.md ("Ingestion write path")."""

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

import psycopg
from django.conf import settings
from django.db import connection, transaction

from accounts.models import Account, EndUser, Workspace
from catalog.services import catalog_features_resolve
from entitlements.models import EVENT_ID_MAX_LENGTH
from entitlements.services import (
    ALLOWANCE_COUNTING_LOCK_PREFIX,
    ALLOWANCE_COUNTING_LOCK_SLOTS,
    UsageRow,
    allowance_usage_apply,
)

from .coalesce import Coalescer
from .models import UsageEvent
from .outbox import events_outbox_add, events_outbox_publish
from .validation import (
    IngestWarning,
    Rejection,
    ValidEvent,
    event_validator,
)

# Batches up to this size are inserted with one INSERT … SELECT FROM unnest(...); larger ones through COPY.
# Only the statements of small batches may be prepared (DATABASE_PREPARE_THRESHOLD): a prepared statement's
# generic plan, measured, doubled PostgreSQL's CPU per 500-event batch, while it saves planning on the
# many small requests.
COPY_THRESHOLD = 32
# last_seen_at of accounts and end users is kept to this resolution (see _SEEN).
SEEN_RESOLUTION_SECONDS = 60
UNKNOWN_ACCOUNT = "unknown_account"


@dataclass(frozen=True)
class StoredEvent:
    """An event committed by this call (the input of after-commit subscribers such as alert pipelines)."""

    id: int
    index: int
    account_id: int
    end_user_id: int | None
    feature_id: int
    occurred_at: datetime
    quantity: int
    event_id: str | None
    metered: bool = False  # its feature was metered when it was stored: it counts towards allowances


@dataclass
class StoreResult:
    stored: list[StoredEvent] = field(default_factory=list)
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[IngestWarning] = field(default_factory=list)
    stored: list[StoredEvent] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "ignored": self.ignored,
            "rejected": [r.as_dict() for r in sorted(self.rejected, key=lambda r: r.index)],
            "warnings": [w.as_dict() for w in sorted(self.warnings, key=lambda w: w.index)],
        }


def events_ingest(*, workspace: Workspace, payload: list[dict], now: datetime) -> IngestResult:
    """Validate and store a batch of events; valid events are stored even when others are rejected."""
    result = IngestResult()
    valid: list[ValidEvent] = []
    validate = event_validator(workspace=workspace, now=now)
    for index, event in enumerate(payload):
        checked = validate(event, index=index)
        if isinstance(checked, Rejection):
            result.rejected.append(checked)
            continue
        result.warnings.extend(checked.warnings)
        if checked.quantity == 0:
            # Accepted, stored nowhere: no event, no registration, no counter.
            result.ignored += 1
            continue
        valid.append(checked)
    if valid:
        stored = _events_store_grouped(workspace=workspace, events=valid, now=now)
        result.stored = stored.stored
        result.duplicates = stored.duplicates
        result.rejected.extend(stored.rejected)
    result.accepted = len(result.stored)
    return result


_coalescer = Coalescer()


def _events_store_grouped(*, workspace: Workspace, events: list[ValidEvent], now: datetime) -> StoreResult:
    """usage_events_store, with small requests of a workspace that arrive while another is being written
    grouped into one transaction (usage/coalesce.py). Requests over UPTAKE_INGEST_COALESCE_MAX_EVENTS events,
    and calls inside a caller's transaction, are written alone."""

    def write(batch: list[ValidEvent]) -> StoreResult:
        return usage_events_store(workspace=workspace, events=batch, now=now, source=UsageEvent.Source.EVENTS)

    if (
        not settings.UPTAKE_INGEST_COALESCE
        or len(events) > settings.UPTAKE_INGEST_COALESCE_MAX_EVENTS
        or connection.in_atomic_block
    ):
        return write(events)
    return _coalescer.submit(workspace.pk, events, write, _store_result_split)


def _store_result_split(result: StoreResult, parts: list[list[int]]) -> list[StoreResult]:
    """Divide a grouped write's result among its requests: `parts[i]` are request i's event indexes, in the
    order its events were given batch-wide indexes 0, 1, …"""
    owner = [(part, index) for part, indexes in enumerate(parts) for index in indexes]
    results = [StoreResult() for _ in parts]
    for stored in result.stored:
        part, index = owner[stored.index]
        results[part].stored.append(replace(stored, index=index))
    for rejected in result.rejected:
        part, index = owner[rejected.index]
        results[part].rejected.append(replace(rejected, index=index))
    for part, indexes in enumerate(parts):
        # Every event of a request is stored, rejected, or a duplicate (of an earlier event or stored row).
        results[part].duplicates = len(indexes) - len(results[part].stored) - len(results[part].rejected)
    return results


@transaction.atomic
def usage_events_store(
    *,
    workspace: Workspace,
    events: Sequence[ValidEvent],
    now: datetime,
    source: str = UsageEvent.Source.EVENTS,
    register: bool = True,
) -> StoreResult:
    """Store validated events: resolve (and, with `register`, create) their dimensions in bulk, drop duplicate
    event ids (first in the batch wins; the database's unique constraint decides across batches), write them,
    mark their (workspace, UTC day) dirty and apply them to the allowance counters, all in one transaction.

    With `register=False` unknown accounts and features are rejected (`unknown_account`, `unknown_feature`)
    instead of registered; end users are always registered. Events must have a non-zero quantity.
    """
    result = StoreResult()
    known = _dimensions_lookup(workspace_id=workspace.pk, events=events)
    resolution = catalog_features_resolve(workspace=workspace, events=events, register=register, known=known.features)
    feature_ids = resolution.feature_ids
    result.rejected.extend(
        Rejection(index=index, code=error.code, message=error.message, field=error.field)
        for index, error in resolution.refused.items()
    )
    events = [event for event in events if event.index in feature_ids]
    account_ids = _accounts_resolve(
        workspace=workspace, keys=[e.account_key for e in events], register=register, known=known.accounts
    )
    kept: list[ValidEvent] = []
    for event in events:
        if event.account_key not in account_ids:
            result.rejected.append(
                Rejection(
                    index=event.index,
                    code=UNKNOWN_ACCOUNT,
                    message=f"No account '{event.account_key}' in this workspace.",
                    field="account_id",
                )
            )
        else:
            kept.append(event)
    # In-batch duplicates: the first valid event with an id wins.
    seen: set[str] = set()
    unique: list[ValidEvent] = []
    for event in kept:
        if event.event_id is not None:
            if event.event_id in seen:
                result.duplicates += 1
                continue
            seen.add(event.event_id)
        unique.append(event)
    if not unique:
        return result
    user_ids = _end_users_resolve(
        workspace=workspace,
        pairs=[(account_ids[e.account_key], e.user_key) for e in unique if e.user_key is not None],
        known=known.users,
    )
    rows = [
        (
            event.index,
            account_ids[event.account_key],
            user_ids[(account_ids[event.account_key], event.user_key)] if event.user_key is not None else None,
            feature_ids[event.index],
            event.occurred_at,
            event.quantity,
            event.event_id,
            event.properties_json,
        )
        for event in unique
    ]
    result.stored = _events_write(workspace_id=workspace.pk, rows=rows, now=now, source=source)
    result.duplicates += len(rows) - len(result.stored)
    if result.stored:
        # Only events of metered features count towards allowances. The insert read `metered` after the lookup
        # took the features' counting locks, so a rebuild of the counters sees every event this batch leaves
        # out (see ALLOWANCE_COUNTING_LOCK_PREFIX).
        counted = [s for s in result.stored if s.metered]
        if counted:
            allowance_usage_apply(
                workspace_id=workspace.pk,
                metered_feature_ids={s.feature_id for s in counted},
                rows=[
                    UsageRow(
                        account_id=s.account_id,
                        feature_id=s.feature_id,
                        occurred_at=s.occurred_at,
                        quantity=s.quantity,
                    )
                    for s in counted
                ],
            )
    if len(rows) > COPY_THRESHOLD and len(connection.atomic_blocks) > 1:
        # _events_write checked foreign keys per statement (see _STAGE_SQL); a caller's transaction goes on,
        # so give it back Django's deferral (every deferrable constraint here is initially deferred).
        with _pg_cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED", prepare=False)
    if result.stored:
        # The (workspace, UTC day) mark goes last, right before COMMIT: every batch of a workspace and day
        # bumps the same row, so its lock (which serialises concurrent batches of the workspace from here to
        # COMMIT) is held as briefly as the transaction allows.
        days = {s.occurred_at.astimezone(UTC).date() for s in result.stored}
        # Subscribers (alert pipelines) process the events after commit, off the request path (usage/outbox.py).
        # The lookup said whether the workspace has a subscription when the batch started; with none, nothing is
        # written (a subscription made while the batch is being written sees the next batches).
        if known.subscribed:
            outbox_id = events_outbox_add(workspace_id=workspace.pk, event_ids=[s.id for s in result.stored], now=now)
            transaction.on_commit(lambda: events_outbox_publish(outbox_id=outbox_id))
        if len(connection.atomic_blocks) == 1:
            # This function's transaction is the outermost: mark and COMMIT in one message, so the mark's lock
            # is released by the server's COMMIT without waiting for this thread to get the GIL back for
            # another round trip. Django's own COMMIT on leaving the atomic block then finds no transaction
            # and sends nothing; its on_commit hooks still run after it.
            _days_mark_dirty_and_commit(workspace_id=workspace.pk, days=days, now=now)
        else:
            usage_days_mark_appended(workspace_id=workspace.pk, days=days, now=now)
    return result


@contextmanager
def _pg_cursor() -> Iterator[psycopg.Cursor]:
    """A psycopg 3 cursor with server-side parameter binding (arrays travel as binary parameters, not as SQL
    literals built in Python) on Django's connection, inside its transaction; errors become django.db errors
    (so an unreachable database still answers 503)."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def usage_days_mark_appended(*, workspace_id: int, days: Iterable[date], now: datetime) -> None:
    """Mark (workspace, UTC day) pairs that received appended events, for the rollups (which may apply them as a
    delta); a day already marked gets its version bumped. Deleted or restated events need
    analytics.services.usage_days_mark_restated instead."""
    days = sorted(set(days))
    if not days:
        return
    with _pg_cursor() as cursor:
        cursor.execute(_MARK_DIRTY_SQL, [workspace_id, settings.UPTAKE_DIRTY_SHARDS, now, days])


# The mark is sharded (see UsageDayDirty): this connection's row is pg_backend_pid() % UPTAKE_DIRTY_SHARDS, so
# concurrent transactions (other connections) of the same workspace and day mostly bump other rows, and one
# connection's consecutive transactions bump the same row (a day's mark stays one row per busy connection).
_MARK_DIRTY_SQL = (
    "INSERT INTO usage_usagedaydirty (workspace_id, day, shard, version, marked_at) "
    "SELECT %s, d, pg_backend_pid() %% %s, 1, %s FROM unnest(%s::date[]) AS d ORDER BY d "
    "ON CONFLICT (workspace_id, day, shard) DO UPDATE "
    "SET version = usage_usagedaydirty.version + 1, marked_at = EXCLUDED.marked_at"
)


def _days_mark_dirty_and_commit(*, workspace_id: int, days: Iterable[date], now: datetime) -> None:
    """usage_days_mark_appended followed by COMMIT, sent as one simple-protocol message (client-side binding)."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.ClientCursor(connection.connection) as cursor:
        cursor.execute(
            _MARK_DIRTY_SQL + "; COMMIT", [workspace_id, settings.UPTAKE_DIRTY_SHARDS, now, sorted(set(days))]
        )


@dataclass
class _Known:
    """What one lookup query found of a batch's dimensions (the steady state needs nothing more)."""

    features: dict[str, tuple[int, str, str | None]]  # key → (id, product key, module key)
    accounts: dict[str, int]  # external id → id
    users: dict[tuple[int, str], int]  # (account id, external id) → id
    subscribed: bool  # the workspace has an EventSubscription (its events go through the outbox)


# The feature rows that can become metered take their counting lock (shared, until COMMIT; see
# ALLOWANCE_COUNTING_LOCK_PREFIX) in the select list, so only the batch's own features are locked.
_LOOKUP_SQL = (
    "SELECT 'f', f.key, f.id, p.key, m.key, CASE WHEN f.status = 'draft' OR f.type IN ('quantity', 'range') "
    "THEN pg_advisory_xact_lock_shared(hashtextextended(%(lock)s || mod(f.id, %(slots)s), 0)) IS NOT NULL END "
    "FROM catalog_feature f "
    "JOIN catalog_product p ON p.id = f.product_id "
    "LEFT JOIN catalog_module m ON m.id = f.module_id WHERE f.workspace_id = %(ws)s AND f.key = "
    "ANY(%(features)s) "
    "UNION ALL SELECT 'a', a.external_id, a.id, NULL, NULL, NULL FROM accounts_account a "
    "WHERE a.workspace_id = %(ws)s AND a.external_id = ANY(%(accounts)s) "
    "UNION ALL SELECT 'u', u.external_id, u.id, u.account_id::text, NULL, NULL FROM accounts_enduser u "
    "JOIN accounts_account a ON a.id = u.account_id WHERE a.workspace_id = %(ws)s "
    "AND a.external_id = ANY(%(accounts)s) AND u.external_id = ANY(%(users)s) "
    # Whether the workspace's events have subscribers, so a workspace without any writes no outbox row.
    "UNION ALL SELECT 's', NULL, NULL, NULL, NULL, EXISTS (SELECT 1 FROM usage_eventsubscription es "
    "WHERE es.workspace_id = %(ws)s)"
)


def _dimensions_lookup(*, workspace_id: int, events: Sequence[ValidEvent]) -> _Known:
    """Features (taking their counting locks), accounts, end users of a batch and whether the workspace's events
    have subscribers, in one round trip."""
    known = _Known(features={}, accounts={}, users={}, subscribed=True)
    users = sorted({e.user_key for e in events if e.user_key is not None})
    params = {
        "ws": workspace_id,
        "lock": ALLOWANCE_COUNTING_LOCK_PREFIX,
        "slots": ALLOWANCE_COUNTING_LOCK_SLOTS,
        "features": sorted({e.feature_key for e in events}),
        "accounts": sorted({e.account_key for e in events}),
        "users": users or [""],
    }
    with _pg_cursor() as cursor:
        cursor.execute(_LOOKUP_SQL, params, prepare=False if len(events) > COPY_THRESHOLD else None)
        for kind, key, pk, extra, module_key, flag in cursor.fetchall():
            if kind == "f":
                known.features[key] = (pk, extra, module_key)
            elif kind == "a":
                known.accounts[key] = pk
            elif kind == "u":
                known.users[(int(extra), key)] = pk
            else:
                known.subscribed = bool(flag)
    return known


# ---------------------------------------------------------------------------
# Accounts and end users
# ---------------------------------------------------------------------------


def _accounts_resolve(
    *, workspace: Workspace, keys: list[str], register: bool, known: dict[str, int] | None = None
) -> dict[str, int]:
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    ids = {key: known[key] for key in wanted if key in (known or {})}
    missing = [key for key in wanted if key not in ids]
    if missing:
        ids.update(
            Account.objects.filter(workspace=workspace, external_id__in=missing).values_list("external_id", "pk")
        )
        # Sorted, so concurrent batches registering the same new ids insert them in one order (no deadlock).
        missing = sorted(key for key in wanted if key not in ids)
    if missing and register:
        Account.objects.bulk_create(
            [Account(workspace=workspace, external_id=key) for key in missing], ignore_conflicts=True
        )
        ids.update(
            Account.objects.filter(workspace=workspace, external_id__in=missing).values_list("external_id", "pk")
        )
    return ids


def _end_users_resolve(
    *, workspace: Workspace, pairs: list[tuple[int, str]], known: dict[tuple[int, str], int] | None = None
) -> dict[tuple[int, str], int]:
    wanted = list(dict.fromkeys(pairs))
    if not wanted:
        return {}
    known = known or {}
    if all(pair in known for pair in wanted):
        return {pair: known[pair] for pair in wanted}

    def load(keys: list[tuple[int, str]]) -> dict[tuple[int, str], int]:
        rows = EndUser.objects.filter(
            workspace=workspace, account_id__in={a for a, _ in keys}, external_id__in={u for _, u in keys}
        ).values_list("account_id", "external_id", "pk")
        wanted_set = set(keys)
        return {(a, u): pk for a, u, pk in rows if (a, u) in wanted_set}

    ids = load(wanted)
    missing = sorted(pair for pair in wanted if pair not in ids)
    if missing:
        EndUser.objects.bulk_create(
            [EndUser(workspace=workspace, account_id=a, external_id=u) for a, u in missing],
            ignore_conflicts=True,
        )
        ids.update(load(missing))
    return ids


# ---------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------

_EVENT_COLUMNS = "account_id, end_user_id, feature_id, occurred_at, quantity, event_id, properties"
# Foreign keys are DEFERRABLE INITIALLY DEFERRED (Django's default): checked at COMMIT, a batch's 4 per event
# (and 3 per allowance entry) would run while the day's dirty mark is locked, serialising concurrent batches.
# Large batches check them per statement instead, before the mark is taken.
_STAGE_SQL = (
    "SET CONSTRAINTS ALL IMMEDIATE; "
    "CREATE TEMP TABLE IF NOT EXISTS usage_ingest_stage (ord integer, account_id bigint, end_user_id bigint, "
    f"feature_id bigint, occurred_at timestamptz, quantity bigint, event_id varchar({EVENT_ID_MAX_LENGTH}), "
    "properties jsonb) "
    "ON COMMIT DELETE ROWS"
)
# Rows are inserted in event_id order, so two batches sharing ids take their unique-index locks in one order
# (no deadlock); the unique constraint decides which batch stores an id.
_INSERT = (
    "ins AS (INSERT INTO usage_usageevent (workspace_id, received_at, source, {columns}) "
    "SELECT %(ws)s, %(now)s, %(source)s, {select} FROM {source_rows} ORDER BY {event_id} NULLS LAST, {ord} "
    "ON CONFLICT (workspace_id, event_id) WHERE event_id IS NOT NULL DO NOTHING "
    "RETURNING id, account_id, end_user_id, feature_id, occurred_at, quantity, event_id)"
)
# first_seen_at is exact; last_seen_at moves only by more than SEEN_RESOLUTION_SECONDS. Rows are locked in id
# order before the update, so concurrent batches cannot deadlock on accounts or end users.
_SEEN = (
    "{name}_span AS (SELECT {column} AS id, min(occurred_at) AS first, max(occurred_at) AS last FROM ins "
    "WHERE {column} IS NOT NULL GROUP BY {column}), "
    "{name}_lock AS (SELECT t.id FROM {table} t JOIN {name}_span s ON s.id = t.id "
    "WHERE t.first_seen_at IS NULL OR t.first_seen_at > s.first OR t.last_seen_at IS NULL "
    "OR t.last_seen_at < s.last - make_interval(secs => %(resolution)s) ORDER BY t.id FOR NO KEY UPDATE OF "
    "t), "
    "{name}_upd AS (UPDATE {table} t SET first_seen_at = LEAST(COALESCE(t.first_seen_at, s.first), s.first), "
    "last_seen_at = GREATEST(COALESCE(t.last_seen_at, s.last), s.last) FROM {name}_span s "
    "WHERE t.id = s.id AND t.id IN (SELECT id FROM {name}_lock))"
)
_TAIL = ", ".join(
    [
        _SEEN.format(name="acc", column="account_id", table="accounts_account"),
        _SEEN.format(name="usr", column="end_user_id", table="accounts_enduser"),
    ]
)
# The stored rows, each with whether its feature is metered: read by this statement, after the lookup took the
# features' counting locks (a snapshot taken before them could miss a switch to metered, see
# ALLOWANCE_COUNTING_LOCK_PREFIX). The uncorrelated ARRAY(...) runs once.
_RETURN = (
    " SELECT ins.*, ins.feature_id = ANY(ARRAY(SELECT id FROM catalog_feature "
    "WHERE metered AND id IN (SELECT feature_id FROM ins))) FROM ins"
)
_INSERT_FROM_ARRAYS = (
    "WITH "
    + ", ".join(
        [
            _INSERT.format(
                columns=_EVENT_COLUMNS,
                select="a, u, f, o, q, e, p::jsonb",
                source_rows="unnest(%(a)s::bigint[], %(u)s::bigint[], %(f)s::bigint[], %(o)s::timestamptz[], "
                "%(q)s::bigint[], %(e)s::text[], %(p)s::text[]) WITH ORDINALITY AS v(a, u, f, o, q, e, p, n)",
                event_id="e",
                ord="n",
            ),
            _TAIL,
        ]
    )
    + _RETURN
)
_INSERT_FROM_STAGE = (
    "WITH "
    + ", ".join(
        [
            "staged AS (DELETE FROM usage_ingest_stage RETURNING *)",
            _INSERT.format(
                columns=_EVENT_COLUMNS,
                select=_EVENT_COLUMNS,
                source_rows="staged",
                event_id="event_id",
                ord="ord",
            ),
            _TAIL,
        ]
    )
    + _RETURN
)


def _events_write(*, workspace_id: int, rows: list[tuple], now: datetime, source: str) -> list[StoredEvent]:
    """Insert rows (index, account, end user, feature, occurred_at, quantity, event_id, properties JSON),
    skipping event ids already stored in the workspace, and in the same statement move first/last seen of
    their accounts and end users; return the stored events."""
    params = {"ws": workspace_id, "now": now, "source": source, "resolution": SEEN_RESOLUTION_SECONDS}
    with _pg_cursor() as cursor:
        if len(rows) <= COPY_THRESHOLD:
            columns = list(zip(*rows, strict=True))[1:]  # without the batch index
            params.update({name: list(column) for name, column in zip("aufoqep", columns, strict=True)})
            cursor.execute(_INSERT_FROM_ARRAYS, params)
        else:
            cursor.execute(_STAGE_SQL, prepare=False)  # two statements (and DDL): never prepared
            with cursor.copy(f"COPY usage_ingest_stage (ord, {_EVENT_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(_INSERT_FROM_STAGE, params, prepare=False)
        return _stored(rows=rows, returned=cursor.fetchall())


def _stored(*, rows: list[tuple], returned: list[tuple]) -> list[StoredEvent]:
    # Match returned rows to batch indexes: by event id when there is one (unique in the batch), otherwise in
    # insertion order among the rows without one (ORDER BY keeps it; RETURNING follows it in practice, and the
    # index is informational only).
    by_event_id = {row[6]: row[0] for row in rows if row[6] is not None}
    without_id = iter([row[0] for row in rows if row[6] is None])
    stored = []
    for pk, account_id, end_user_id, feature_id, occurred_at, quantity, event_id, metered in returned:
        index = by_event_id[event_id] if event_id is not None else next(without_id)
        stored.append(
            StoredEvent(
                id=pk,
                index=index,
                account_id=account_id,
                end_user_id=end_user_id,
                feature_id=feature_id,
                occurred_at=occurred_at,
                quantity=quantity,
                event_id=event_id,
                metered=metered,
            )
        )
    return stored
