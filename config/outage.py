"""Database outages on pages: a dashboard or admin request that cannot reach PostgreSQL answers 503 with
`Retry-After` and a static page (templates/503.html: our stylesheets, nothing that reads the database),
`Cache-Control: no-store`, instead of Django's 500 page. The API keeps its own JSON 503
(config.api.exception_handler and the fast paths); its paths are passed over here.

One answer, two hooks: `DatabaseUnavailableMiddleware.process_exception` for errors a view (or its template)
raises, the common case, and `server_error` (handler500) for one raised outside a view, in a middleware."""

import logging
import sys

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.cache import patch_cache_control
from django.views.defaults import server_error as django_server_error

from core.errors import DATABASE_UNAVAILABLE_ERRORS

from .http import API_PATH_PREFIX

logger = logging.getLogger(__name__)


def _is_page_outage(request: HttpRequest, exception: BaseException | None) -> bool:
    return isinstance(exception, DATABASE_UNAVAILABLE_ERRORS) and not request.path_info.startswith(API_PATH_PREFIX)


def database_unavailable_page(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After: rendered without the request's context processors, which would read the session
    and the user from the database."""
    retry_after = settings.UPTAKE_RETRY_AFTER_SECONDS
    response = HttpResponse(render_to_string("503.html", {"retry_after": retry_after}), status=503)
    response["Retry-After"] = str(retry_after)
    patch_cache_control(response, no_store=True)
    return response


class DatabaseUnavailableMiddleware:
    """A page view that raises a database connection error answers database_unavailable_page."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not _is_page_outage(request, exception):
            return None
        logger.warning("Database unavailable for %s %s: %s", request.method, request.path, exception)
        return database_unavailable_page(request)


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: the 503 page when the error being handled is a database outage on a page (raised outside a
    view), else Django's own 500 page."""
    if _is_page_outage(request, sys.exc_info()[1]):
        return database_unavailable_page(request)
    return django_server_error(request)
