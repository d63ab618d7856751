"""Tenancy and identities: workspaces, staff memberships, API keys, customer accounts and their end users."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import Q
from django.db.models.functions import Upper

from core.staff import StaffRole

# Customer account and end-user ids as the vendor sends them (events, records, checks, PUT /accounts).
EXTERNAL_ID_MAX_LENGTH = 64

DEFAULT_RESERVED_PREFIXES = ["license.", "update.", "release.", "product.", "site."]


def default_reserved_prefixes() -> list[str]:
    return list(DEFAULT_RESERVED_PREFIXES)


class Workspace(models.Model):
    """A tenant. Every other object belongs to exactly one workspace."""

    class Tier(models.TextChoices):
        FREE = "free", "Free"
        PAID = "paid", "Paid"

    class LateEventPolicy(models.TextChoices):
        WINDOW = "window", "Accept events up to the window's age"
        REJECT_BACKDATED = "reject_backdated", "Accept only today's UTC date"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    tier = models.CharField(max_length=8, choices=Tier.choices, default=Tier.PAID)
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA zone used for heatmaps.")
    max_features = models.PositiveIntegerField(default=400)
    max_modules = models.PositiveIntegerField(default=256)
    max_products = models.PositiveIntegerField(default=64)
    late_event_policy = models.CharField(max_length=16, choices=LateEventPolicy.choices, default=LateEventPolicy.WINDOW)
    late_event_window_days = models.PositiveIntegerField(default=35)
    reserved_prefixes = ArrayField(
        models.CharField(max_length=64),
        default=default_reserved_prefixes,
        blank=True,
        help_text="Events whose feature key starts with one of these are stored but left out of analytics.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=Q(tier__in=["free", "paid"]), name="accounts_workspace_tier_valid"),
            models.CheckConstraint(
                condition=Q(late_event_policy__in=["window", "reject_backdated"]),
                name="accounts_workspace_late_policy_valid",
            ),
            models.CheckConstraint(
                condition=Q(late_event_window_days__gte=1), name="accounts_workspace_window_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.slug

    @property
    def is_paid(self) -> bool:
        return self.tier == self.Tier.PAID


class Membership(models.Model):
    """A staff user's role in one workspace."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=8, choices=StaffRole.choices, default=StaffRole.VIEWER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "user"], name="accounts_membership_unique_user"),
            models.CheckConstraint(condition=Q(role__in=StaffRole.values), name="accounts_membership_role_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.workspace} ({self.role})"


class ApiKey(models.Model):
    """An API key. The secret is shown once; only its prefix and SHA-256 hash are stored."""

    class Scope(models.TextChoices):
        INGEST = "ingest", "Ingest"
        READ = "read", "Read"
        ADMIN = "admin", "Admin"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64)
    scopes = ArrayField(models.CharField(max_length=8), default=list)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(scopes__contained_by=["ingest", "read", "admin"]) & ~Q(scopes=[]),
                name="accounts_apikey_scopes_valid",
            ),
            models.CheckConstraint(condition=Q(key_hash__regex=r"^[0-9a-f]{64}$"), name="accounts_apikey_hash_hex"),
        ]

    def __str__(self) -> str:
        return f"{self.prefix}… ({', '.join(self.scopes)})"


# The account columns the dashboard's search matches, with the short name their indexes carry.
SEARCHED_COLUMNS = {"name": "acct_name", "domain": "acct_domain", "external_id": "acct_extid"}


class Account(models.Model):
    """A customer company of the workspace, named by the vendor's external id."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        CHURNED = "churned", "Churned"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="accounts")
    external_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    name = models.CharField(max_length=200, blank=True)
    domain = models.CharField(max_length=253, blank=True)
    plan = models.CharField(max_length=100, blank=True, help_text="Plan label as the vendor names it.")
    # A database default too: writers that predate the column (an older release during a deploy) still insert.
    customer_email = models.EmailField(
        blank=True, default="", db_default="", help_text="The customer's billing contact."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_accounts"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)
    attributes = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["external_id"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "external_id"], name="accounts_account_unique_external_id"),
            models.CheckConstraint(condition=Q(status__in=["active", "churned"]), name="accounts_account_status_valid"),
            models.CheckConstraint(condition=~Q(external_id=""), name="accounts_account_external_id_not_empty"),
        ]
        indexes = [
            models.Index(fields=["workspace", "domain"], name="accounts_account_domain_idx"),
            # Search (accounts.selectors.account_search): trigram GIN indexes answer case-insensitive substrings of
            # three characters or more; the pattern-ops b-trees answer the prefixes of shorter queries.
            *[
                GinIndex(OpClass(Upper(column), name="gin_trgm_ops"), name=f"accounts_{short}_trgm")
                for column, short in SEARCHED_COLUMNS.items()
            ],
            *[
                models.Index(OpClass(Upper(column), name="text_pattern_ops"), name=f"accounts_{short}_prefix")
                for column, short in SEARCHED_COLUMNS.items()
            ],
        ]

    def __str__(self) -> str:
        return self.name or self.external_id


class EndUser(models.Model):
    """A person at a customer account. User ids are scoped to their account."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="end_users")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="users")
    external_id = models.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    email = models.EmailField(blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["external_id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "external_id"], name="accounts_enduser_unique_external_id"),
            models.CheckConstraint(condition=~Q(external_id=""), name="accounts_enduser_external_id_not_empty"),
        ]

    def __str__(self) -> str:
        return self.email or self.external_id
