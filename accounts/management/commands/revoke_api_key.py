from django.core.management.base import BaseCommand, CommandError

from accounts.selectors import workspace_get
from accounts.services import api_key_revoke
from core.errors import DomainError


class Command(BaseCommand):
    help = "Revoke an API key by its prefix (the 12 characters after 'upt_') or the whole key."

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", help="workspace slug")
        parser.add_argument("key", help="key prefix or full key")

    def handle(self, *args, slug: str, key: str, **options) -> None:
        try:
            api_key = api_key_revoke(workspace=workspace_get(slug=slug), prefix=key)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Revoked key {api_key.prefix} at {api_key.revoked_at.isoformat()}.")
