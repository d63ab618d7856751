"""`manage.py rebuild_rollups [--workspace SLUG] [--since DATE] [--until DATE] [--connections N]`: recompute
from raw events."""

import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Workspace
from analytics.services import REBUILD_CONNECTIONS, rollups_rebuild


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"'{value}' is not a date: use YYYY-MM-DD.") from exc


class Command(BaseCommand):
    help = "Recompute analytics rollups from raw events (set-based SQL over the whole range at once)."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", help="Slug of one workspace (default: every workspace).")
        parser.add_argument("--since", help="First UTC day to recompute (YYYY-MM-DD).")
        parser.add_argument("--until", help="Last UTC day to recompute (YYYY-MM-DD).")
        parser.add_argument(
            "--connections",
            type=int,
            default=REBUILD_CONNECTIONS,
            help=f"Database sessions that build a full rebuild's tables at once (default {REBUILD_CONNECTIONS}).",
        )

    def handle(self, *args, workspace=None, since=None, until=None, connections=REBUILD_CONNECTIONS, **options):
        since_day = _date(since) if since else None
        until_day = _date(until) if until else None
        if since_day and until_day and until_day < since_day:
            raise CommandError(f"--until ({until_day}) is before --since ({since_day}).")
        if connections < 1:
            raise CommandError("--connections must be at least 1.")
        workspaces = Workspace.objects.order_by("slug")
        if workspace:
            workspaces = workspaces.filter(slug=workspace)
            if not workspaces.exists():
                raise CommandError(f"No workspace '{workspace}'.")
        for ws in workspaces:
            started = time.perf_counter()
            rollups_rebuild(workspace_id=ws.pk, since=since_day, until=until_day, connections=connections)
            self.stdout.write(f"{ws.slug}: rebuilt in {time.perf_counter() - started:.2f} s")
