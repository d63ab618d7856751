"""Dashboard pages for alert pipelines: list, create/edit form, enable/disable, test message, delivery log.

Thin views: the forms (alerts.forms) only turn HTML inputs into the REST body (`{"name", "enabled",
"trigger", "channels", "destinations", "filter", "template"}`) and call the same services as /api/v1/pipelines,
whose DomainError names the field that is shown next to it. The current workspace is the dashboard's. Staff
with a viewer or manager role read; owners and admins (and superusers) edit.
"""

from __future__ import annotations

import re
from functools import wraps

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.errors import DomainError
from core.views import workspace_page

from . import selectors, services
from .channels import channel_create, channel_delete, channel_test_send, channel_update
from .destinations import channel_target_shown, channel_url_shown, mask_secret
from .filters import PREFIXES, filter_validate
from .forms import (
    TRIGGER_FIELDS,
    ChannelForm,
    ConditionFormSet,
    DestinationFormSet,
    PipelineForm,
)
from .message_templates import template_validate
from .models import AlertChannel, AlertPipeline
from .triggers import preview_event, preview_payload

DELIVERY_LOG_LIMIT = 100

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


def _initial(pipeline: AlertPipeline | None, known: set[str]) -> tuple[dict, list[dict], list[dict]]:
    if pipeline is None:
        return {"enabled": True, "filter_match": "all"}, [], []
    config = pipeline.trigger_config
    percent = config.get("percent")
    keys = config.get("features", [])
    pipeline_initial = {
        "name": pipeline.name,
        "enabled": pipeline.enabled,
        "trigger_type": pipeline.trigger_type,
        "features": [k for k in keys if k in known],
        "unseen_features": ", ".join(k for k in keys if k not in known),
        "expected_later": config.get("expected_later", False),
        "plans": ", ".join(config.get("plans", [])),
        "min_quantity": config.get("min_quantity", ""),
        "percent": ", ".join(map(str, percent)) if isinstance(percent, list) else (percent or ""),
        "days": config.get("days", ""),
        "filter_match": (pipeline.filter or {}).get("match", "all"),
        "template_title": (pipeline.template or {}).get("title", ""),
        "template_body": (pipeline.template or {}).get("body", ""),
    }
    destinations = [
        {
            "id": c.pk,
            "type": c.type,
            "url": channel_url_shown(c) or "",
            "to": c.to,
            "chat_id": c.chat_id,
            "table": c.table,
            "mentions": c.mentions,
            "rate_limit_per_minute": c.rate_limit_per_minute,
        }
        for c in selectors.pipeline_channels(pipeline)
    ]
    return (
        pipeline_initial,
        destinations,
        [_condition_initial(c) for c in (pipeline.filter or {}).get("conditions", [])],
    )


def _condition_initial(condition: dict) -> dict:
    field = condition["field"]
    prefix = next((p for p in PREFIXES if field.startswith(p)), None)
    value = condition.get("value")
    shown = ", ".join(map(str, value)) if isinstance(value, list) else ("" if value is None else str(value))
    return {
        "field": prefix or field,
        "name": field.removeprefix(prefix) if prefix else "",
        "op": condition["op"],
        "value": shown.lower() if isinstance(value, bool) else shown,
        "expected_later": condition.get("expected_later", False),
    }


_ROW_ERROR = re.compile(r"^(destinations|filter\.conditions)\[(\d+)\](?:\.(\w+))?$")
_FORM_FIELDS = {"name": "name", "enabled": "enabled", "filter.match": "filter_match", "filter": "filter_match"}


def _show_error(exc: DomainError, form: PipelineForm, formsets: dict, rows: dict) -> None:
    """Put the service's error next to the input it names (`trigger.days`, `destinations[1].url`,
    `filter.conditions[0].value`, `template.body`, ...)."""
    field = exc.field or ""
    message = str(exc)
    if field.startswith("trigger."):
        key = re.sub(r"\[\d+\]$", "", field.removeprefix("trigger."))
        if key == "features" and form.cleaned_data.get("unseen_features", "").strip():
            key = "unseen_features"
        form.add_error(
            "trigger_type" if key == "type" else key if key in TRIGGER_FIELDS | {"unseen_features"} else None, message
        )
        return
    if field.startswith("template."):
        form.add_error("template_body" if field == "template.body" else "template_title", message)
        return
    if field in _FORM_FIELDS:
        form.add_error(_FORM_FIELDS[field], message)
        return
    if field.startswith("channels"):
        form.add_error("channels", message)
        return
    match = _ROW_ERROR.match(field)
    group = {"destinations": "dest", "filter.conditions": "cond"}.get(match.group(1)) if match else None
    if group and int(match.group(2)) < len(rows[group]):
        row = formsets[group].forms[rows[group][int(match.group(2))]]
        key = match.group(3)
        row.add_error(key if key in row.fields else None, message)
        return
    form.add_error(None, message)


def _channel_choices(request: HttpRequest, pipeline: AlertPipeline | None) -> list[tuple[int, str]]:
    own = {c.pk for c in selectors.pipeline_channels(pipeline)} if pipeline else set()
    return [
        (c.pk, f"{c.name} ({c.get_type_display()})")
        for c in selectors.channel_list(workspace=request.workspace)
        if c.pk not in own
    ]


def _used_rows(formset) -> list[int]:
    return [i for i, f in enumerate(formset.forms) if not f.is_blank() and not f.cleaned_data.get("DELETE")]


def _body(form: PipelineForm, formsets: dict, rows: dict) -> dict:
    conditions = [formsets["cond"].forms[i].spec() for i in rows["cond"]]
    return {
        "name": form.cleaned_data["name"],
        "enabled": form.cleaned_data["enabled"],
        "trigger": form.trigger(),
        # None (not []) when nothing is ticked: the service then asks for a destination, as a manager expects.
        "channels": [int(pk) for pk in form.cleaned_data["channels"]] or None,
        "destinations": [formsets["dest"].forms[i].spec() for i in rows["dest"]],
        "filter": {"match": form.cleaned_data["filter_match"] or "all", "conditions": conditions}
        if conditions
        else None,
        "template": form.template(),
    }


def _save(request: HttpRequest, pipeline: AlertPipeline | None) -> HttpResponse:
    features = selectors.catalog_feature_choices(workspace=request.workspace)
    initial, destinations, conditions = _initial(pipeline, {key for key, _ in features})
    kwargs = {"channel_choices": _channel_choices(request, pipeline), "feature_choices": features}
    if request.method == "POST":
        form = PipelineForm(request.POST, **kwargs)
        formsets = {
            "dest": DestinationFormSet(request.POST, prefix="dest"),
            "cond": ConditionFormSet(request.POST, prefix="cond"),
        }
    else:
        form = PipelineForm(initial=initial, **kwargs)
        formsets = {
            "dest": DestinationFormSet(prefix="dest", initial=destinations),
            "cond": ConditionFormSet(prefix="cond", initial=conditions),
        }
    valid = request.method == "POST" and all([form.is_valid(), *(f.is_valid() for f in formsets.values())])
    if valid:
        rows = {name: _used_rows(formset) for name, formset in formsets.items()}
        body = _body(form, formsets, rows)
        try:
            if pipeline is None:
                pipeline = services.pipeline_create(workspace=request.workspace, **body)
            else:
                services.pipeline_update(pipeline=pipeline, **body)
        except DomainError as exc:
            _show_error(exc, form, formsets, rows)
        else:
            return redirect("alerts:detail", pipeline_id=pipeline.pk)
    return _render(
        request,
        "alerts/form.html",
        {
            "title": f"Edit {pipeline.name}" if pipeline else "New alert pipeline",
            "pipeline": pipeline,
            "form": form,
            "formset": formsets["dest"],
            "conditions": formsets["cond"],
        },
        status=400 if request.method == "POST" else 200,
    )


def _preview_rules(request: HttpRequest) -> tuple[str, dict, dict]:
    """The trigger type, trigger settings and filter the form describes so far (the whole form comes with the
    preview request), checked by the services' rules; raises DomainError naming what is not right yet."""
    features = selectors.catalog_feature_choices(workspace=request.workspace)
    form = PipelineForm(request.GET, feature_choices=features)
    form.is_valid()  # a form still being filled in (no name, no trigger type yet) is previewed all the same
    if any(name in form.errors for name in (*TRIGGER_FIELDS, "unseen_features", "filter_match")) or (
        "trigger_type" in form.errors and request.GET.get("trigger_type")
    ):
        raise DomainError("some trigger settings are not valid yet.", code="invalid", field="trigger")
    form.cleaned_data.setdefault("trigger_type", "")
    trigger = form.trigger()
    kind, config = services.trigger_validate({**trigger, "type": trigger["type"] or AlertPipeline.TriggerType.EVENT})
    if "cond-TOTAL_FORMS" not in request.GET:
        return kind, config, {}
    conditions = ConditionFormSet(request.GET, prefix="cond")
    if not conditions.is_valid():
        raise DomainError("some filter conditions are not valid yet.", code="invalid", field="filter")
    rows = [conditions.forms[i].spec() for i in _used_rows(conditions)]
    raw = {"match": form.cleaned_data.get("filter_match") or "all", "conditions": rows} if rows else None
    return kind, config, filter_validate(raw, workspace_id=request.workspace.pk, trigger_type=kind)


@alerts_page
def template_preview(request: HttpRequest) -> HttpResponse:
    """The message the form's template would give for the latest event the pipeline, as the form describes it so
    far, would alert on: its features, plans, minimum quantity and filter (htmx fragment)."""
    context: dict = {"error": None, "note": None, "preview": None, "event": None}
    try:
        template = template_validate(
            {"title": request.GET.get("template_title", ""), "body": request.GET.get("template_body", "")}
        )
    except DomainError as exc:
        context["error"] = str(exc)
        return render(request, "alerts/_preview.html", context)
    pipeline = AlertPipeline(workspace=request.workspace, name=request.GET.get("name", ""), template=template)
    try:
        pipeline.trigger_type, pipeline.trigger_config, pipeline.filter = _preview_rules(request)
    except DomainError as exc:
        # Previewed on the chosen features alone, and the form says what it left out.
        context["note"] = f"Not applied yet: {exc}"
        keys = [k for k in request.GET.getlist("features") if k] + [
            k.strip() for k in request.GET.get("unseen_features", "").split(",") if k.strip()
        ]
        pipeline.trigger_type, pipeline.trigger_config, pipeline.filter = "event", {"features": keys}, {}
    event = preview_event(workspace=request.workspace, pipeline=pipeline)
    context["event"] = event
    if event is not None:
        context["preview"] = preview_payload(event=event, pipeline=pipeline)
    return render(request, "alerts/_preview.html", context)


# ---------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------


def _trigger_summary(pipeline: AlertPipeline) -> dict:
    settings = [
        (key, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
        for key, value in sorted(pipeline.trigger_config.items())
    ]
    return {"type": pipeline.get_trigger_type_display(), "settings": settings}


def _channel_row(c: AlertChannel) -> dict:
    return {
        "id": c.pk,
        "name": c.name,
        "type": c.get_type_display(),
        "target": channel_target_shown(type=c.type, url=c.url, to=c.to, chat_id=c.chat_id, table=c.table),
        "secret": mask_secret(c.secret or c.token),
        "mentions": c.mentions,
        "rate_limit_per_minute": c.rate_limit_per_minute,
    }


def _destination_rows(pipeline: AlertPipeline) -> list[dict]:
    return [_channel_row(c) for c in selectors.pipeline_channels(pipeline)]


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
            "destinations": len(selectors.pipeline_channels(pipeline)),
            "deliveries": selectors.delivery_list(pipeline=pipeline).count(),
        },
    )


# ---------------------------------------------------------------------------
# Channels: the workspace's alert targets, shared by pipelines
# ---------------------------------------------------------------------------


@alerts_page
def channel_list(request: HttpRequest) -> HttpResponse:
    rows = [
        {**_channel_row(c), "pipelines": selectors.channel_pipelines(c)}
        for c in selectors.channel_list(workspace=request.workspace)
    ]
    return _render(request, "alerts/channels.html", {"title": "Alert channels", "channels": rows})


def _channel_page(request: HttpRequest, channel: AlertChannel, *, error: str | None = None) -> HttpResponse:
    """The channel's page: its target (masked), the pipelines posting to it, its delivery log; with the error
    that refused a delete (409)."""
    return _render(
        request,
        "alerts/channel_detail.html",
        {
            "title": channel.name,
            "channel": channel,
            "row": _channel_row(channel),
            "pipelines": selectors.channel_pipelines(channel),
            "deliveries": selectors.channel_delivery_page(channel=channel, limit=DELIVERY_LOG_LIMIT),
            "error": error,
        },
        status=409 if error else 200,
    )


@alerts_page
def channel_detail(request: HttpRequest, channel_id: int) -> HttpResponse:
    return _channel_page(request, selectors.channel_get(workspace=request.workspace, channel_id=channel_id))


def _channel_save(request: HttpRequest, channel: AlertChannel | None) -> HttpResponse:
    if request.method == "POST":
        form = ChannelForm(request.POST)
    else:
        initial = {}
        if channel is not None:
            initial = {
                "name": channel.name,
                "type": channel.type,
                "url": channel_url_shown(channel) or "",
                "to": channel.to,
                "chat_id": channel.chat_id,
                "table": channel.table,
                "mentions": channel.mentions,
                "rate_limit_per_minute": channel.rate_limit_per_minute,
            }
        form = ChannelForm(initial=initial)
    if request.method == "POST" and form.is_valid():
        spec = form.spec()
        try:
            if channel is None:
                if spec["name"] is None:
                    raise DomainError("Give the channel a name.", code="missing_field", field="name")
                channel = channel_create(workspace=request.workspace, spec=spec, field="channel")
            else:
                channel = channel_update(channel=channel, spec=spec, field="channel")
        except DomainError as exc:
            key = (exc.field or "").removeprefix("channel.").split("[")[0]
            form.add_error(key if key in form.fields else None, str(exc))
        else:
            return redirect("alerts:channel", channel_id=channel.pk)
    return _render(
        request,
        "alerts/channel_form.html",
        {"title": f"Edit {channel.name}" if channel else "New channel", "channel": channel, "form": form},
        status=400 if request.method == "POST" else 200,
    )


@alerts_page
@editor_only
def channel_new(request: HttpRequest) -> HttpResponse:
    return _channel_save(request, None)


@alerts_page
@editor_only
def channel_edit(request: HttpRequest, channel_id: int) -> HttpResponse:
    return _channel_save(request, selectors.channel_get(workspace=request.workspace, channel_id=channel_id))


@require_POST
@alerts_page
@editor_only
def channel_test(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = selectors.channel_get(workspace=request.workspace, channel_id=channel_id)
    channel_test_send(channel=channel, now=timezone.now())
    return redirect("alerts:channel", channel_id=channel.pk)


@require_POST
@alerts_page
@editor_only
def channel_remove(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = selectors.channel_get(workspace=request.workspace, channel_id=channel_id)
    try:
        channel_delete(channel=channel)
    except DomainError as exc:
        return _channel_page(request, channel, error=str(exc))
    return redirect("alerts:channels")
