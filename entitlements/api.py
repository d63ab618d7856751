"""Entitlement REST: the check API, an account's entitlements, item entitlements, subscriptions and their
overrides. Thin views: parse with an input serializer, call one service or selector, render."""

import django_filters
from django.db import DatabaseError
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.mixins import ListModelMixin
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import HasReadScope, ReadOrAdminScope
from accounts.models import EXTERNAL_ID_MAX_LENGTH, Account
from catalog.models import KEY_MAX_LENGTH, Item
from catalog.selectors import feature_get, item_get
from config.api import fast_json_response, fast_path_principal
from core.errors import DomainError
from core.ratelimit import api_key_rate_take

from . import selectors, services
from .models import MAX_QUANTITY, SUBSCRIPTION_ID_MAX_LENGTH, Subscription


class EntitlementCheckSerializer(serializers.Serializer):
    feature_id = serializers.CharField()
    entitled = serializers.BooleanField()
    type = serializers.CharField(allow_null=True)
    value = serializers.CharField(allow_null=True)
    unlimited = serializers.BooleanField()
    limit = serializers.IntegerField(allow_null=True)
    used = serializers.IntegerField(allow_null=True)
    remaining = serializers.IntegerField(allow_null=True)
    resets_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.ChoiceField(
        choices=["not_entitled", "limit_exceeded", "unknown_account", "unknown_feature"], allow_null=True
    )


class CheckQuerySerializer(serializers.Serializer):
    account_id = serializers.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    feature_id = serializers.CharField(max_length=KEY_MAX_LENGTH)
    quantity = serializers.IntegerField(required=False, default=0, min_value=0, max_value=MAX_QUANTITY)


class EntitlementCheckView(APIView):
    permission_classes = [HasReadScope]
    rate_bucket = "check"  # its own budget, sized for a client's hot path (core/ratelimit.py)

    @extend_schema(
        operation_id="entitlements_check",
        parameters=[CheckQuerySerializer],
        responses=EntitlementCheckSerializer,
        description="May this account use this feature, and how much is left. With `quantity`, `entitled` "
        "also requires used + quantity ≤ limit (metered) or quantity ≤ value (quantity/range); "
        "`POST /api/v1/usage/record` applies the same rule. A metered allowance of 0 grants nothing: "
        "`entitled: false`, reason `not_entitled`, `limit: 0`. Unknown accounts and features answer "
        "`entitled: false` with reason `unknown_account` / `unknown_feature`.",
    )
    def get(self, request):
        query = CheckQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        payload = selectors.entitlement_check(
            workspace=request.user.workspace,
            account_key=query.validated_data["account_id"].strip(),
            feature_key=query.validated_data["feature_id"].strip(),
            quantity=query.validated_data["quantity"],
            now=timezone.now(),
        )
        return Response(payload)


# The check is the API's hottest call (bench/entitlements measures it): its common case is served
# below DRF (config.api fast paths); parameters the serializer would refuse or coerce, and database errors, go
# to EntitlementCheckView like every other case the fast path leaves.
_check_view = EntitlementCheckView.as_view()


def _check_key_param(value: str | None, *, max_length: int) -> str | None:
    """The stripped key when CheckQuerySerializer would take it unchanged, else None."""
    if value is None:
        return None
    value = value.strip()
    return value if 0 < len(value) <= max_length and value.isprintable() else None


def _check_fast(request) -> dict | None:
    """The check answer, or None when the request is not the plain valid case the fast path serves."""
    params = request.GET
    account_key = _check_key_param(params.get("account_id"), max_length=EXTERNAL_ID_MAX_LENGTH)
    feature_key = _check_key_param(params.get("feature_id"), max_length=KEY_MAX_LENGTH)
    raw_quantity = params.get("quantity")
    if account_key is None or feature_key is None:
        return None
    if raw_quantity is None:
        quantity = 0
    elif raw_quantity.isascii() and raw_quantity.isdigit() and int(raw_quantity) <= MAX_QUANTITY:
        quantity = int(raw_quantity)
    else:
        return None
    principal = fast_path_principal(request, method="GET", scope=HasReadScope.scope)
    # Over the limit: EntitlementCheckView answers the 429 (its throttle finds the bucket empty too).
    if principal is None or not api_key_rate_take(principal, "check")[0]:
        return None
    try:
        return selectors.entitlement_check(
            workspace=principal.workspace,
            account_key=account_key,
            feature_key=feature_key,
            quantity=quantity,
            now=timezone.now(),
        )
    except DatabaseError:
        return None


@csrf_exempt
def entitlement_check(request):
    """`GET /api/v1/entitlements/check` (see EntitlementCheckView, which documents it and answers every case
    the fast path leaves to it)."""
    payload = _check_fast(request)
    if payload is None:
        return _check_view(request)
    return fast_json_response(payload, allow="GET, HEAD, OPTIONS")


# drf-spectacular documents views by their APIView class: the check's schema is EntitlementCheckView's.
entitlement_check.cls = EntitlementCheckView
entitlement_check.initkwargs = _check_view.initkwargs


class AccountEntitlementsView(APIView):
    permission_classes = [HasReadScope]

    @extend_schema(
        responses=inline_serializer(
            "AccountEntitlements",
            {"account_id": serializers.CharField(), "entitlements": EntitlementCheckSerializer(many=True)},
        ),
        description="Every feature the account's active and in-trial subscriptions mention (draft features "
        "left out), each as the check API answers it.",
    )
    def get(self, request, account_id: str):
        entitlements = selectors.account_entitlements(
            workspace=request.user.workspace, account_key=account_id, now=timezone.now()
        )
        return Response({"account_id": account_id, "entitlements": entitlements})


# ---------------------------------------------------------------------------
# Item entitlements: PUT|GET|DELETE /items/{key}/entitlements/{feature_key}
# ---------------------------------------------------------------------------


class EntitlementValueInput(serializers.Serializer):
    value = serializers.JSONField(help_text='A string as in Chargebee: "true", "100", "unlimited", a level value.')


class ItemEntitlementOutput(serializers.Serializer):
    item_id = serializers.CharField(source="item.key")
    feature_id = serializers.CharField(source="feature.key")
    value = serializers.CharField()


class ItemEntitlementListView(APIView):
    permission_classes = [ReadOrAdminScope]

    @extend_schema(responses=ItemEntitlementOutput(many=True))
    def get(self, request, key: str):
        item = item_get(workspace=request.user.workspace, key=key)
        return Response(ItemEntitlementOutput(selectors.item_entitlement_list(item=item), many=True).data)


class ItemEntitlementView(APIView):
    permission_classes = [ReadOrAdminScope]

    def _targets(self, request, key: str, feature_key: str):
        workspace = request.user.workspace
        return item_get(workspace=workspace, key=key), feature_get(workspace=workspace, key=feature_key)

    @extend_schema(responses=ItemEntitlementOutput)
    def get(self, request, key: str, feature_key: str):
        item, feature = self._targets(request, key, feature_key)
        return Response(ItemEntitlementOutput(selectors.item_entitlement_get(item=item, feature=feature)).data)

    @extend_schema(request=EntitlementValueInput, responses=ItemEntitlementOutput)
    def put(self, request, key: str, feature_key: str):
        item, feature = self._targets(request, key, feature_key)
        data = EntitlementValueInput(data=request.data)
        data.is_valid(raise_exception=True)
        entitlement = services.item_entitlement_set(item=item, feature=feature, value=data.validated_data["value"])
        return Response(ItemEntitlementOutput(entitlement).data)

    @extend_schema(responses={204: None})
    def delete(self, request, key: str, feature_key: str):
        item, feature = self._targets(request, key, feature_key)
        services.item_entitlement_delete(item=item, feature=feature)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------------------
# Subscriptions
# ---------------------------------------------------------------------------


class SubscriptionOutput(serializers.Serializer):
    id = serializers.CharField(source="external_id")
    account_id = serializers.CharField(source="account.external_id")
    status = serializers.ChoiceField(choices=Subscription.Status.choices)
    items = serializers.SerializerMethodField()
    current_term_start = serializers.DateTimeField(allow_null=True)
    current_term_end = serializers.DateTimeField(allow_null=True)

    def get_items(self, obj: Subscription) -> list[str]:
        return sorted(item.key for item in obj.items.all())


ITEMS_HELP = (
    "Item keys. An item joins a subscription only while active (400 `item_not_active` names a draft or archived "
    "one); archived items the subscription already has may stay, and keep granting. Draft items grant nothing."
)


class SubscriptionInput(serializers.Serializer):
    id = serializers.CharField(max_length=SUBSCRIPTION_ID_MAX_LENGTH)
    account_id = serializers.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)
    status = serializers.ChoiceField(choices=Subscription.Status.choices, default=Subscription.Status.ACTIVE)
    items = serializers.ListField(
        child=serializers.CharField(max_length=KEY_MAX_LENGTH), default=list, help_text=ITEMS_HELP
    )
    current_term_start = serializers.DateTimeField(required=False, allow_null=True, default=None)
    current_term_end = serializers.DateTimeField(required=False, allow_null=True, default=None)


class SubscriptionUpdateInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=Subscription.Status.choices, required=False)
    items = serializers.ListField(
        child=serializers.CharField(max_length=KEY_MAX_LENGTH), required=False, help_text=ITEMS_HELP
    )
    current_term_start = serializers.DateTimeField(required=False, allow_null=True)
    current_term_end = serializers.DateTimeField(required=False, allow_null=True)


def _items_by_keys(workspace, keys: list[str]) -> list[Item]:
    items = {item.key: item for item in Item.objects.filter(workspace=workspace, key__in=keys)}
    missing = [key for key in keys if key not in items]
    if missing:
        raise DomainError(f"Unknown item '{missing[0]}'.", code="unknown_item", field="items")
    return [items[key] for key in dict.fromkeys(keys)]


class SubscriptionFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Subscription.Status.choices)
    account_id = django_filters.CharFilter(field_name="account__external_id")
    item = django_filters.CharFilter(field_name="items__key", distinct=True)

    class Meta:
        model = Subscription
        fields = ["status", "account_id", "item"]


class SubscriptionListView(ListModelMixin, GenericAPIView):
    queryset = Subscription.objects.none()  # the model, for the schema; rows come from get_queryset
    permission_classes = [ReadOrAdminScope]
    serializer_class = SubscriptionOutput
    filterset_class = SubscriptionFilter

    def get_queryset(self):
        return selectors.subscription_list(workspace=self.request.user.workspace)

    def get(self, request):
        return self.list(request)

    @extend_schema(request=SubscriptionInput, responses={201: SubscriptionOutput})
    def post(self, request):
        data = SubscriptionInput(data=request.data)
        data.is_valid(raise_exception=True)
        workspace = request.user.workspace
        values = data.validated_data
        account = Account.objects.filter(workspace=workspace, external_id=values["account_id"].strip()).first()
        if account is None:
            raise DomainError(f"Unknown account '{values['account_id']}'.", code="unknown_account", field="account_id")
        subscription = services.subscription_create(
            workspace=workspace,
            external_id=values["id"],
            account=account,
            status=values["status"],
            items=_items_by_keys(workspace, values["items"]),
            current_term_start=values["current_term_start"],
            current_term_end=values["current_term_end"],
        )
        subscription = selectors.subscription_get(workspace=workspace, external_id=subscription.external_id)
        return Response(SubscriptionOutput(subscription).data, status=status.HTTP_201_CREATED)


class SubscriptionDetailView(APIView):
    permission_classes = [ReadOrAdminScope]

    @extend_schema(responses=SubscriptionOutput)
    def get(self, request, subscription_id: str):
        subscription = selectors.subscription_get(workspace=request.user.workspace, external_id=subscription_id)
        return Response(SubscriptionOutput(subscription).data)

    @extend_schema(request=SubscriptionUpdateInput, responses=SubscriptionOutput)
    def patch(self, request, subscription_id: str):
        workspace = request.user.workspace
        subscription = selectors.subscription_get(workspace=workspace, external_id=subscription_id)
        data = SubscriptionUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if "items" in changes:
            changes["items"] = _items_by_keys(workspace, changes["items"])
        services.subscription_update(subscription=subscription, **changes)
        return Response(
            SubscriptionOutput(selectors.subscription_get(workspace=workspace, external_id=subscription_id)).data
        )

    @extend_schema(request=SubscriptionUpdateInput, responses=SubscriptionOutput)
    def put(self, request, subscription_id: str):
        return self.patch(request, subscription_id)

    @extend_schema(responses={204: None})
    def delete(self, request, subscription_id: str):
        subscription = selectors.subscription_get(workspace=request.user.workspace, external_id=subscription_id)
        services.subscription_delete(subscription=subscription)
        return Response(status=status.HTTP_204_NO_CONTENT)


# ---------------------------------------------------------------------------
# Subscription entitlements: PUT|GET|DELETE /subscriptions/{id}/entitlements/{feature_key}
# ---------------------------------------------------------------------------


class SubscriptionEntitlementInput(EntitlementValueInput):
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class SubscriptionEntitlementOutput(serializers.Serializer):
    subscription_id = serializers.CharField(source="subscription.external_id")
    feature_id = serializers.CharField(source="feature.key")
    value = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)


class SubscriptionEntitlementListView(APIView):
    permission_classes = [ReadOrAdminScope]

    @extend_schema(responses=SubscriptionEntitlementOutput(many=True))
    def get(self, request, subscription_id: str):
        subscription = selectors.subscription_get(workspace=request.user.workspace, external_id=subscription_id)
        entitlements = selectors.subscription_entitlement_list(subscription=subscription)
        return Response(SubscriptionEntitlementOutput(entitlements, many=True).data)


class SubscriptionEntitlementView(APIView):
    permission_classes = [ReadOrAdminScope]

    def _targets(self, request, subscription_id: str, feature_key: str):
        workspace = request.user.workspace
        return (
            selectors.subscription_get(workspace=workspace, external_id=subscription_id),
            feature_get(workspace=workspace, key=feature_key),
        )

    @extend_schema(responses=SubscriptionEntitlementOutput)
    def get(self, request, subscription_id: str, feature_key: str):
        subscription, feature = self._targets(request, subscription_id, feature_key)
        entitlement = selectors.subscription_entitlement_get(subscription=subscription, feature=feature)
        return Response(SubscriptionEntitlementOutput(entitlement).data)

    @extend_schema(request=SubscriptionEntitlementInput, responses=SubscriptionEntitlementOutput)
    def put(self, request, subscription_id: str, feature_key: str):
        subscription, feature = self._targets(request, subscription_id, feature_key)
        data = SubscriptionEntitlementInput(data=request.data)
        data.is_valid(raise_exception=True)
        entitlement = services.subscription_entitlement_set(
            subscription=subscription,
            feature=feature,
            value=data.validated_data["value"],
            expires_at=data.validated_data["expires_at"],
        )
        return Response(SubscriptionEntitlementOutput(entitlement).data)

    @extend_schema(responses={204: None})
    def delete(self, request, subscription_id: str, feature_key: str):
        subscription, feature = self._targets(request, subscription_id, feature_key)
        services.subscription_entitlement_delete(subscription=subscription, feature=feature)
        return Response(status=status.HTTP_204_NO_CONTENT)
