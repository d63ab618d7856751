"""`manage.py rollup`: bring the analytics rollups up to date synchronously."""

from django.core.management.base import BaseCommand
from django.utils import timezone
from tqdm import tqdm

from analytics.services import rollup_pending
from usage.models import UsageDayDirty


class Command(BaseCommand):
    help = "Recompute every (workspace, UTC day) marked dirty by ingestion, with progress output."

    def add_arguments(self, parser):
        parser.add_argument("--quiet", action="store_true", help="No progress bar.")

    def handle(self, *args, quiet: bool = False, **options):
        total = UsageDayDirty.objects.values("workspace_id", "day").distinct().count()  # days, not shard rows
        bar = tqdm(total=total, unit="day", desc="rollup", disable=quiet or total == 0, file=self.stderr)

        def progress(index: int, count: int, workspace_id: int, day) -> None:
            bar.total = count
            bar.set_postfix_str(f"workspace {workspace_id} {day.isoformat()}")
            bar.update(1)

        report = rollup_pending(now=timezone.now(), progress=progress)
        bar.close()
        self.stdout.write(
            f"Rolled up {report.days_rolled_up} day(s); {report.days_skipped_locked} skipped (held by another run); "
            f"{report.days_still_dirty} still marked dirty."
        )
