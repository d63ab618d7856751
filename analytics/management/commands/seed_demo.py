"""`manage.py seed_demo [--seed N] [--if-empty]`: a realistic demo workspace, deterministic under --seed.

The command lives in analytics, the top layer, because it seeds every app. Each app contributes
`seed_<app>(*, ctx: DemoContext) -> None` functions in its `demo.py`; STEPS lists them in order, so adding
a step is one line. A step reads what earlier steps made from `ctx.data` and draws randomness only from
`ctx.rng("<step>")`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from accounts.demo import DEMO_PASSWORD, DEMO_SLUG, DEMO_USERNAME, DemoContext, seed_accounts, seed_workspace
from accounts.models import Workspace
from analytics.demo import seed_analytics
from catalog.demo import seed_catalog
from entitlements.demo import seed_entitlements

STEPS: list[Callable[..., None]] = [
    seed_workspace,
    seed_catalog,
    seed_accounts,
    seed_entitlements,
    seed_analytics,
]


def step_name(step: Callable[..., None]) -> str:
    return step.__name__.removeprefix("seed_")


def _choose_steps(raw: str) -> list[Callable[..., None]]:
    """STEPS in their order, limited to the named ones (the first step, the workspace, always runs)."""
    names = {name.strip() for name in raw.split(",") if name.strip()}
    if not names:
        return list(STEPS)
    known = {step_name(step) for step in STEPS}
    unknown = sorted(names - known)
    if unknown:
        raise CommandError(
            f"Unknown step(s): {', '.join(unknown)}. Steps: {', '.join(step_name(step) for step in STEPS)}."
        )
    return [step for index, step in enumerate(STEPS) if index == 0 or step_name(step) in names]


class Command(BaseCommand):
    help = "Create the demo workspace 'demo' with its catalog, accounts and logins (deterministic under --seed)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42); same seed, same data")
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when the database already has a workspace"
        )
        parser.add_argument(
            "--steps",
            default="",
            help="comma-separated steps to run (default: all): "
            + ", ".join(step_name(step) for step in STEPS)
            + "; 'workspace' always runs",
        )

    def handle(self, *args, seed: int, if_empty: bool, steps: str = "", **options) -> None:
        chosen = _choose_steps(steps)
        if if_empty and Workspace.objects.exists():
            self.stdout.write("The database already has workspaces: seed_demo --if-empty leaves it as it is.")
            return
        if Workspace.objects.filter(slug=DEMO_SLUG).exists():
            raise CommandError(
                f"Workspace '{DEMO_SLUG}' already exists; seed_demo only seeds a database without it "
                "(use --if-empty to skip quietly)."
            )
        show_progress = options.get("verbosity", 1) >= 1
        ctx = DemoContext(
            seed=seed,
            now=timezone.now(),
            progress=lambda iterable, **kw: tqdm(iterable, disable=not show_progress, leave=False, **kw),
            log=lambda message: self.stdout.write(f"  {message}"),
        )
        started = time.monotonic()
        self.stdout.write(f"Seeding demo data (seed {seed})…")
        with transaction.atomic():
            for step in chosen:
                step(ctx=ctx)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo workspace '{DEMO_SLUG}' ready in {time.monotonic() - started:.1f}s. "
                f"Log in as {DEMO_USERNAME} / {DEMO_PASSWORD}."
            )
        )
