"""OpenAPI: document the Bearer API key, so /api/docs/ offers "Authorize" and every operation names it."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `manage.py create_api_key SLUG --scopes ingest,read,admin`: "
            "`Authorization: Bearer upt_…`.",
        }
