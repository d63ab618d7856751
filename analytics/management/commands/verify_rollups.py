"""`manage.py verify_rollups`: compare rollups with raw-event aggregates; exit 1 listing any difference."""

import sys

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Workspace
from analytics.selectors import rollup_differences


class Command(BaseCommand):
    help = "Compare every rollup table with aggregates of raw events. Days still marked dirty are skipped."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", help="Slug of one workspace (default: every workspace).")
        parser.add_argument("--limit", type=int, default=50, help="Differences listed per workspace.")

    def handle(self, *args, workspace=None, limit=50, **options):
        workspaces = Workspace.objects.order_by("slug")
        if workspace:
            workspaces = workspaces.filter(slug=workspace)
            if not workspaces.exists():
                raise CommandError(f"No workspace '{workspace}'.")
        failed = 0
        for ws in workspaces:
            differences, pending = rollup_differences(workspace_id=ws.pk, limit=limit)
            note = f" ({pending} day(s) still pending rollup, skipped)" if pending else ""
            if differences:
                failed += 1
                self.stdout.write(f"{ws.slug}: {len(differences)} difference(s){note}")
                for line in differences:
                    self.stdout.write(f"  {line}")
            else:
                self.stdout.write(f"{ws.slug}: rollups match raw events{note}")
        if failed:
            self.stderr.write(f"verify_rollups: {failed} workspace(s) differ from raw events.")
            sys.exit(1)
