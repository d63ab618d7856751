"""DRF authentication by `Authorization: Bearer <api key>` and per-scope permissions."""

from dataclasses import dataclass

from django.utils import timezone
from rest_framework import authentication, exceptions, permissions

from .models import ApiKey, Workspace
from .selectors import api_key_for_authentication
from .services import api_key_hash, api_key_split, api_key_touch


@dataclass(frozen=True)
class ApiPrincipal:
    """The `request.user` of an API request: the key and the workspace it belongs to."""

    api_key: ApiKey

    @property
    def workspace(self) -> Workspace:
        return self.api_key.workspace

    @property
    def scopes(self) -> list[str]:
        return self.api_key.scopes

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        # META rather than DRF's get_authorization_header: request.headers parses every header of the request
        # (the check's hot path reads only this one).
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if isinstance(header, bytes):
            header = header.decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != self.keyword.lower():
            raise exceptions.AuthenticationFailed("Use 'Authorization: Bearer <api key>'.")
        return self.authenticate_key(parts[1])

    def authenticate_key(self, raw: str):
        """(principal, key) for a plaintext key; AuthenticationFailed names what is wrong with it."""
        prefix = api_key_split(raw)
        # The key row is cached in-process for a few seconds (accounts.selectors): revocation and scope
        # changes made in another process take effect within UPTAKE_API_KEY_CACHE_SECONDS.
        api_key = api_key_for_authentication(prefix=prefix, digest=api_key_hash(raw)) if prefix else None
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        now = timezone.now()
        if api_key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        if api_key.expires_at is not None and api_key.expires_at <= now:
            raise exceptions.AuthenticationFailed("This API key has expired.")
        api_key_touch(api_key=api_key, now=now)
        return ApiPrincipal(api_key=api_key), api_key

    def authenticate_header(self, request) -> str:
        return self.keyword


class _HasScope(permissions.BasePermission):
    scope = ""

    def has_permission(self, request, view) -> bool:
        principal = request.user
        if not isinstance(principal, ApiPrincipal):
            return False
        if self.scope not in principal.scopes:
            self.message = f"This API key lacks the '{self.scope}' scope."
            return False
        return True


class HasIngestScope(_HasScope):
    scope = "ingest"


class HasReadScope(_HasScope):
    scope = "read"


class HasAdminScope(_HasScope):
    scope = "admin"


class ReadOrAdminScope(permissions.BasePermission):
    """`read` for safe methods, `admin` for writes (the catalog REST rule)."""

    def has_permission(self, request, view) -> bool:
        principal = request.user
        if not isinstance(principal, ApiPrincipal):
            return False
        needed = "read" if request.method in permissions.SAFE_METHODS else "admin"
        if needed not in principal.scopes:
            self.message = f"This API key lacks the '{needed}' scope."
            return False
        return True
