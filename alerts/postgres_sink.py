"""PostgreSQL destination: each delivery becomes one row of the user's table, created if missing, inserted
idempotently (the delivery id is the primary key: a retried delivery inserts nothing new). The connection goes
to the address the policy checked (`hostaddr`), with a short connect timeout; the connection URL's password is
never logged or shown.

The table's schema (documented in the README):
delivery_id bigint primary key, pipeline text, trigger text, event text, account_id text, account_name text,
plan text, owner text, feature text, quantity bigint, occurred_at timestamptz, payload jsonb,
created_at timestamptz default now().
"""

from __future__ import annotations

from urllib.parse import urlsplit

import psycopg
from django.conf import settings
from psycopg import sql
from psycopg.types.json import Jsonb

from .outbound_hooks import channel_host_address

_CREATE = """CREATE TABLE IF NOT EXISTS {table} (
    delivery_id bigint PRIMARY KEY,
    pipeline text,
    trigger text,
    event text,
    account_id text,
    account_name text,
    plan text,
    owner text,
    feature text,
    quantity bigint,
    occurred_at timestamptz,
    payload jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)"""
_INSERT = """INSERT INTO {table} (delivery_id, pipeline, trigger, event, account_id, account_name, plan, owner,
    feature, quantity, occurred_at, payload)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (delivery_id) DO NOTHING"""


def table_identifier(table: str) -> sql.Identifier:
    return sql.Identifier(*table.split("."))


def postgres_row(*, delivery_id: int, payload: dict) -> tuple:
    """The row of one delivery, in the column order of the INSERT."""
    account = payload.get("account") or {}
    feature = payload.get("feature") or {}
    details = payload.get("details") or {}
    pipeline = payload.get("pipeline") or {}
    quantity = details.get("quantity")
    return (
        delivery_id,
        pipeline.get("name"),
        payload.get("trigger"),
        payload.get("event"),
        account.get("id"),
        account.get("name"),
        account.get("plan"),
        account.get("owner"),
        feature.get("id"),
        quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else None,
        details.get("occurred_at") or payload.get("occurred_at"),
        Jsonb(payload),
    )


def postgres_connect_kwargs(url: str) -> dict:
    """psycopg connection arguments: the URL, plus `hostaddr` = the checked address of its host."""
    parts = urlsplit(url)
    address = channel_host_address(parts.hostname or "", parts.port or 5432)
    return {
        "conninfo": url,
        "hostaddr": address,
        "connect_timeout": max(1, int(settings.UPTAKE_ALERT_HTTP_TIMEOUT_SECONDS)),
        "application_name": "uptake-alerts",
    }


def postgres_write(*, url: str, table: str, delivery_id: int, payload: dict) -> bool:
    """Create the table if missing and insert the delivery's row; True when a row was inserted (False: it was
    already there). Raises psycopg errors and HostUnresolved."""
    identifier = table_identifier(table)
    with psycopg.connect(**postgres_connect_kwargs(url), autocommit=True) as conn:
        conn.execute(sql.SQL(_CREATE).format(table=identifier))
        cursor = conn.execute(
            sql.SQL(_INSERT).format(table=identifier), postgres_row(delivery_id=delivery_id, payload=payload)
        )
        return cursor.rowcount == 1
