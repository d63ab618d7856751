"""Database guards: catalog keys never change, and lifecycle statuses move only along
draft → active → archived → active (the table in catalog.models.LIFECYCLE_MOVES), whatever path writes."""

from django.db import migrations

TABLES_WITH_KEYS = ["catalog_product", "catalog_module", "catalog_feature", "catalog_item"]
TABLES_WITH_LIFECYCLE = ["catalog_feature", "catalog_item"]

FUNCTIONS = """
CREATE OR REPLACE FUNCTION catalog_guard_key() RETURNS trigger AS $$
BEGIN
    IF NEW.key IS DISTINCT FROM OLD.key THEN
        RAISE EXCEPTION 'catalog keys are immutable: % cannot become %', OLD.key, NEW.key
            USING ERRCODE = 'check_violation', CONSTRAINT = TG_TABLE_NAME || '_key_immutable';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION catalog_guard_lifecycle() RETURNS trigger AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
        (OLD.status = 'draft' AND NEW.status = 'active')
        OR (OLD.status = 'active' AND NEW.status = 'archived')
        OR (OLD.status = 'archived' AND NEW.status = 'active')
    ) THEN
        RAISE EXCEPTION 'lifecycle move % -> % is not allowed for %', OLD.status, NEW.status, OLD.key
            USING ERRCODE = 'check_violation', CONSTRAINT = TG_TABLE_NAME || '_lifecycle_move';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
"""


def forward_sql() -> str:
    sql = [FUNCTIONS]
    for table in TABLES_WITH_KEYS:
        sql.append(
            f"CREATE TRIGGER {table}_key_immutable BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION catalog_guard_key();"
        )
    for table in TABLES_WITH_LIFECYCLE:
        sql.append(
            f"CREATE TRIGGER {table}_lifecycle_move BEFORE UPDATE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION catalog_guard_lifecycle();"
        )
    return "\n".join(sql)


def reverse_sql() -> str:
    sql = [f"DROP TRIGGER IF EXISTS {t}_key_immutable ON {t};" for t in TABLES_WITH_KEYS]
    sql += [f"DROP TRIGGER IF EXISTS {t}_lifecycle_move ON {t};" for t in TABLES_WITH_LIFECYCLE]
    sql += ["DROP FUNCTION IF EXISTS catalog_guard_key();", "DROP FUNCTION IF EXISTS catalog_guard_lifecycle();"]
    return "\n".join(sql)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [migrations.RunSQL(forward_sql(), reverse_sql())]
