"""Dashboard pages for alert pipelines: list, create/edit form, enable/disable, test message, delivery log.

Thin views: the form only turns HTML inputs into the REST body (`{"name", "enabled", "trigger",
"destinations"}`) and calls the same services as /api/v1/pipelines, whose DomainError names the field that is
shown next to it. The current workspace is the dashboard's (same session key; usage cannot import
analytics). Staff with a viewer or manager role read; owners and admins (and superusers) edit.
"""

from __future__ import annotations

import re
from functools import wraps

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.errors import DomainError
from core.views import workspace_page

from . import selectors, services
from .destinations import destination_url_shown, mask_secret
from .models import AlertDestination, AlertPipeline

DELIVERY_LOG_LIMIT = 100
BLANK_DESTINATION_ROWS = 2

# The dashboard's current workspace and edit right (owners, admins, superusers); viewers and managers read.
alerts_page = workspace_page(nav="alerts")


def editor_only(view):
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not request.can_edit:
            raise PermissionDenied("Only owners and admins of this workspace can change its alert pipelines.")
        return view(request, *args, **kwargs)

    return wrapped


def _render(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    return render(request, template, {**request.dashboard, **context}, status=status)


# ---------------------------------------------------------------------------
# Form: HTML inputs → the REST body. Parsing only; every rule is the service's.
# ---------------------------------------------------------------------------

TRIGGER_FIELDS = {"features", "plans", "min_quantity", "percent", "days"}


class PipelineForm(forms.Form):
    name = forms.CharField(required=False, max_length=1000)
    enabled = forms.BooleanField(required=False, initial=True)
    trigger_type = forms.ChoiceField(
        choices=[("", "—")] + list(AlertPipeline.TriggerType.choices), required=False, label="Trigger"
    )
    features = forms.CharField(required=False, help_text="Feature keys, comma-separated (empty: all).")
    plans = forms.CharField(required=False, help_text="Plan labels, comma-separated (empty: all).")
    min_quantity = forms.CharField(required=False, label="Minimum quantity", help_text="event, free plan")
    percent = forms.CharField(
        required=False,
        help_text="threshold: percents of the allowance, e.g. 80, 100; usage drop: one percent",
    )
    days = forms.CharField(required=False, help_text="dormant (default 14), usage drop (default 7)")

    def trigger(self) -> dict:
        data = self.cleaned_data
        trigger: dict = {"type": data["trigger_type"] or None}
        for key in ("features", "plans"):
            if data[key].strip():
                trigger[key] = [v.strip() for v in data[key].split(",")]
        for key in ("min_quantity", "days"):
            if data[key].strip():
                trigger[key] = _number(data[key])
        if data["percent"].strip():
            values = [_number(v) for v in data["percent"].split(",")]
            is_list = data["trigger_type"] == AlertPipeline.TriggerType.THRESHOLD or len(values) > 1
            trigger["percent"] = values if is_list else values[0]
        return trigger


class DestinationForm(forms.Form):
    id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    type = forms.ChoiceField(choices=[("", "—")] + list(AlertDestination.Type.choices), required=False)
    url = forms.CharField(required=False, max_length=4000, label="URL")
    to = forms.CharField(required=False, max_length=4000, label="To", help_text="E-mail addresses, comma-separated")
    secret = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.PasswordInput(render_value=False),
        help_text="Webhooks: signs each body (HMAC-SHA256). Leave blank to keep the stored one.",
    )
    mentions = forms.BooleanField(required=False, help_text="Let @everyone, @here and roles ping")
    rate_limit_per_minute = forms.CharField(required=False, label="Per minute")

    def is_blank(self) -> bool:
        data = self.cleaned_data
        return not (data.get("id") or data.get("type") or data.get("url", "").strip() or data.get("to", "").strip())

    def spec(self) -> dict:
        data = self.cleaned_data
        spec: dict = {"type": data["type"] or None, "mentions": data["mentions"]}
        if data["id"]:
            spec["id"] = data["id"]
        for key in ("url", "to", "secret"):
            if data[key].strip():
                spec[key] = data[key].strip()
        if data["rate_limit_per_minute"].strip():
            spec["rate_limit_per_minute"] = _number(data["rate_limit_per_minute"])
        return spec


# Blank rows for new destinations; an untouched blank row is skipped.
DestinationFormSet = forms.formset_factory(DestinationForm, extra=BLANK_DESTINATION_ROWS, can_delete=True)


def _number(raw: str):
    # An integer when it reads as one; otherwise the text goes to the service, which says what is expected.
    raw = raw.strip()
    # ASCII digits only, and fewer than Python's int-from-text limit (4,300 digits would raise ValueError).
    return int(raw) if re.fullmatch(r"-?[0-9]{1,4000}", raw) else raw


def _initial(pipeline: AlertPipeline | None) -> tuple[dict, list[dict]]:
    if pipeline is None:
        return {"enabled": True}, []
    config = pipeline.trigger_config
    percent = config.get("percent")
    pipeline_initial = {
        "name": pipeline.name,
        "enabled": pipeline.enabled,
        "trigger_type": pipeline.trigger_type,
        "features": ", ".join(config.get("features", [])),
        "plans": ", ".join(config.get("plans", [])),
        "min_quantity": config.get("min_quantity", ""),
        "percent": ", ".join(map(str, percent)) if isinstance(percent, list) else (percent or ""),
        "days": config.get("days", ""),
    }
    destinations = []
    for d in pipeline.destinations.all():
        shown_url = destination_url_shown(d)
        destinations.append(
            {
                "id": d.pk,
                "type": d.type,
                "url": shown_url,
                "to": d.to,
                "mentions": d.mentions,
                "rate_limit_per_minute": d.rate_limit_per_minute,
            }
        )
    return pipeline_initial, destinations


_ERROR_FIELD = re.compile(r"^destinations\[(\d+)\](?:\.(\w+))?$")


def _show_error(exc: DomainError, form: PipelineForm, formset, rows: list[int]) -> None:
    """Put the service's error next to the input it names (`trigger.days`, `destinations[1].url`, ...)."""
    field = exc.field or ""
    message = str(exc)
    if field.startswith("trigger."):
        key = re.sub(r"\[\d+\]$", "", field.removeprefix("trigger."))
        form.add_error("trigger_type" if key == "type" else key if key in TRIGGER_FIELDS else None, message)
        return
    if field in ("name", "enabled"):
        form.add_error(field, message)
        return
    match = _ERROR_FIELD.match(field)
    if match and int(match.group(1)) < len(rows):
        row = formset.forms[rows[int(match.group(1))]]
        key = match.group(2)
        row.add_error(key if key in row.fields else None, message)
        return
    form.add_error(None, message)


def _save(request: HttpRequest, pipeline: AlertPipeline | None) -> HttpResponse:
    initial, destinations = _initial(pipeline)
    if request.method == "POST":
        form = PipelineForm(request.POST)
        formset = DestinationFormSet(request.POST, prefix="dest")
    else:
        form = PipelineForm(initial=initial)
        formset = DestinationFormSet(prefix="dest", initial=destinations)
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        rows = [i for i, f in enumerate(formset.forms) if not f.is_blank() and not f.cleaned_data.get("DELETE")]
        body = {
            "name": form.cleaned_data["name"],
            "enabled": form.cleaned_data["enabled"],
            "trigger": form.trigger(),
            "destinations": [formset.forms[i].spec() for i in rows],
        }
        try:
            if pipeline is None:
                pipeline = services.pipeline_create(workspace=request.workspace, **body)
            else:
                services.pipeline_update(pipeline=pipeline, **body)
        except DomainError as exc:
            _show_error(exc, form, formset, rows)
        else:
            return redirect("alerts:detail", pipeline_id=pipeline.pk)
    status = 400 if request.method == "POST" else 200
    return _render(
        request,
        "alerts/form.html",
        {
            "title": f"Edit {pipeline.name}" if pipeline else "New alert pipeline",
            "pipeline": pipeline,
            "form": form,
            "formset": formset,
        },
        status=status,
    )


# ---------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------


def _trigger_summary(pipeline: AlertPipeline) -> dict:
    settings = [
        (key, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
        for key, value in sorted(pipeline.trigger_config.items())
    ]
    return {"type": pipeline.get_trigger_type_display(), "settings": settings}


def _destination_rows(pipeline: AlertPipeline) -> list[dict]:
    rows = []
    for d in pipeline.destinations.all():
        target = d.to or (destination_url_shown(d))
        rows.append(
            {
                "id": d.pk,
                "type": d.get_type_display(),
                "target": target,
                "secret": mask_secret(d.secret),
                "mentions": d.mentions,
                "rate_limit_per_minute": d.rate_limit_per_minute,
            }
        )
    return rows


@alerts_page
def pipeline_list(request: HttpRequest) -> HttpResponse:
    pipelines = [
        {"pipeline": p, "trigger": _trigger_summary(p), "destinations": _destination_rows(p)}
        for p in selectors.pipeline_list(workspace=request.workspace)
    ]
    return _render(request, "alerts/list.html", {"title": "Alert pipelines", "pipelines": pipelines})


@alerts_page
def pipeline_detail(request: HttpRequest, pipeline_id: int) -> HttpResponse:
    pipeline = selectors.pipeline_get(workspace=request.workspace, pipeline_id=pipeline_id)
    # The log pages backwards by id: ?before=<id> shows the DELIVERY_LOG_LIMIT messages older than that one.
    raw_before = request.GET.get("before", "")
    # A bigint id; anything else (other digits, past 2⁶³) shows the newest page.
    before = int(raw_before) if raw_before.isascii() and raw_before.isdigit() and len(raw_before) <= 18 else None
    deliveries, older = selectors.delivery_page(pipeline=pipeline, before=before, limit=DELIVERY_LOG_LIMIT)
    return _render(
        request,
        "alerts/detail.html",
        {
            "title": pipeline.name,
            "pipeline": pipeline,
            "trigger": _trigger_summary(pipeline),
            "destinations": _destination_rows(pipeline),
            "deliveries": deliveries,
            "log_limit": DELIVERY_LOG_LIMIT,
            "log_before": before,
            "log_older": older,
        },
    )


@alerts_page
@editor_only
def pipeline_new(request: HttpRequest) -> HttpResponse:
    return _save(request, None)


@alerts_page
@editor_only
def pipeline_edit(request: HttpRequest, pipeline_id: int) -> HttpResponse:
    return _save(request, selectors.pipeline_get(workspace=request.workspace, pipeline_id=pipeline_id))


@require_POST
@alerts_page
@editor_only
def pipeline_toggle(request: HttpRequest, pipeline_id: int) -> HttpResponse:
    pipeline = selectors.pipeline_get(workspace=request.workspace, pipeline_id=pipeline_id)
    services.pipeline_update(pipeline=pipeline, enabled=not pipeline.enabled)
    return redirect("alerts:detail", pipeline_id=pipeline.pk)


@require_POST
@alerts_page
@editor_only
def pipeline_test(request: HttpRequest, pipeline_id: int) -> HttpResponse:
    pipeline = selectors.pipeline_get(workspace=request.workspace, pipeline_id=pipeline_id)
    services.pipeline_test_send(pipeline=pipeline, now=timezone.now())
    return redirect("alerts:detail", pipeline_id=pipeline.pk)


@alerts_page
@editor_only
def pipeline_delete(request: HttpRequest, pipeline_id: int) -> HttpResponse:
    """GET: a confirmation page (what will go: the pipeline, its destinations, its delivery log). POST: delete
    and go back to the list."""
    pipeline = selectors.pipeline_get(workspace=request.workspace, pipeline_id=pipeline_id)
    if request.method == "POST":
        services.pipeline_delete(pipeline=pipeline)
        return redirect("alerts:list")
    return _render(
        request,
        "alerts/delete.html",
        {
            "title": f"Delete {pipeline.name}",
            "pipeline": pipeline,
            "destinations": pipeline.destinations.count(),
            "deliveries": selectors.delivery_list(pipeline=pipeline).count(),
        },
    )
