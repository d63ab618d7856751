"""OpenAPI: the project's AutoSchema, which documents the error answers every API operation can give.

drf-spectacular documents the answers a view declares (200, 201, 204); the errors come from the request
cycle around the view (authentication, scopes, rate limits, content negotiation, parsing, lookups, the
database) and are the same for every view, so they are added here once, with the one error schema (`Error`,
core/serializers.py: the payload of `config.api.exception_handler`), instead of by hand on every view. A view
declares only the errors of its own domain (e.g. 402 on analytics); declared answers win.
"""

import uritemplate
from drf_spectacular.openapi import AutoSchema
from rest_framework import permissions

from accounts.authentication import HasAdminScope, ReadOrAdminScope
from core.serializers import error_response

_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))
_RETRY_AFTER = {
    "Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before retrying."},
}


class UptakeAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema, plus the standard error answers and readable operation ids."""

    def get_operation_id(self) -> str:
        # A POST to a verb under an object (`/features/{key}/activate`) is an action, not a create.
        tokens = self._tokenize_path()
        variables = uritemplate.variables(self.path)
        if self.method == "POST" and variables and not self.path.rstrip("/").endswith("}"):
            return "_".join(token.replace("-", "_") for token in tokens)
        return super().get_operation_id()

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for code, description in self._error_statuses(operation).items():
            if str(code) in responses:
                continue
            response = self._get_response_for_code(error_response(description), str(code))
            if code in (429, 503):
                response = {"headers": _RETRY_AFTER, **response}
            responses[str(code)] = response
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _error_statuses(self, operation: dict) -> dict[int, str]:
        permission_classes = [p for p in self.view.get_permissions() if not isinstance(p, permissions.AllowAny)]
        has_path_variables = any(p["in"] == "path" for p in operation.get("parameters", []))
        has_body = "requestBody" in operation
        # 400 on every operation: any path or query can carry what no id may hold (control characters, NUL).
        statuses: dict[int, str] = {400: "Invalid input: the error names the field, parameter or path at fault."}
        if self.get_auth():
            statuses[401] = "Missing, invalid, expired or revoked API key."
        if permission_classes:
            statuses[403] = f"The API key lacks the {self._needed_scope(permission_classes)} scope."
        if has_path_variables:
            statuses[404] = "No such object in the key's workspace (the error names which)."
        statuses[406] = "The `Accept` header asks for something other than JSON."
        # Permission classes compose with `|` (DRF's metaclass), so isinstance takes a tuple here.
        manages = any(isinstance(p, (HasAdminScope, ReadOrAdminScope)) for p in permission_classes)  # noqa: UP038
        if self.method in _BODY_METHODS and manages:
            statuses[409] = "Conflicts with the current state: a key or name taken, a lifecycle move not allowed."
        if has_body:
            statuses[411] = "A chunked body without `Content-Length` that cannot be read whole."
            statuses[413] = (
                "The body, as sent or gzip-decoded, is over the request size limit (`body_too_large`); nothing "
                "was changed."
            )
            statuses[415] = (
                "The body is not `application/json` (`unsupported_media_type`), or is sent with a "
                "`Content-Encoding` other than gzip (`unsupported_encoding`)."
            )
        statuses[429] = "Over the API key's rate limit; see `Retry-After`."
        statuses[503] = "The database is unreachable; nothing was changed. See `Retry-After`."
        return statuses

    def _needed_scope(self, permission_classes) -> str:
        for permission in permission_classes:
            if isinstance(permission, ReadOrAdminScope):
                return "`read`" if self.method in permissions.SAFE_METHODS else "`admin`"
            if getattr(permission, "scope", ""):
                return f"`{permission.scope}`"
        return "needed"
