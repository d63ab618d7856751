"""Management commands: create_workspace, create_api_key, revoke_api_key, seed_demo."""

import hashlib
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from accounts.models import Account, ApiKey, EndUser, Membership, Workspace
from accounts.services import api_key_hash
from catalog.models import Feature, Item, Module, Product

# The foundation's steps; later steps (subscriptions, 90 days of usage) are slow and tested by their apps.
FOUNDATION = ("--steps", "catalog,accounts", "--verbosity", "0")


def run(*args: str) -> list[str]:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue().splitlines()


# ---------------------------------------------------------------------------------------------------------
# create_workspace
# ---------------------------------------------------------------------------------------------------------


def test_create_workspace_defaults_to_paid(db):
    # when
    lines = run("create_workspace", "initech", "--name", "Initech")
    # then
    assert lines == ["Created workspace 'Initech' (paid).", "initech"]
    assert list(Workspace.objects.values_list("slug", "name", "tier", "timezone")) == [
        ("initech", "Initech", "paid", "UTC")
    ]


def test_create_workspace_free_tier(db):
    # when
    lines = run("create_workspace", "hooli", "--tier", "free", "--timezone", "Europe/Berlin")
    # then
    assert lines[-1] == "hooli"
    assert list(Workspace.objects.values_list("slug", "name", "tier", "timezone")) == [
        ("hooli", "hooli", "free", "Europe/Berlin")
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Bad Slug"], "'Bad Slug' is not a valid slug: use lowercase letters, digits, hyphens and underscores."),
        (["UPPER"], "'UPPER' is not a valid slug: use lowercase letters, digits, hyphens and underscores."),
        (["ok", "--tier", "gold"], "Unknown tier 'gold': use free or paid."),
        (["ok", "--timezone", "Mars/Olympus"], "Unknown time zone 'Mars/Olympus'."),
    ],
)
def test_create_workspace_refuses_bad_input_and_creates_nothing(db, args, message):
    # when
    with pytest.raises(CommandError) as err:
        run("create_workspace", *args)
    # then
    assert str(err.value) == message
    assert Workspace.objects.count() == 0


def test_create_workspace_refuses_a_duplicate_slug(workspace):
    # when
    with pytest.raises(CommandError) as err:
        run("create_workspace", "acme", "--name", "Other Acme")
    # then
    assert str(err.value) == "A workspace with slug 'acme' already exists."
    assert list(Workspace.objects.values_list("slug", "name")) == [("acme", "Acme Inc.")]


# ---------------------------------------------------------------------------------------------------------
# create_api_key and revoke_api_key
# ---------------------------------------------------------------------------------------------------------


def test_create_api_key_prints_the_key_alone_on_the_last_line(workspace):
    # when
    lines = run("create_api_key", "acme", "--scopes", "ingest,read")
    # then
    raw = lines[-1]
    api_key = ApiKey.objects.get()
    assert raw.startswith(f"upt_{api_key.prefix}_") and " " not in raw
    assert api_key.key_hash == hashlib.sha256(raw.encode()).hexdigest() == api_key_hash(raw)
    assert api_key.scopes == ["ingest", "read"]
    assert api_key.workspace_id == workspace.pk
    assert api_key.expires_at is None


def test_create_api_key_with_expiry(workspace):
    # when
    run("create_api_key", "acme", "--scopes", "admin", "--expires-in-days", "30", "--name", "ci")
    # then
    api_key = ApiKey.objects.get()
    assert (api_key.name, api_key.scopes) == ("ci", ["admin"])
    assert (api_key.expires_at - api_key.created_at).days in (29, 30)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["acme", "--scopes", "read,write"], "Unknown scope(s): write. Valid scopes: ingest, read, admin."),
        (["acme", "--scopes", ","], "At least one scope is required: ingest, read, admin."),
        (["nope", "--scopes", "read"], "No workspace with slug 'nope'."),
        (
            ["acme", "--scopes", "read", "--expires-in-days", "0"],
            "--expires-in-days must be a positive number of days.",
        ),
    ],
)
def test_create_api_key_refuses_bad_input_and_creates_nothing(workspace, args, message):
    # when
    with pytest.raises(CommandError) as err:
        run("create_api_key", *args)
    # then
    assert str(err.value) == message
    assert ApiKey.objects.count() == 0


def test_revoke_api_key_by_prefix_or_full_key(workspace):
    # given
    first_raw = run("create_api_key", "acme", "--scopes", "read")[-1]
    second_raw = run("create_api_key", "acme", "--scopes", "read")[-1]
    first, second = (ApiKey.objects.get(prefix=raw.split("_")[1]) for raw in (first_raw, second_raw))
    # when
    by_prefix = run("revoke_api_key", "acme", first.prefix)
    run("revoke_api_key", "acme", second_raw)
    # then
    first.refresh_from_db()
    second.refresh_from_db()
    assert by_prefix == [f"Revoked key {first.prefix} at {first.revoked_at.isoformat()}."]
    assert first.revoked_at is not None and second.revoked_at is not None


@pytest.mark.parametrize(
    ("slug", "key", "message"),
    [
        ("acme", "000000000000", "No API key with prefix '000000000000' in workspace 'acme'."),
        ("nope", "000000000000", "No workspace with slug 'nope'."),
    ],
)
def test_revoke_api_key_refuses_unknown_keys_and_workspaces(workspace, slug, key, message):
    # given
    run("create_api_key", "acme", "--scopes", "read")
    # when
    with pytest.raises(CommandError) as err:
        run("revoke_api_key", slug, key)
    # then
    assert str(err.value) == message
    assert ApiKey.objects.filter(revoked_at__isnull=False).count() == 0


def test_revoke_api_key_of_another_workspace_is_refused(workspace, other_workspace):
    # given
    raw = run("create_api_key", "globex", "--scopes", "read")[-1]
    # when
    with pytest.raises(CommandError, match="No API key with prefix"):
        run("revoke_api_key", "acme", raw)
    # then
    assert ApiKey.objects.get().revoked_at is None


# ---------------------------------------------------------------------------------------------------------
# seed_demo
# ---------------------------------------------------------------------------------------------------------


def _demo_digest() -> str:
    """Everything seed_demo decides (not timestamps or database ids), as one SHA-256."""
    parts = [
        list(Product.objects.order_by("key").values_list("key", "name")),
        list(Module.objects.order_by("key").values_list("key", "name", "product__key")),
        list(
            Feature.objects.order_by("key").values_list(
                "key", "name", "status", "type", "unit", "metered", "reset_period", "reset_anchor", "module__key"
            )
        ),
        sorted(Feature.objects.values_list("key", "levels__position", "levels__value", "levels__is_unlimited")),
        list(Item.objects.order_by("key").values_list("key", "name", "type", "status")),
        list(
            Account.objects.order_by("external_id").values_list(
                "external_id", "name", "domain", "plan", "owner__username", "status", "attributes"
            )
        ),
        list(
            EndUser.objects.order_by("account__external_id", "external_id").values_list(
                "account__external_id", "external_id", "email", "attributes"
            )
        ),
    ]
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _wipe_demo() -> None:
    Feature.objects.all().delete()
    Workspace.objects.all().delete()
    get_user_model().objects.all().delete()


def test_seed_demo_builds_a_realistic_workspace(db):
    # when
    lines = run("seed_demo", "--seed", "3", *FOUNDATION)
    # then
    workspace = Workspace.objects.get()
    assert (workspace.slug, workspace.tier, workspace.timezone) == ("demo", "paid", "Europe/Berlin")
    assert lines[-1].startswith("Demo workspace 'demo' ready in ")
    assert lines[-1].endswith("Log in as demo / demo-password.")
    assert (Product.objects.count(), Module.objects.count(), Feature.objects.count()) == (4, 10, 62)
    assert set(Feature.objects.values_list("status", flat=True)) == {"draft", "active", "archived"}
    assert set(Feature.objects.values_list("type", flat=True)) == {"switch", "custom", "quantity", "range"}
    assert Feature.objects.filter(metered=True).exclude(reset_period="none").count() == 8
    assert set(Item.objects.filter(type="plan").values_list("key", flat=True)) == {
        "free",
        "team",
        "business",
        "enterprise",
    }
    assert Account.objects.count() == 200
    per_account = [account.users.count() for account in Account.objects.all()]
    assert min(per_account) >= 1 and max(per_account) <= 5
    demo = get_user_model().objects.get(username="demo")
    assert demo.is_superuser and demo.is_staff and demo.check_password("demo-password")
    assert Membership.objects.filter(workspace=workspace, role="manager").count() == 4
    assert Account.objects.filter(owner__isnull=False).exclude(owner__memberships__workspace=workspace).count() == 0


def test_seed_demo_is_deterministic_under_a_seed(db):
    # given
    run("seed_demo", "--seed", "11", *FOUNDATION)
    first = _demo_digest()
    _wipe_demo()
    # when
    run("seed_demo", "--seed", "11", *FOUNDATION)
    second = _demo_digest()
    _wipe_demo()
    run("seed_demo", "--seed", "12", *FOUNDATION)
    other_seed = _demo_digest()
    # then
    assert first == second
    assert other_seed != first


def test_seed_demo_if_empty_does_nothing_when_a_workspace_exists(workspace):
    # when
    lines = run("seed_demo", "--if-empty")
    # then
    assert lines == ["The database already has workspaces: seed_demo --if-empty leaves it as it is."]
    assert list(Workspace.objects.values_list("slug", flat=True)) == ["acme"]
    assert Account.objects.count() == 0


def test_seed_demo_if_empty_seeds_an_empty_database(db):
    # when
    run("seed_demo", "--if-empty", *FOUNDATION)
    # then
    assert list(Workspace.objects.values_list("slug", flat=True)) == ["demo"]
    assert Account.objects.count() == 200


def test_seed_demo_refuses_to_seed_twice(db):
    # given
    run("seed_demo", *FOUNDATION)
    before = _demo_digest()
    # when
    with pytest.raises(CommandError) as err:
        run("seed_demo", *FOUNDATION)
    # then
    assert str(err.value) == (
        "Workspace 'demo' already exists; seed_demo only seeds a database without it (use --if-empty to skip quietly)."
    )
    assert _demo_digest() == before
    assert Workspace.objects.count() == 1


def test_seed_demo_steps_limit_what_is_seeded(db):
    # when
    run("seed_demo", "--steps", "catalog", "--verbosity", "0")
    # then
    assert (Workspace.objects.count(), Feature.objects.count(), Account.objects.count()) == (1, 62, 0)


def test_seed_demo_refuses_an_unknown_step_and_seeds_nothing(db):
    # when
    with pytest.raises(CommandError) as err:
        run("seed_demo", "--steps", "catalog,billing")
    # then
    assert str(err.value).startswith("Unknown step(s): billing. Steps: workspace, catalog, accounts")
    assert Workspace.objects.count() == 0
