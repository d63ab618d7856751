"""Analytics API: thin DRF views over analytics.selectors."""

from datetime import UTC

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import HasReadScope
from core.ratelimit import ApiKeyRateThrottle
from core.serializers import error_response
from usage.selectors import end_user_usage

from . import selectors


class WindowInputSerializer(serializers.Serializer):
    # Named from/to on the wire; `from` is a Python keyword, hence the explicit field names below.
    to = serializers.DateField(required=False, input_formats=["iso-8601"])

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateField(required=False, input_formats=["iso-8601"])
        return fields


class FeatureUsageInputSerializer(WindowInputSerializer):
    event = serializers.CharField(required=False, allow_blank=True, max_length=64, trim_whitespace=True)
    account_id = serializers.CharField(required=False, max_length=64)


class FeatureDailyInputSerializer(WindowInputSerializer):
    account_id = serializers.CharField(required=False, max_length=64)


class AccountDailyInputSerializer(WindowInputSerializer):
    product_id = serializers.CharField(required=False, max_length=64)


def _window(data: dict) -> selectors.Window:
    return selectors.analytics_window(
        date_from=data.get("from"), date_to=data.get("to"), today=timezone.now().astimezone(UTC).date()
    )


PAID_ONLY = error_response("Analytics are for paid workspaces (`payment_required`); this one is on the free tier.")

_WINDOW_PARAMS = [
    OpenApiParameter("from", str, description="First UTC date (YYYY-MM-DD), inclusive. Default: `to` − 29 days."),
    OpenApiParameter("to", str, description="Last UTC date (YYYY-MM-DD), inclusive. Default: today (UTC)."),
]

_top_feature = inline_serializer(
    "TopFeature",
    {
        "feature_id": serializers.CharField(),
        "name": serializers.CharField(),
        "events": serializers.IntegerField(help_text="Net uses in the window."),
        "prior_events": serializers.IntegerField(help_text="Net uses in the equally long window before `from`."),
        "accounts": serializers.IntegerField(help_text="Accounts whose net uses are > 0."),
        "domains": serializers.IntegerField(help_text="Account domains whose net uses are > 0."),
        "adoption_pct": serializers.FloatField(help_text="100 × accounts / active_accounts, one decimal."),
        "sparkline": serializers.ListField(child=serializers.IntegerField()),
        "sparkline_days": serializers.ListField(child=serializers.DateField()),
    },
    many=True,
)
FeatureUsageOutput = inline_serializer(
    "FeatureUsage",
    {
        "product_id": serializers.CharField(),
        "from": serializers.DateField(),
        "to": serializers.DateField(),
        "prior_from": serializers.DateField(),
        "prior_to": serializers.DateField(),
        "timezone": serializers.CharField(),
        "totals": inline_serializer(
            "FeatureUsageTotals",
            {
                "events": serializers.IntegerField(),
                "unique_features": serializers.IntegerField(),
                "unique_accounts": serializers.IntegerField(),
                "unique_domains": serializers.IntegerField(),
                "active_accounts": serializers.IntegerField(),
            },
        ),
        "top_features": _top_feature,
        "quiet_features": inline_serializer(
            "QuietFeature",
            {
                "feature_id": serializers.CharField(),
                "name": serializers.CharField(),
                "prior_events": serializers.IntegerField(),
            },
            many=True,
        ),
        "usage_pattern": serializers.ListField(
            child=serializers.ListField(child=serializers.IntegerField()),
            help_text="7 rows (0 = Sunday) × 24 hours of net uses, in the workspace's timezone.",
        ),
        "top_accounts": inline_serializer(
            "TopAccount",
            {
                "account_id": serializers.CharField(),
                "name": serializers.CharField(),
                "customer_email": serializers.CharField(
                    help_text='The account\'s billing contact (`PUT /api/v1/accounts/{id}`), "" if none.'
                ),
                "events": serializers.IntegerField(),
                "features": serializers.IntegerField(),
            },
            many=True,
        ),
        "top_domains": inline_serializer(
            "TopDomain", {"domain": serializers.CharField(), "events": serializers.IntegerField()}, many=True
        ),
    },
)
FeatureDailyOutput = inline_serializer(
    "FeatureDaily",
    {
        "feature_id": serializers.CharField(),
        "name": serializers.CharField(),
        "from": serializers.DateField(),
        "to": serializers.DateField(),
        "uses": serializers.IntegerField(),
        "accounts": serializers.IntegerField(help_text="Accounts with net uses > 0 over the window."),
        "users": serializers.IntegerField(help_text="Distinct end users with events in the window."),
        "days": inline_serializer(
            "FeatureDay",
            {
                "day": serializers.DateField(),
                "uses": serializers.IntegerField(),
                "events": serializers.IntegerField(),
                "accounts": serializers.IntegerField(),
                "users": serializers.IntegerField(),
            },
            many=True,
        ),
    },
)
AccountDailyOutput = inline_serializer(
    "AccountDaily",
    {
        "account_id": serializers.CharField(),
        "name": serializers.CharField(),
        "from": serializers.DateField(),
        "to": serializers.DateField(),
        "uses": serializers.IntegerField(),
        "days": inline_serializer(
            "AccountDay",
            {
                "day": serializers.DateField(),
                "uses": serializers.IntegerField(),
                "events": serializers.IntegerField(),
                "features": serializers.IntegerField(),
            },
            many=True,
        ),
        "last_seen": inline_serializer(
            "AccountFeatureLastSeen",
            {"feature_id": serializers.CharField(), "last_seen_at": serializers.DateTimeField()},
            many=True,
        ),
    },
)


class FeatureUsageApi(APIView):
    permission_classes = [HasReadScope]

    @extend_schema(
        summary="Feature usage analytics of a product",
        description="Net uses (reversals included) from the rollups. 402 on free-tier workspaces.",
        parameters=[
            *_WINDOW_PARAMS,
            OpenApiParameter("event", str, description="Keep features whose key contains this (case-insensitive)."),
            OpenApiParameter("account_id", str, description="Keep one account (its external id)."),
        ],
        responses={200: FeatureUsageOutput, 402: PAID_ONLY},
    )
    def get(self, request, product_id: str):
        workspace = request.user.workspace
        selectors.analytics_require_paid(workspace=workspace)
        params = FeatureUsageInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        product = selectors.analytics_product_get(workspace=workspace, key=product_id)
        window = _window(params.validated_data)
        account_id = params.validated_data.get("account_id")
        account = selectors.analytics_account_get(workspace=workspace, external_id=account_id) if account_id else None
        data = selectors.feature_usage_cached(
            workspace=workspace,
            product=product,
            window=window,
            event=params.validated_data.get("event") or None,
            account=account,
        )
        return Response(data.as_json())


class FeatureDailyApi(APIView):
    permission_classes = [HasReadScope]

    @extend_schema(
        summary="Daily series of one feature",
        parameters=[*_WINDOW_PARAMS, OpenApiParameter("account_id", str, description="Keep one account.")],
        responses={200: FeatureDailyOutput, 402: PAID_ONLY},
    )
    def get(self, request, product_id: str, feature_id: str):
        workspace = request.user.workspace
        selectors.analytics_require_paid(workspace=workspace)
        params = FeatureDailyInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        product = selectors.analytics_product_get(workspace=workspace, key=product_id)
        feature = selectors.analytics_feature_get(workspace=workspace, product=product, key=feature_id)
        window = _window(params.validated_data)
        account_id = params.validated_data.get("account_id")
        account = selectors.analytics_account_get(workspace=workspace, external_id=account_id) if account_id else None
        return Response(
            selectors.feature_daily_series(workspace=workspace, feature=feature, window=window, account=account)
        )


class AccountDailyApi(APIView):
    permission_classes = [HasReadScope]

    @extend_schema(
        summary="Daily series of one account",
        description="Net uses, events and features used per UTC day, and when each feature was last used.",
        parameters=[*_WINDOW_PARAMS, OpenApiParameter("product_id", str, description="Keep one product.")],
        responses={200: AccountDailyOutput, 402: PAID_ONLY},
    )
    def get(self, request, account_id: str):
        workspace = request.user.workspace
        selectors.analytics_require_paid(workspace=workspace)
        params = AccountDailyInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        account = selectors.analytics_account_get(workspace=workspace, external_id=account_id)
        product_key = params.validated_data.get("product_id")
        product = selectors.analytics_product_get(workspace=workspace, key=product_key) if product_key else None
        window = _window(params.validated_data)
        return Response(
            selectors.account_daily_series(workspace=workspace, account=account, window=window, product=product)
        )


class EndUserUsageInputSerializer(WindowInputSerializer):
    feature_id = serializers.CharField(required=False, max_length=64)


EndUserUsageOutput = inline_serializer(
    "EndUserUsage",
    {
        "account_id": serializers.CharField(),
        "user_id": serializers.CharField(),
        "from": serializers.DateField(),
        "to": serializers.DateField(),
        "uses": serializers.IntegerField(help_text="Net uses (the sum of quantities, reversals included)."),
        "events": serializers.IntegerField(),
        "features": inline_serializer(
            "EndUserFeatureUse",
            {
                "feature_id": serializers.CharField(),
                "name": serializers.CharField(),
                "uses": serializers.IntegerField(),
                "events": serializers.IntegerField(),
                "last_used_at": serializers.DateTimeField(allow_null=True),
            },
            many=True,
        ),
    },
)


class EndUserUsageApi(APIView):
    permission_classes = [HasReadScope]
    throttle_classes = [ApiKeyRateThrottle]

    @extend_schema(
        summary="Usage of one end user",
        description="Net uses and events of one end user of an account per feature over the window (UTC days, "
        "inclusive), from the raw events: exact and current, including what was just recorded. Not limited to "
        "the paid tier (it is the per-user counterpart of the entitlement check's `used`).",
        parameters=[*_WINDOW_PARAMS, OpenApiParameter("feature_id", str, description="Keep one feature.")],
        responses={
            200: EndUserUsageOutput,
            400: error_response("Bad date, `to` before `from`, or a window over the maximum."),
            404: error_response("Unknown account, end user or feature."),
        },
    )
    def get(self, request, account_id: str, user_id: str):
        params = EndUserUsageInputSerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        window = _window(params.validated_data)
        usage = end_user_usage(
            workspace=request.user.workspace,
            account_id=account_id,
            user_id=user_id,
            feature_key=params.validated_data.get("feature_id"),
            start=window.start,
            end=window.end,
        )
        return Response(
            {
                "account_id": usage.account_id,
                "user_id": usage.user_id,
                "from": usage.start,
                "to": usage.end,
                "uses": usage.uses,
                "events": usage.events,
                "features": [
                    {
                        "feature_id": f.feature_id,
                        "name": f.name,
                        "uses": f.uses,
                        "events": f.events,
                        "last_used_at": f.last_used_at,
                    }
                    for f in usage.features
                ],
            }
        )
