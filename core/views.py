"""The staff web session's current workspace, shared by every dashboard page (analytics, alerts).

Pages decorated with `workspace_page` get `request.workspace`, `request.can_edit` and `request.dashboard` (the
template context of the shared layout), and answer 404 when a service or selector raises NotFound. The workspace
is kept in the session and is always one the user may see (core.staff's directory)."""

from __future__ import annotations

from functools import wraps
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from .errors import NotFound
from .staff import EDIT_ROLES, staff_directory
from .text import echo, text_problem

SESSION_KEY = "dashboard_workspace_id"
# django.contrib.auth.models.User.username
USERNAME_MAX_LENGTH = 150
# ?workspace=<slug> on a dashboard page makes that workspace (one of the user's) the current one.
WORKSPACE_PARAM = "workspace"


def workspace_url(url: str, *, workspace) -> str:
    """`url` opened in `workspace`: a link from a page not bound to the session's workspace (the admin's links
    to the dashboard), which would otherwise open another workspace's page and answer 404."""
    return f"{url}?{urlencode({WORKSPACE_PARAM: workspace.slug})}"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def workspace_page(view=None, *, nav: str | None = None):
    """Login and staff required; resolves the session's workspace (else the first the user may see). Every
    answer is `Cache-Control: private, no-store`: customer data, never kept by a browser or shared cache."""

    def decorate(view):
        @login_required
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            response = _workspace_view(view, request, nav, *args, **kwargs)
            patch_cache_control(response, private=True, no_store=True)
            return response

        return wrapped

    return decorate(view) if view is not None else decorate


def _workspace_view(view, request: HttpRequest, nav: str | None, *args, **kwargs) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied("The dashboard is for staff users.")
    directory = staff_directory()
    workspaces = list(directory.workspaces_for_user(user=request.user).order_by("name", "slug"))
    if not workspaces:
        return render(request, "dashboard/no_workspace.html", {"title": "No workspace"}, status=403)
    asked = next((w for w in workspaces if w.slug == request.GET.get(WORKSPACE_PARAM)), None)
    if asked is not None:
        request.session[SESSION_KEY] = asked.pk
    current = asked or next((w for w in workspaces if w.pk == request.session.get(SESSION_KEY)), workspaces[0])
    request.workspace = current
    request.can_edit = (
        request.user.is_superuser or directory.membership_roles(user=request.user).get(current.pk) in EDIT_ROLES
    )
    request.dashboard = {"workspaces": workspaces, "workspace": current, "can_edit": request.can_edit}
    if nav:
        request.dashboard["nav"] = nav
    try:
        # Pages show times in the workspace's timezone (core.templatetags.uptake_format).
        with timezone.override(_zone(current.timezone)):
            return view(request, *args, **kwargs)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


@login_required
@require_POST
def switch_workspace(request: HttpRequest) -> HttpResponse:
    """Make another of the user's workspaces the current one."""
    slug = request.POST.get("workspace", "")
    if problem := text_problem(slug):  # PostgreSQL would refuse it in the lookup (a 500)
        return HttpResponseBadRequest(f"'workspace' {problem.phrase}.", content_type="text/plain; charset=utf-8")
    workspace = staff_directory().workspaces_for_user(user=request.user).filter(slug=slug).first()
    if workspace is None:
        raise Http404(f"No workspace '{slug}' among yours.")
    request.session[SESSION_KEY] = workspace.pk
    return redirect("dashboard:overview")


def login_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """The username django-axes counts failed logins under (AXES_USERNAME_CALLABLE): the one typed, cut to
    the 150 characters a username may have. Axes stores it in a 255-character column, and Django's login form
    does not limit its length: a longer one was a 500."""
    username = (credentials or {}).get("username") if credentials else request.POST.get("username")
    if not isinstance(username, str):
        return username
    return echo(username, limit=USERNAME_MAX_LENGTH)


def login_locked_out(request: HttpRequest, original_response=None, credentials: dict | None = None) -> HttpResponse:
    """What a login answers while its username + address pair is locked (django-axes): the login page, saying
    why, for how long, and who can unlock it; 429 with Retry-After."""
    from django.conf import settings
    from django.contrib import admin
    from django.contrib.admin.forms import AdminAuthenticationForm

    username = (credentials or {}).get("username") or request.POST.get("username", "")
    cooloff_seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    context = {
        **admin.site.each_context(request),
        "title": "Log in",
        "app_path": request.get_full_path(),
        "form": AdminAuthenticationForm(request, initial={"username": username}),
        "next": request.POST.get("next") or request.GET.get("next", ""),
        "lockout": {
            "username": username,
            "limit": settings.AXES_FAILURE_LIMIT,
            "minutes": max(1, round(cooloff_seconds / 60)),
        },
    }
    response = render(request, "admin/login.html", context, status=429)
    response["Retry-After"] = str(cooloff_seconds)
    return response
