"""`manage.py verify_allowances`: recount every metered allowance counter from the raw events; exit 1 listing
any difference (with --repair, rebuild the days that differ first)."""

import sys

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Workspace
from usage.allowances import allowance_counters_sync, allowance_differences


class Command(BaseCommand):
    help = (
        "Recount every metered feature's allowance counters from the raw events and list the differences; "
        "--repair rebuilds the days that differ. Features whose rebuild is pending are rebuilt first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--workspace", help="Slug of one workspace (default: every workspace).")
        parser.add_argument("--repair", action="store_true", help="Rebuild the days that differ, then recheck.")
        parser.add_argument("--limit", type=int, default=50, help="Differences listed per workspace.")

    def handle(self, *args, workspace=None, repair=False, limit=50, **options):
        workspaces = Workspace.objects.order_by("slug")
        if workspace:
            workspaces = workspaces.filter(slug=workspace)
            if not workspaces.exists():
                raise CommandError(f"No workspace '{workspace}'.")

        def rebuilding(done: int, total: int) -> None:
            if done % 30 == 0 or done == total:
                self.stdout.write(f"  rebuilding pending counters: {done}/{total} day(s)")

        for rebuilt in allowance_counters_sync(progress=rebuilding):
            self.stdout.write(f"Rebuilt the pending counters of feature {rebuilt.feature_id}: {rebuilt.days} day(s)")
        failed = 0
        for ws in workspaces:
            self.stdout.write(f"{ws.slug}: checking metered features")
            checked = allowance_differences(workspace_id=ws.pk, repair=repair, progress=self.stdout.write)
            note = f" ({len(checked.pending)} feature(s) still being rebuilt, skipped)" if checked.pending else ""
            repaired = f"; repaired {checked.repaired_days} day(s)" if checked.repaired_days else ""
            if checked.differences:
                failed += 1
                self.stdout.write(f"{ws.slug}: {len(checked.differences)} difference(s){repaired}{note}")
                for difference in checked.differences[:limit]:
                    self.stdout.write(f"  {difference}")
            else:
                self.stdout.write(f"{ws.slug}: {checked.features} metered feature(s) match raw events{repaired}{note}")
        if failed:
            self.stderr.write(f"verify_allowances: {failed} workspace(s) differ from raw events.")
            sys.exit(1)
