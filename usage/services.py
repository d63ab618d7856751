"""Writes for usage ingestion: the bulk write path behind `POST /api/v1/events`.

A batch costs a handful of queries whatever its size: dimensions (catalog, accounts, end users) are looked up
in one query, unknown ones are registered with INSERT … ON CONFLICT DO NOTHING and re-selected,
events are written with COPY into a staging table and moved with INSERT … ON CONFLICT DO NOTHING RETURNING
(the unique constraint on (workspace, event_id) decides duplicates, also under concurrent batches) in one
statement that also moves accounts' and end users' first/last seen; allowance counters are updated and the
(workspace, UTC day) is marked dirty (last, as its row is shared by the batches of the day on this connection's
shard, see UsageDayDirty) in the same
transaction. Batches of up to COPY_THRESHOLD events skip the stage
and insert from arrays.
"""

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime

import psycopg
from django.conf import settings
from django.db import connection, transaction

from accounts.models import Account, EndUser, Workspace
from catalog.models import Feature, Lifecycle, Module, Product
from catalog.services import next_resource_version
from entitlements.services import (
    ALLOWANCE_COUNTING_LOCK_PREFIX,
    ALLOWANCE_COUNTING_LOCK_SLOTS,
    UsageRow,
    allowance_usage_apply,
)

from .coalesce import Coalescer
from .models import UsageEvent
from .validation import (
    DEFAULT_PRODUCT,
    Code,
    Rejection,
    ValidEvent,
    Warning_,
    validate_event,
)

# Batches up to this size are inserted with one INSERT … SELECT FROM unnest(...); larger ones through COPY.
# Only the statements of small batches may be prepared (DATABASE_PREPARE_THRESHOLD): a prepared statement's
# generic plan, measured, doubled PostgreSQL's CPU per 500-event batch, while it saves planning on the
# many small requests.
COPY_THRESHOLD = 32
# last_seen_at of accounts and end users is kept to this resolution (see _SEEN).
SEEN_RESOLUTION_SECONDS = 60
UNKNOWN_ACCOUNT = "unknown_account"
UNKNOWN_FEATURE = "unknown_feature"


@dataclass(frozen=True)
class StoredEvent:
    """An event committed by this call (the input of after-commit triggers such as alert pipelines)."""

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
    warnings: list[Warning_] = field(default_factory=list)
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
    for index, event in enumerate(payload):
        checked = validate_event(
            event,
            index=index,
            now=now,
            late_event_policy=workspace.late_event_policy,
            late_event_window_days=workspace.late_event_window_days,
            max_future_seconds=settings.UPTAKE_INGEST_MAX_FUTURE_SECONDS,
            max_properties_bytes=settings.UPTAKE_INGEST_MAX_PROPERTIES_BYTES,
        )
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
    feature_ids, rejected = _catalog_resolve(workspace=workspace, events=events, register=register, known=known)
    result.rejected.extend(rejected)
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
        # Alert pipelines are evaluated after commit, off the request path (usage/alerts/triggers.py). The
        # lookup said whether the workspace has an enabled event-driven pipeline when the batch started; with
        # none, nothing is queued (a pipeline enabled while the batch is being written sees the next batches).
        if known.alert_pipelines:
            from usage.alerts.triggers import alerts_enqueue_pending, alerts_pending_add

            # The outbox row commits with the events; its evaluation is queued after COMMIT (and swept later
            # if that message is lost).
            pending_id = alerts_pending_add(workspace_id=workspace.pk, event_ids=[s.id for s in result.stored], now=now)
            transaction.on_commit(lambda: alerts_enqueue_pending(pending_id=pending_id))
        if len(connection.atomic_blocks) == 1:
            # This function's transaction is the outermost: mark and COMMIT in one message, so the mark's lock
            # is released by the server's COMMIT without waiting for this thread to get the GIL back for
            # another round trip. Django's own COMMIT on leaving the atomic block then finds no transaction
            # and sends nothing; its on_commit hooks still run after it.
            _days_mark_dirty_and_commit(workspace_id=workspace.pk, days=days, now=now)
        else:
            usage_days_mark_dirty(workspace_id=workspace.pk, days=days, now=now)
    return result


@contextmanager
def _pg_cursor() -> Iterator[psycopg.Cursor]:
    """A psycopg 3 cursor with server-side parameter binding (arrays travel as binary parameters, not as SQL
    literals built in Python) on Django's connection, inside its transaction; errors become django.db errors
    (so an unreachable database still answers 503)."""
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def usage_days_mark_dirty(*, workspace_id: int, days: Iterable[date], now: datetime) -> None:
    """Mark (workspace, UTC day) pairs for the rollups; a day already marked gets its version bumped."""
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
    """usage_days_mark_dirty followed by COMMIT, sent as one simple-protocol message (client-side binding)."""
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
    alert_pipelines: bool  # the workspace has an enabled event-driven alert pipeline


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
    # Whether any enabled event-driven alert pipeline exists, so a workspace without one queues nothing.
    "UNION ALL SELECT 'p', NULL, NULL, NULL, NULL, EXISTS (SELECT 1 FROM usage_alertpipeline ap "
    "WHERE ap.workspace_id = %(ws)s AND ap.enabled AND ap.trigger_type = ANY(%(triggers)s))"
)


def _dimensions_lookup(*, workspace_id: int, events: Sequence[ValidEvent]) -> _Known:
    """Features (taking their counting locks), accounts, end users of a batch and whether the workspace has an
    enabled event-driven alert pipeline, in one round trip."""
    from usage.alerts.triggers import EVENT_TRIGGERS

    known = _Known(features={}, accounts={}, users={}, alert_pipelines=True)
    users = sorted({e.user_key for e in events if e.user_key is not None})
    params = {
        "ws": workspace_id,
        "lock": ALLOWANCE_COUNTING_LOCK_PREFIX,
        "slots": ALLOWANCE_COUNTING_LOCK_SLOTS,
        "features": sorted({e.feature_key for e in events}),
        "accounts": sorted({e.account_key for e in events}),
        "users": users or [""],
        "triggers": [str(trigger) for trigger in EVENT_TRIGGERS],
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
                known.alert_pipelines = bool(flag)
    return known


# ---------------------------------------------------------------------------
# Catalog: products > modules > features, registered on first sight within the workspace's caps
# ---------------------------------------------------------------------------


@dataclass
class _CatalogState:
    products: set[str]
    modules: dict[str, str]  # module key → product key
    features: dict[str, tuple[str, str | None]]  # feature key → (product key, module key)
    feature_ids: dict[str, int]


def _catalog_load(*, workspace_id: int, events: Sequence[ValidEvent]) -> _CatalogState:
    feature_keys = {e.feature_key for e in events}
    module_keys = {e.module_key for e in events if e.module_key}
    product_keys = {e.product_key for e in events if e.product_key} | {DEFAULT_PRODUCT}
    features: dict[str, tuple[str, str | None]] = {}
    feature_ids: dict[str, int] = {}
    for key, pk, product_key, module_key in Feature.objects.filter(
        workspace_id=workspace_id, key__in=feature_keys
    ).values_list("key", "pk", "product__key", "module__key"):
        features[key] = (product_key, module_key)
        feature_ids[key] = pk
    if feature_keys <= features.keys():
        # Every feature exists (the steady state): its own row is enough to check the hierarchy.
        return _CatalogState(products=set(), modules={}, features=features, feature_ids=feature_ids)
    modules = dict(
        Module.objects.filter(workspace_id=workspace_id, key__in=module_keys).values_list("key", "product__key")
    )
    products = set(
        Product.objects.filter(workspace_id=workspace_id, key__in=product_keys).values_list("key", flat=True)
    )
    return _CatalogState(products=products, modules=modules, features=features, feature_ids=feature_ids)


@dataclass
class _CatalogPlan:
    placement: dict[int, str] = field(default_factory=dict)  # event index → feature key (existing or planned)
    rejected: list[Rejection] = field(default_factory=list)
    new_products: list[str] = field(default_factory=list)
    new_modules: dict[str, str] = field(default_factory=dict)
    new_features: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    @property
    def needs_registration(self) -> bool:
        return bool(self.new_products or self.new_modules or self.new_features)


def _catalog_plan(
    *, events: Sequence[ValidEvent], state: _CatalogState, budgets: dict[str, int] | None, register: bool
) -> _CatalogPlan:
    """Place every event's feature in the hierarchy, in batch order; plan what must be registered.

    `budgets` (free slots per kind) is None when only asking whether anything new is needed.
    """
    plan = _CatalogPlan()
    products = set(state.products)
    modules = dict(state.modules)
    features = dict(state.features)

    def reject(event: ValidEvent, code: str, message: str, field_name: str) -> None:
        plan.rejected.append(Rejection(index=event.index, code=code, message=message, field=field_name))

    for event in events:
        placed = features.get(event.feature_key)
        if placed is not None:
            product_key, module_key = placed
            if event.product_key is not None and event.product_key != product_key:
                reject(
                    event,
                    Code.HIERARCHY_CONFLICT,
                    f"Feature '{event.feature_key}' belongs to product '{product_key}', not '{event.product_key}'.",
                    "product_id",
                )
            elif event.module_key is not None and event.module_key != module_key:
                where = f"module '{module_key}'" if module_key else "no module"
                reject(
                    event,
                    Code.HIERARCHY_CONFLICT,
                    f"Feature '{event.feature_key}' belongs to {where}, not module '{event.module_key}'.",
                    "module_id",
                )
            else:
                plan.placement[event.index] = event.feature_key
            continue
        if not register:
            reject(event, UNKNOWN_FEATURE, f"No feature '{event.feature_key}' in this workspace.", "feature_id")
            continue
        # A new feature: it goes under the named module (whose product it inherits) and product.
        module_key = event.module_key
        if module_key is not None and module_key in modules:
            product_key = modules[module_key]
            if event.product_key is not None and event.product_key != product_key:
                reject(
                    event,
                    Code.HIERARCHY_CONFLICT,
                    f"Module '{module_key}' belongs to product '{product_key}', not '{event.product_key}'.",
                    "module_id",
                )
                continue
        else:
            product_key = event.product_key or DEFAULT_PRODUCT
        need_product = product_key not in products
        need_module = module_key is not None and module_key not in modules
        if budgets is not None:
            if need_product and budgets["products"] <= 0:
                reject(
                    event,
                    Code.PRODUCT_CAP_REACHED,
                    f"Product '{product_key}' cannot be registered: the workspace has reached its cap of "
                    "products "
                    "(max_products).",
                    "product_id",
                )
                continue
            if need_module and budgets["modules"] <= 0:
                reject(
                    event,
                    Code.MODULE_CAP_REACHED,
                    f"Module '{module_key}' cannot be registered: the workspace has reached its cap of "
                    "modules "
                    "(max_modules).",
                    "module_id",
                )
                continue
            if budgets["features"] <= 0:
                reject(
                    event,
                    Code.FEATURE_CAP_REACHED,
                    f"Feature '{event.feature_key}' cannot be registered: the workspace has reached its cap "
                    "of "
                    "features (max_features).",
                    "feature_id",
                )
                continue
            budgets["products"] -= need_product
            budgets["modules"] -= need_module
            budgets["features"] -= 1
        if need_product:
            products.add(product_key)
            plan.new_products.append(product_key)
        if need_module:
            modules[module_key] = product_key
            plan.new_modules[module_key] = product_key
        features[event.feature_key] = (product_key, module_key)
        plan.new_features[event.feature_key] = (product_key, module_key)
        plan.placement[event.index] = event.feature_key
    return plan


def _catalog_resolve(
    *, workspace: Workspace, events: Sequence[ValidEvent], register: bool, known: _Known | None = None
) -> tuple[dict[int, int], list[Rejection]]:
    """Return event index → feature id for placeable events, and the rejections of the others."""
    if known is not None and {e.feature_key for e in events} <= known.features.keys():
        state = _CatalogState(
            products=set(),
            modules={},
            features={key: (product, module) for key, (_, product, module) in known.features.items()},
            feature_ids={key: pk for key, (pk, _, _) in known.features.items()},
        )
    else:
        state = _catalog_load(workspace_id=workspace.pk, events=events)
    plan = _catalog_plan(events=events, state=state, budgets=None, register=register)
    if plan.needs_registration:
        # Serialise registration per workspace (as catalog.services does) so caps hold; NO KEY UPDATE does not
        # block concurrent batches that only reference the workspace row.
        locked = Workspace.objects.select_for_update(no_key=True).get(pk=workspace.pk)
        state = _catalog_load(workspace_id=workspace.pk, events=events)
        budgets = {
            "products": locked.max_products - Product.objects.filter(workspace_id=workspace.pk).count(),
            "modules": locked.max_modules - Module.objects.filter(workspace_id=workspace.pk).count(),
            "features": locked.max_features - Feature.objects.filter(workspace_id=workspace.pk).count(),
        }
        plan = _catalog_plan(events=events, state=state, budgets=budgets, register=register)
        if plan.needs_registration:
            state.feature_ids.update(_catalog_register(workspace_id=workspace.pk, plan=plan))
    return {index: state.feature_ids[key] for index, key in plan.placement.items()}, plan.rejected


def _catalog_register(*, workspace_id: int, plan: _CatalogPlan) -> dict[str, int]:
    """Create the planned products, modules and draft features; return the new features' ids by key."""
    version = next_resource_version(0)
    if plan.new_products:
        Product.objects.bulk_create(
            [
                Product(workspace_id=workspace_id, key=key, name=key, resource_version=version)
                for key in plan.new_products
            ],
            ignore_conflicts=True,
        )
    product_keys = {p for p, _ in plan.new_features.values()} | set(plan.new_modules.values())
    product_ids = dict(Product.objects.filter(workspace_id=workspace_id, key__in=product_keys).values_list("key", "pk"))
    if plan.new_modules:
        Module.objects.bulk_create(
            [
                Module(
                    workspace_id=workspace_id,
                    product_id=product_ids[product_key],
                    key=key,
                    name=key,
                    resource_version=version,
                )
                for key, product_key in plan.new_modules.items()
            ],
            ignore_conflicts=True,
        )
    module_keys = {m for _, m in plan.new_features.values() if m}
    module_ids = dict(Module.objects.filter(workspace_id=workspace_id, key__in=module_keys).values_list("key", "pk"))
    created: dict[str, int] = {}
    pending = dict(plan.new_features)
    for _attempt in range(5):
        names = _feature_names(workspace_id=workspace_id, keys=list(pending))
        Feature.objects.bulk_create(
            [
                Feature(
                    workspace_id=workspace_id,
                    product_id=product_ids[product_key],
                    module_id=module_ids[module_key] if module_key else None,
                    key=key,
                    name=names[key],
                    status=Lifecycle.DRAFT,
                    resource_version=version,
                )
                for key, (product_key, module_key) in pending.items()
            ],
            ignore_conflicts=True,
        )
        found = dict(Feature.objects.filter(workspace_id=workspace_id, key__in=list(pending)).values_list("key", "pk"))
        created.update(found)
        pending = {key: place for key, place in pending.items() if key not in found}
        if not pending:
            return created
    raise RuntimeError(f"Could not register features {sorted(pending)}: their names kept being taken.")


def _feature_names(*, workspace_id: int, keys: list[str]) -> dict[str, str]:
    """A new feature is named after its key; if another feature has that name, `key (2)`, `key (3)`, …"""
    candidates = {key: [key] + [f"{key} ({n})" for n in range(2, 12)] for key in keys}
    wanted = [name for names in candidates.values() for name in names]
    taken = set(Feature.objects.filter(workspace_id=workspace_id, name__in=wanted).values_list("name", flat=True))
    chosen: dict[str, str] = {}
    for key in sorted(keys):
        for name in candidates[key]:
            if name not in taken:
                break
        else:
            n = 12
            while (
                f"{key} ({n})" in taken
                or Feature.objects.filter(workspace_id=workspace_id, name=f"{key} ({n})").exists()
            ):
                n += 1
            name = f"{key} ({n})"
        taken.add(name)
        chosen[key] = name
    return chosen


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
    "feature_id bigint, occurred_at timestamptz, quantity bigint, event_id varchar(128), properties jsonb) "
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
