"""Demo data for tenancy: the demo workspace, its logins and ~200 customer accounts with their end users.

`DemoContext` is shared by every app's `seed_<app>()` step (see analytics/management/commands/seed_demo.py).
Each step draws from its own `ctx.rng(name)`, derived from the seed and the step's name, so adding a step
never changes what the others generate.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction

from core.staff import StaffRole

from .models import Account, EndUser, Workspace
from .services import membership_set, workspace_create

T = TypeVar("T")

DEMO_SLUG = "demo"
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-password"


@dataclass
class DemoContext:
    """What seeding steps share: the seed, the clock, the workspace, a progress bar and named results."""

    seed: int
    now: datetime
    progress: Callable[..., Iterable] = lambda iterable, **kwargs: iterable
    log: Callable[[str], None] = lambda message: None
    workspace: Workspace | None = None
    # Results of earlier steps by name ("staff", "features", "items", "accounts", ...).
    data: dict[str, Any] = field(default_factory=dict)

    def rng(self, step: str) -> random.Random:
        return random.Random(f"uptake-demo:{self.seed}:{step}")

    def track(self, iterable: Iterable[T], *, desc: str, total: int | None = None) -> Iterator[T]:
        yield from self.progress(iterable, desc=desc, total=total)


# ---------------------------------------------------------------------------------------------------------
# Workspace and logins
# ---------------------------------------------------------------------------------------------------------

CSMS = [
    ("anna.keller", "Anna", "Keller"),
    ("jonas.weber", "Jonas", "Weber"),
    ("maria.rossi", "Maria", "Rossi"),
    ("sam.okafor", "Sam", "Okafor"),
]


@transaction.atomic
def seed_workspace(*, ctx: DemoContext) -> None:
    """The demo workspace, the demo superuser and customer-success managers with memberships."""
    workspace = workspace_create(
        slug=DEMO_SLUG, name="Demo SaaS GmbH", tier=Workspace.Tier.PAID, timezone_name="Europe/Berlin"
    )
    users = get_user_model().objects
    # One hash for every demo login: hashing is deliberately slow and these passwords are public anyway.
    password = make_password(DEMO_PASSWORD)
    demo, _ = users.get_or_create(
        username=DEMO_USERNAME,
        defaults={"email": "demo@example.com", "is_staff": True, "is_superuser": True, "first_name": "Demo"},
    )
    demo.is_staff = demo.is_superuser = demo.is_active = True
    demo.password = password
    demo.save()
    membership_set(workspace=workspace, user=demo, role=StaffRole.OWNER)
    staff = []
    for username, first, last in CSMS:
        user, _ = users.get_or_create(
            username=username,
            defaults={"email": f"{username}@demo-saas.example", "first_name": first, "last_name": last},
        )
        user.is_staff = True
        user.password = password
        user.save()
        membership_set(workspace=workspace, user=user, role=StaffRole.MANAGER)
        staff.append(user)
    ctx.workspace = workspace
    ctx.data["staff"] = staff
    ctx.log(
        f"workspace '{workspace.slug}' ({workspace.timezone}); login {DEMO_USERNAME} / {DEMO_PASSWORD}; "
        f"{len(staff)} customer-success managers (same password)"
    )


# ---------------------------------------------------------------------------------------------------------
# Customer accounts and end users
# ---------------------------------------------------------------------------------------------------------

_NAME_HEADS = [
    "North",
    "Blue",
    "Iron",
    "Silver",
    "Bright",
    "Cedar",
    "Harbor",
    "Summit",
    "Atlas",
    "Nova",
    "Pioneer",
    "Granite",
    "Falcon",
    "Maple",
    "Orbit",
    "Quantum",
    "River",
    "Sterling",
    "Tidal",
    "Vertex",
    "Willow",
    "Zenith",
    "Apex",
    "Beacon",
    "Coral",
    "Delta",
    "Ember",
    "Fjord",
    "Golden",
    "Helix",
]
_NAME_TAILS = [
    "Logistics",
    "Analytics",
    "Health",
    "Robotics",
    "Media",
    "Foods",
    "Energy",
    "Labs",
    "Systems",
    "Capital",
    "Travel",
    "Studios",
    "Networks",
    "Retail",
    "Bank",
    "Insurance",
    "Mobility",
    "Software",
    "Biotech",
    "Learning",
]
_SUFFIXES = ["", "", "", " GmbH", " Inc.", " Ltd", " AG", " B.V.", " SAS", " Oy"]
_TLDS = ["com", "com", "com", "io", "de", "co.uk", "fr", "nl", "fi", "ch"]
_INDUSTRIES = ["logistics", "healthcare", "fintech", "retail", "media", "manufacturing", "education", "travel"]
_COUNTRIES = ["DE", "US", "GB", "FR", "NL", "FI", "CH", "AT", "SE", "ES"]
_FIRST = [
    "alex",
    "ben",
    "chloe",
    "dana",
    "elif",
    "finn",
    "greta",
    "hugo",
    "ines",
    "jan",
    "kai",
    "lena",
    "mia",
    "noah",
    "olga",
    "paul",
    "rosa",
    "tom",
    "uma",
    "vera",
    "will",
    "yara",
    "zoe",
    "leon",
    "emma",
]
_LAST = [
    "schmidt",
    "martin",
    "jones",
    "dubois",
    "jansen",
    "virtanen",
    "meier",
    "garcia",
    "novak",
    "smith",
    "berg",
    "costa",
    "fischer",
    "kowalski",
    "lind",
    "moreau",
]
# Plan labels with their share of accounts.
PLAN_MIX = [("free", 35), ("team", 30), ("business", 25), ("enterprise", 10)]


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


@transaction.atomic
def seed_accounts(*, ctx: DemoContext, count: int = 200) -> None:
    """~200 customer accounts with realistic names, domains, plans and CSM owners, and 1–5 end users each."""
    rng = ctx.rng("accounts")
    workspace = ctx.workspace
    staff = ctx.data["staff"]
    plans, weights = zip(*PLAN_MIX, strict=True)
    names = rng.sample([f"{head} {tail}" for head in _NAME_HEADS for tail in _NAME_TAILS], count)
    accounts: list[Account] = []
    for index, base in enumerate(ctx.track(names, desc="accounts", total=count)):
        plan = rng.choices(plans, weights)[0]
        first_seen = ctx.now - timedelta(days=rng.randint(30, 720), minutes=rng.randint(0, 1439))
        churned = rng.random() < 0.07
        accounts.append(
            Account(
                workspace=workspace,
                external_id=f"acct_{index + 1:04d}",
                name=base + rng.choice(_SUFFIXES),
                domain=f"{_slug(base)}.{rng.choice(_TLDS)}",
                plan=plan,
                owner=rng.choice(staff) if plan != "free" or rng.random() < 0.2 else None,
                status=Account.Status.CHURNED if churned else Account.Status.ACTIVE,
                attributes={
                    "industry": rng.choice(_INDUSTRIES),
                    "country": rng.choice(_COUNTRIES),
                    "employees": rng.choice([8, 15, 40, 120, 350, 900, 2500, 10000]),
                },
                first_seen_at=first_seen,
                last_seen_at=ctx.now - timedelta(days=rng.randint(0, 60) if not churned else rng.randint(90, 200)),
            )
        )
    Account.objects.bulk_create(accounts, batch_size=500)
    users: list[EndUser] = []
    for account in accounts:
        people = rng.sample([(f, l) for f in _FIRST for l in _LAST], rng.randint(1, 5))  # noqa: E741
        for number, (first, last) in enumerate(people, start=1):
            users.append(
                EndUser(
                    workspace=workspace,
                    account=account,
                    external_id=f"user_{number}",
                    email=f"{first}.{last}@{account.domain}",
                    attributes={"role": rng.choice(["admin", "member", "member", "member", "viewer"])},
                    first_seen_at=account.first_seen_at + timedelta(days=rng.randint(0, 20)),
                    last_seen_at=account.last_seen_at,
                )
            )
    EndUser.objects.bulk_create(users, batch_size=1000)
    ctx.data["accounts"] = accounts
    ctx.log(f"{len(accounts)} accounts, {len(users)} end users")
