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
from .channels import channel_create, channel_delete, channel_test_send, channel_update
from .destinations import channel_target_shown, channel_url_shown, mask_secret
from .models import AlertChannel, AlertPipeline

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

TRIGGER_FIELDS = {"features", "plans", "min_quantity", "percent", "days", "expected_later"}


class PipelineForm(forms.Form):
    name = forms.CharField(required=False, max_length=1000)
    enabled = forms.BooleanField(required=False, initial=True)
    trigger_type = forms.ChoiceField(
        choices=[("", "—")] + list(AlertPipeline.TriggerType.choices), required=False, label="Trigger"
    )
    features = forms.CharField(required=False, help_text="Feature keys, comma-separated (empty: all).")
    expected_later = forms.BooleanField(
        required=False,
        label="Keep keys not seen yet",
        help_text="Tick to keep feature keys no event has used yet (otherwise a key not in the catalog is refused).",
    )
    plans = forms.CharField(required=False, help_text="Plan labels, comma-separated (empty: all).")
    min_quantity = forms.CharField(required=False, label="Minimum quantity", help_text="event, free plan")
    percent = forms.CharField(
        required=False,
        help_text="threshold: percents of the allowance, e.g. 80, 100; usage drop: one percent",
    )
    days = forms.CharField(required=False, help_text="dormant (default 14), usage drop (default 7)")
    channels = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Channels",
        help_text="The workspace's channels this pipeline posts to (besides the ones below).",
    )

    def __init__(self, *args, channel_choices: list[tuple[int, str]] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["channels"].choices = [(str(pk), label) for pk, label in channel_choices]

    def trigger(self) -> dict:
        data = self.cleaned_data
        trigger: dict = {"type": data["trigger_type"] or None}
        for key in ("features", "plans"):
            if data[key].strip():
                trigger[key] = [v.strip() for v in data[key].split(",")]
        if data["expected_later"] and "features" in trigger:
            trigger["expected_later"] = True
        for key in ("min_quantity", "days"):
            if data[key].strip():
                trigger[key] = _number(data[key])
        if data["percent"].strip():
            values = [_number(v) for v in data["percent"].split(",")]
            is_list = data["trigger_type"] == AlertPipeline.TriggerType.THRESHOLD or len(values) > 1
            trigger["percent"] = values if is_list else values[0]
        return trigger


class DestinationForm(forms.Form):
    """One channel described inline: an existing channel of the pipeline (with its id) or a new one."""

    id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    type = forms.ChoiceField(choices=[("", "—")] + list(AlertChannel.Type.choices), required=False)
    url = forms.CharField(required=False, max_length=4000, label="URL")
    to = forms.CharField(required=False, max_length=4000, label="To", help_text="E-mail addresses, comma-separated")
    secret = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.PasswordInput(render_value=False),
        help_text="Webhooks: signs each body (HMAC-SHA256). Leave blank to keep the stored one.",
    )
    token = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.PasswordInput(render_value=False),
        help_text="Telegram: the bot token. Leave blank to keep the stored one.",
    )
    chat_id = forms.CharField(required=False, max_length=200, label="Chat", help_text="Telegram: chat id or @name")
    table = forms.CharField(required=False, max_length=200, help_text="PostgreSQL: [schema.]table")
    mentions = forms.BooleanField(required=False, help_text="Let @everyone, @here and roles ping")
    rate_limit_per_minute = forms.CharField(required=False, label="Per minute")

    def is_blank(self) -> bool:
        data = self.cleaned_data
        return not (
            data.get("id")
            or data.get("type")
            or any(data.get(k, "").strip() for k in ("url", "to", "token", "chat_id", "table"))
        )

    def spec(self) -> dict:
        data = self.cleaned_data
        spec: dict = {"type": data["type"] or None, "mentions": data["mentions"]}
        if data["id"]:
            spec["id"] = data["id"]
        for key in ("url", "to", "secret", "token", "chat_id", "table"):
            if data.get(key, "").strip():
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
        "expected_later": config.get("expected_later", False),
        "plans": ", ".join(config.get("plans", [])),
        "min_quantity": config.get("min_quantity", ""),
        "percent": ", ".join(map(str, percent)) if isinstance(percent, list) else (percent or ""),
        "days": config.get("days", ""),
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
    if field.startswith("channels"):
        form.add_error("channels", message)
        return
    match = _ERROR_FIELD.match(field)
    if match and int(match.group(1)) < len(rows):
        row = formset.forms[rows[int(match.group(1))]]
        key = match.group(2)
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


def _save(request: HttpRequest, pipeline: AlertPipeline | None) -> HttpResponse:
    initial, destinations = _initial(pipeline)
    choices = _channel_choices(request, pipeline)
    if request.method == "POST":
        form = PipelineForm(request.POST, channel_choices=choices)
        formset = DestinationFormSet(request.POST, prefix="dest")
    else:
        form = PipelineForm(initial=initial, channel_choices=choices)
        formset = DestinationFormSet(prefix="dest", initial=destinations)
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        rows = [i for i, f in enumerate(formset.forms) if not f.is_blank() and not f.cleaned_data.get("DELETE")]
        body = {
            "name": form.cleaned_data["name"],
            "enabled": form.cleaned_data["enabled"],
            "trigger": form.trigger(),
            # None (not []) when nothing is ticked: the service then asks for a destination, as a manager expects.
            "channels": [int(pk) for pk in form.cleaned_data["channels"]] or None,
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


class ChannelForm(DestinationForm):
    name = forms.CharField(required=False, max_length=1000)
    field_order = ["name", "type", "url", "to", "secret", "token", "chat_id", "table", "mentions"]

    def spec(self) -> dict:
        spec = super().spec()
        spec.pop("id", None)
        spec["name"] = self.cleaned_data["name"].strip() or None
        return spec


@alerts_page
def channel_list(request: HttpRequest) -> HttpResponse:
    rows = [
        {**_channel_row(c), "pipelines": selectors.channel_pipelines(c)}
        for c in selectors.channel_list(workspace=request.workspace)
    ]
    return _render(request, "alerts/channels.html", {"title": "Alert channels", "channels": rows})


@alerts_page
def channel_detail(request: HttpRequest, channel_id: int) -> HttpResponse:
    channel = selectors.channel_get(workspace=request.workspace, channel_id=channel_id)
    return _render(
        request,
        "alerts/channel_detail.html",
        {
            "title": channel.name,
            "channel": channel,
            "row": _channel_row(channel),
            "pipelines": selectors.channel_pipelines(channel),
            "deliveries": selectors.channel_delivery_page(channel=channel, limit=DELIVERY_LOG_LIMIT),
        },
    )


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
        return _render(
            request,
            "alerts/channel_detail.html",
            {
                "title": channel.name,
                "channel": channel,
                "row": _channel_row(channel),
                "pipelines": selectors.channel_pipelines(channel),
                "deliveries": selectors.channel_delivery_page(channel=channel, limit=DELIVERY_LOG_LIMIT),
                "error": str(exc),
            },
            status=409,
        )
    return redirect("alerts:channels")
