"""Dashboard forms of the alert pages: HTML inputs → the REST bodies the services take. Parsing only; every rule
is the service's, whose DomainError names the input it is shown next to (alerts.views)."""

from __future__ import annotations

import re

from django import forms

from .filters import FIELDS, OPS, PREFIXES
from .models import AlertChannel, AlertPipeline

BLANK_DESTINATION_ROWS = 2
BLANK_CONDITION_ROWS = 2
TriggerType = AlertPipeline.TriggerType
# Which trigger types read each setting: the form shows a setting only for those (static/alerts/pipeline_form.js).
SETTING_TRIGGERS = {
    "features": "event threshold paid_feature_on_free_plan usage_drop",
    "unseen_features": "event threshold paid_feature_on_free_plan usage_drop",
    "expected_later": "event threshold paid_feature_on_free_plan usage_drop",
    "min_quantity": "event paid_feature_on_free_plan",
    "percent": "threshold usage_drop",
    "days": "dormant usage_drop",
}


TRIGGER_FIELDS = {"features", "plans", "min_quantity", "percent", "days", "expected_later"}


class PipelineForm(forms.Form):
    name = forms.CharField(required=False, max_length=1000)
    enabled = forms.BooleanField(required=False, initial=True)
    trigger_type = forms.ChoiceField(
        choices=[("", "— choose —")] + list(TriggerType.choices), required=False, label="Trigger"
    )
    features = forms.MultipleChoiceField(
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 6}),
        help_text="Features from the catalog (none selected: every feature).",
    )
    unseen_features = forms.CharField(
        required=False,
        label="Keys not seen yet",
        help_text="Feature keys no event has used yet, comma-separated.",
    )
    expected_later = forms.BooleanField(
        required=False,
        label="Not seen yet: keep them",
        help_text="Tick to keep the keys above although they are not in the catalog (a typo would never fire).",
    )
    plans = forms.CharField(required=False, help_text="Plan labels, comma-separated (empty: all).")
    min_quantity = forms.CharField(required=False, label="Minimum quantity")
    percent = forms.CharField(
        required=False,
        help_text="Threshold: percents of the allowance, e.g. 80, 100. Usage drop: one percent, e.g. 50.",
    )
    days = forms.CharField(required=False, help_text="Dormant: default 14. Usage drop: the window, default 7.")
    filter_match = forms.ChoiceField(
        choices=[("all", "all conditions hold"), ("any", "any condition holds")],
        required=False,
        label="Alert when",
    )
    template_title = forms.CharField(
        required=False,
        max_length=1000,
        label="Message title",
        help_text="e.g. $event.name by $account.name ($account.plan). Empty: the default title.",
    )
    template_body = forms.CharField(
        required=False,
        max_length=5000,
        label="Message text",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Placeholders: $event.name, $event.quantity, $event.<property>, $account.name, $account.plan, "
        "$account.owner, $user.email, $feature.name. $$ for a dollar sign.",
    )
    channels = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Channels",
        help_text="The workspace's channels this pipeline posts to (besides the ones below).",
    )

    def __init__(
        self,
        *args,
        channel_choices: list[tuple[int, str]] = (),
        feature_choices: list[tuple[str, str]] = (),
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.fields["channels"].choices = [(str(pk), label) for pk, label in channel_choices]
        self.fields["features"].choices = list(feature_choices)
        for name, triggers in SETTING_TRIGGERS.items():
            self.fields[name].widget.attrs["data-triggers"] = triggers
        self.fields["trigger_type"].widget.attrs["data-trigger-select"] = "1"

    def clean(self):
        # A manager's words for what the service would refuse by field name.
        data = super().clean()
        if not (data.get("name") or "").strip():
            self.add_error("name", "Give the pipeline a name.")
        if not data.get("trigger_type"):
            self.add_error("trigger_type", "Choose what should trigger the pipeline.")
        return data

    def trigger(self) -> dict:
        data = self.cleaned_data
        trigger: dict = {"type": data["trigger_type"] or None}
        features = list(data["features"]) + [v.strip() for v in data["unseen_features"].split(",") if v.strip()]
        if features:
            trigger["features"] = features
        if data["plans"].strip():
            trigger["plans"] = [v.strip() for v in data["plans"].split(",")]
        if data["expected_later"] and features:
            trigger["expected_later"] = True
        for key in ("min_quantity", "days"):
            if data[key].strip():
                trigger[key] = _number(data[key])
        if data["percent"].strip():
            values = [_number(v) for v in data["percent"].split(",")]
            is_list = data["trigger_type"] == TriggerType.THRESHOLD or len(values) > 1
            trigger["percent"] = values if is_list else values[0]
        # Settings the chosen trigger does not read are left out (the form may have kept them while switching).
        return {k: v for k, v in trigger.items() if k == "type" or k not in SETTING_TRIGGERS or _reads(trigger, k)}

    def template(self) -> dict | None:
        title, body = self.cleaned_data["template_title"], self.cleaned_data["template_body"]
        return {"title": title, "body": body} if (title.strip() or body.strip()) else None


def _reads(trigger: dict, key: str) -> bool:
    return trigger["type"] is None or trigger["type"] in SETTING_TRIGGERS[key].split()


FIELD_CHOICES = [("", "—")] + [(f, f) for f in FIELDS] + [(p, f"{p}<name>") for p in PREFIXES]
OP_LABELS = {
    "eq": "is",
    "ne": "is not",
    "in": "is one of",
    "not_in": "is none of",
    "gt": ">",
    "gte": "≥",
    "lt": "<",
    "lte": "≤",
    "contains": "contains",
    "starts_with": "starts with",
    "glob": "matches (* ?)",
    "exists": "is present",
}


class ConditionForm(forms.Form):
    """One filter condition, built from selects: field (+ attribute name), operator, value."""

    field = forms.ChoiceField(choices=FIELD_CHOICES, required=False)
    name = forms.CharField(required=False, max_length=200, help_text="attribute or property name")
    op = forms.ChoiceField(choices=[("", "—")] + [(o, OP_LABELS[o]) for o in OPS], required=False)
    value = forms.CharField(required=False, max_length=2000, help_text="lists: comma-separated")
    expected_later = forms.BooleanField(required=False, label="Not seen yet")

    def is_blank(self) -> bool:
        data = self.cleaned_data
        return not (data.get("field") or data.get("op") or (data.get("value") or "").strip())

    def spec(self) -> dict:
        data = self.cleaned_data
        field = data["field"] or None
        if field and field.endswith("."):
            field = field + data["name"].strip()
        op = data["op"] or None
        raw = data["value"].strip()
        condition: dict = {"field": field, "op": op}
        if op == "exists":
            condition["value"] = raw.lower() not in ("false", "no", "0")
        elif op in ("in", "not_in"):
            condition["value"] = [_scalar(v) for v in raw.split(",") if v.strip()] if raw else None
        elif raw:
            condition["value"] = raw if op in ("contains", "starts_with", "glob") else _scalar(raw)
        if data["expected_later"]:
            condition["expected_later"] = True
        return condition


ConditionFormSet = forms.formset_factory(ConditionForm, extra=BLANK_CONDITION_ROWS, can_delete=True)


def _scalar(raw: str):
    raw = raw.strip()
    if re.fullmatch(r"-?[0-9]{1,4000}", raw):
        return int(raw)
    if re.fullmatch(r"-?[0-9]{1,300}\.[0-9]{1,300}", raw):
        return float(raw)
    return raw


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


class ChannelForm(DestinationForm):
    name = forms.CharField(required=False, max_length=1000)
    field_order = ["name", "type", "url", "to", "secret", "token", "chat_id", "table", "mentions"]

    def spec(self) -> dict:
        spec = super().spec()
        spec.pop("id", None)
        spec["name"] = self.cleaned_data["name"].strip() or None
        return spec
