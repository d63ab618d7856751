"""Input and output serializers of the pipelines API. Validation of meaning lives in services.py."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .channels import CHANNEL_FIELDS
from .destinations import channel_url_shown, mask_secret
from .models import AlertChannel, AlertDelivery, AlertPipeline
from .selectors import channel_pipelines, pipeline_channels


class TriggerInput(serializers.Serializer):
    type = serializers.ChoiceField(choices=AlertPipeline.TriggerType.choices)
    features = serializers.ListField(child=serializers.CharField(), required=False)
    plans = serializers.ListField(child=serializers.CharField(), required=False)
    min_quantity = serializers.IntegerField(required=False)
    percent = serializers.JSONField(
        required=False, help_text="threshold: list of percents (default [80, 100]); usage_drop: one percent"
    )
    days = serializers.IntegerField(required=False)
    expected_later = serializers.BooleanField(
        required=False, help_text="Keep feature keys that are not in the catalog yet (otherwise refused)."
    )


class ConditionInput(serializers.Serializer):
    field = serializers.CharField(
        help_text="feature.key, account.id|name|plan|status|owner|domain, account.attributes.<name>, user.id, "
        "user.email, user.email_domain, user.attributes.<name>, event.quantity, event.properties.<name>"
    )
    op = serializers.ChoiceField(
        choices=["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "starts_with", "glob", "exists"]
    )
    value = serializers.JSONField(required=False, help_text="A value; a list for in/not_in; true/false for exists.")
    expected_later = serializers.BooleanField(
        required=False, help_text="feature.key: keep keys that are not in the catalog yet."
    )


class FilterInput(serializers.Serializer):
    match = serializers.ChoiceField(choices=["all", "any"], required=False, default="all")
    conditions = ConditionInput(many=True)


class TemplateInput(serializers.Serializer):
    title = serializers.CharField(required=False, help_text="e.g. $event.name by $account.name ($account.plan)")
    body = serializers.CharField(required=False, help_text="$event.*, $account.*, $user.*, $feature.* placeholders")


class ChannelInput(serializers.Serializer):
    """Documents the body; the view passes the raw JSON to the service, which names the field at fault."""

    name = serializers.CharField(help_text="Unique in the workspace.")
    type = serializers.ChoiceField(choices=AlertChannel.Type.choices)
    url = serializers.CharField(
        required=False, help_text="slack, discord, webhook: the http(s) URL; postgres: the connection URL (a secret)."
    )
    to = serializers.CharField(required=False, help_text="email: addresses, comma-separated (or a list).")
    secret = serializers.CharField(required=False, write_only=True, help_text="webhook: the HMAC signing secret.")
    token = serializers.CharField(required=False, write_only=True, help_text="telegram: the bot token.")
    chat_id = serializers.CharField(required=False, help_text="telegram: the chat id or @channelname.")
    table = serializers.CharField(required=False, help_text="postgres: [schema.]table, created if missing.")
    mentions = serializers.BooleanField(required=False, help_text="Let @everyone, @here, roles and users ping.")
    rate_limit_per_minute = serializers.IntegerField(required=False, min_value=1, max_value=10_000)


class DestinationInput(ChannelInput):
    id = serializers.IntegerField(required=False, help_text="Update this channel of the pipeline (update only).")
    name = serializers.CharField(required=False, help_text="Default: the type and target.")


class PipelineInput(serializers.Serializer):
    """Documents the body; the view passes the raw JSON to the service, which names the field at fault."""

    name = serializers.CharField()
    enabled = serializers.BooleanField(required=False, default=True)
    trigger = TriggerInput()
    channels = serializers.ListField(
        child=serializers.IntegerField(), required=False, help_text="Ids of the workspace's channels."
    )
    destinations = DestinationInput(
        many=True, required=False, help_text="Channels described inline: created, or updated when the target exists."
    )
    filter = FilterInput(required=False)
    template = TemplateInput(required=False)


class ChannelOutput(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(
        help_text="Slack and Discord tokens and URL credentials (user name and password) masked."
    )
    to = serializers.SerializerMethodField()
    secret = serializers.SerializerMethodField(help_text="Masked: only the last 4 characters are shown.")
    token = serializers.SerializerMethodField(help_text="Masked: only the last 4 characters are shown.")
    chat_id = serializers.SerializerMethodField()
    table = serializers.SerializerMethodField()
    pipelines = serializers.SerializerMethodField(help_text="Ids of the pipelines posting to this channel.")

    class Meta:
        model = AlertChannel
        fields = ["id", *CHANNEL_FIELDS, "pipelines", "created_at", "updated_at"]

    def get_url(self, obj: AlertChannel) -> str | None:
        return channel_url_shown(obj)

    def get_to(self, obj: AlertChannel) -> list[str] | None:
        return obj.to.split(",") if obj.to else None

    def get_secret(self, obj: AlertChannel) -> str | None:
        return mask_secret(obj.secret)

    def get_token(self, obj: AlertChannel) -> str | None:
        return mask_secret(obj.token)

    def get_chat_id(self, obj: AlertChannel) -> str | None:
        return obj.chat_id or None

    def get_table(self, obj: AlertChannel) -> str | None:
        return obj.table or None

    def get_pipelines(self, obj: AlertChannel) -> list[int]:
        return [p.pk for p in channel_pipelines(obj)]


class DestinationOutput(ChannelOutput):
    """A pipeline's channel as shown inside the pipeline (the `destinations` of the first API version)."""

    class Meta(ChannelOutput.Meta):
        fields = [f for f in ChannelOutput.Meta.fields if f not in ("pipelines", "created_at", "updated_at")]


class PipelineOutput(serializers.ModelSerializer):
    trigger = serializers.SerializerMethodField()
    channels = serializers.SerializerMethodField(help_text="Ids of the channels, in order.")
    destinations = serializers.SerializerMethodField(help_text="The channels, in order (secrets masked).")

    class Meta:
        model = AlertPipeline
        fields = [
            "id",
            "name",
            "enabled",
            "trigger",
            "channels",
            "destinations",
            "filter",
            "template",
            "created_at",
            "updated_at",
        ]

    def get_trigger(self, obj: AlertPipeline) -> dict:
        return {"type": obj.trigger_type, **obj.trigger_config}

    def get_channels(self, obj: AlertPipeline) -> list[int]:
        return [c.pk for c in pipeline_channels(obj)]

    @extend_schema_field(DestinationOutput(many=True))
    def get_destinations(self, obj: AlertPipeline) -> list[dict]:
        return DestinationOutput(pipeline_channels(obj), many=True).data


class DeliveryOutput(serializers.ModelSerializer):
    destination_id = serializers.IntegerField(source="channel_id", help_text="The channel's id (first API name).")

    class Meta:
        model = AlertDelivery
        fields = [
            "id",
            "pipeline_id",
            "channel_id",
            "destination_id",
            "kind",
            "status",
            "attempts",
            "last_error",
            "response_code",
            "payload",
            "summary_id",
            "created_at",
            "next_attempt_at",
            "sent_at",
        ]
