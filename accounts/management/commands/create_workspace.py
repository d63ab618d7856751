from django.core.management.base import BaseCommand, CommandError

from accounts.services import workspace_create
from core.errors import DomainError


class Command(BaseCommand):
    help = "Create a workspace (tenant). Prints its slug on the last line."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="URL-safe identifier: lowercase letters, digits, '-' and '_'")
        parser.add_argument("--name", default="", help="display name (defaults to the slug)")
        parser.add_argument("--tier", default="paid", help="free or paid (default paid)")
        parser.add_argument("--timezone", default="UTC", help="IANA time zone for heatmaps (default UTC)")

    def handle(self, *args, slug: str, name: str, tier: str, timezone: str, **options) -> None:
        try:
            workspace = workspace_create(slug=slug, name=name, tier=tier, timezone_name=timezone)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Created workspace '{workspace.name}' ({workspace.tier}).")
        self.stdout.write(workspace.slug)
