from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.selectors import workspace_get
from accounts.services import api_key_create, parse_scopes
from core.errors import DomainError


class Command(BaseCommand):
    help = "Create an API key for a workspace. The key is printed alone on the last line, once."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="workspace slug")
        parser.add_argument("--scopes", required=True, help="comma-separated: ingest,read,admin")
        parser.add_argument("--name", default="", help="a label to recognise the key by")
        parser.add_argument("--expires-in-days", type=int, default=None, help="expire the key after N days")

    def handle(self, *args, slug: str, scopes: str, name: str, expires_in_days: int | None, **options) -> None:
        try:
            workspace = workspace_get(slug=slug)
            scope_list = parse_scopes(scopes)
            if expires_in_days is not None and expires_in_days <= 0:
                raise DomainError("--expires-in-days must be a positive number of days.")
            expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
            api_key, raw = api_key_create(workspace=workspace, scopes=scope_list, name=name, expires_at=expires_at)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"Created key {api_key.prefix} with scopes {','.join(api_key.scopes)} for '{workspace.slug}'. "
            "Store it now: it cannot be shown again."
        )
        self.stdout.write(raw)
