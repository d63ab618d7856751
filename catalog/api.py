"""Catalog REST: products, modules, features and items named by their keys; `read` scope to read,
`admin` to write. Thin views: an input serializer parses, one service writes, an output serializer renders."""

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.mixins import ListModelMixin
from rest_framework.response import Response

from accounts.authentication import ReadOrAdminScope
from core.errors import DomainError, NotFound
from core.filters import StrictBooleanFilter
from core.serializers import error_response

from . import selectors, services
from .models import Feature, Item, Lifecycle, Module, Product
from .serializers import (
    FeatureInput,
    FeatureOutput,
    FeatureUpdateInput,
    ItemInput,
    ItemOutput,
    ItemUpdateInput,
    ModuleInput,
    ModuleOutput,
    ProductInput,
    ProductOutput,
    ProductUpdateInput,
)


class _CatalogList(ListModelMixin, GenericAPIView):
    """GET lists (filtered, paginated); POST creates."""

    permission_classes = [ReadOrAdminScope]
    input_class: type
    selector = None

    def get_queryset(self):
        return type(self).selector(workspace=self.request.user.workspace)

    def get(self, request):
        return self.list(request)

    def post(self, request):
        data = self.input_class(data=request.data)
        data.is_valid(raise_exception=True)
        obj = self.create(request.user.workspace, dict(data.validated_data))
        return Response(self.get_serializer(obj).data, status=status.HTTP_201_CREATED)


class _CatalogDetail(GenericAPIView):
    """GET one by key; PATCH (or PUT) changes the editable fields."""

    permission_classes = [ReadOrAdminScope]
    input_class: type
    getter = None

    def get_object(self):
        return type(self).getter(workspace=self.request.user.workspace, key=self.kwargs["key"])

    def get(self, request, key: str):
        return Response(self.get_serializer(self.get_object()).data)

    # The URL segment of models whose status moves only through POST .../activate|archive|reactivate.
    lifecycle_path: str | None = None

    def patch(self, request, key: str):
        obj = self.get_object()
        if self.lifecycle_path and isinstance(request.data, dict) and "status" in request.data:
            raise _status_not_patchable(self.lifecycle_path, key)
        data = self.input_class(data=request.data)
        data.is_valid(raise_exception=True)
        self.update(obj, dict(data.validated_data))
        return Response(self.get_serializer(self.get_object()).data)

    def put(self, request, key: str):
        return self.patch(request, key)


def _status_not_patchable(lifecycle_path: str, key: str) -> DomainError:
    base = f"/api/v1/{lifecycle_path}/{key}"
    return DomainError(
        f"'status' cannot be changed with PATCH or PUT: POST {base}/activate (draft → active), {base}/archive "
        f"(active → archived) or {base}/reactivate (archived → active).",
        code="status_read_only",
        field="status",
    )


def _detail_schema(output) -> dict:
    """OpenAPI of PATCH/PUT on a feature or item: its own refusals (config/schema.py adds the shared ones)."""
    return {
        200: output,
        400: error_response(
            "A field is invalid, or the body sets `status` (`status_read_only`): statuses move only "
            "through `POST .../activate`, `.../archive` and `.../reactivate`. Nothing is changed."
        ),
        409: error_response("Another feature or item already has this name."),
    }


def _product(workspace, key: str | None, field: str = "product_id"):
    try:
        return selectors.product_get(workspace=workspace, key=key)
    except NotFound:
        raise DomainError(f"Unknown product '{key}'.", code="unknown_product", field=field) from None


def _module(workspace, key: str | None):
    if key is None:
        return None
    try:
        return selectors.module_get(workspace=workspace, key=key)
    except NotFound:
        raise DomainError(f"Unknown module '{key}'.", code="unknown_module", field="module_id") from None


# --- products ---------------------------------------------------------------


@extend_schema(tags=["catalog"])
class ProductListView(_CatalogList):
    queryset = Product.objects.none()  # the model, for the schema; rows come from `selector`
    serializer_class = ProductOutput
    input_class = ProductInput
    selector = selectors.product_list

    @extend_schema(request=ProductInput, responses={201: ProductOutput})
    def post(self, request):
        return super().post(request)

    def create(self, workspace, data):
        return services.product_create(
            workspace=workspace, key=data["id"], name=data["name"], description=data["description"]
        )


@extend_schema(tags=["catalog"], request=ProductUpdateInput)
class ProductDetailView(_CatalogDetail):
    serializer_class = ProductOutput
    input_class = ProductUpdateInput
    getter = selectors.product_get

    def update(self, obj, data):
        services.product_update(product=obj, **data)


# --- modules ----------------------------------------------------------------


class ModuleFilter(django_filters.FilterSet):
    product_id = django_filters.CharFilter(field_name="product__key")

    class Meta:
        model = Module
        fields = ["product_id"]


@extend_schema(tags=["catalog"])
class ModuleListView(_CatalogList):
    queryset = Module.objects.none()  # the model, for the schema; rows come from `selector`
    serializer_class = ModuleOutput
    input_class = ModuleInput
    selector = selectors.module_list
    filterset_class = ModuleFilter

    @extend_schema(request=ModuleInput, responses={201: ModuleOutput})
    def post(self, request):
        return super().post(request)

    def create(self, workspace, data):
        return services.module_create(
            workspace=workspace,
            product=_product(workspace, data["product_id"]),
            key=data["id"],
            name=data["name"],
            description=data["description"],
        )


@extend_schema(tags=["catalog"], request=ProductUpdateInput)
class ModuleDetailView(_CatalogDetail):
    serializer_class = ModuleOutput
    input_class = ProductUpdateInput
    getter = selectors.module_get

    def update(self, obj, data):
        services.module_update(module=obj, **data)


# --- features ---------------------------------------------------------------


class FeatureFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Lifecycle.choices)
    type = django_filters.ChoiceFilter(choices=Feature.Type.choices)
    product_id = django_filters.CharFilter(field_name="product__key")
    module_id = django_filters.CharFilter(field_name="module__key")
    metered = StrictBooleanFilter()

    class Meta:
        model = Feature
        fields = ["status", "type", "product_id", "module_id", "metered"]


@extend_schema(tags=["catalog"])
class FeatureListView(_CatalogList):
    queryset = Feature.objects.none()  # the model, for the schema; rows come from `selector`
    serializer_class = FeatureOutput
    input_class = FeatureInput
    selector = selectors.feature_list
    filterset_class = FeatureFilter

    @extend_schema(request=FeatureInput, responses={201: FeatureOutput})
    def post(self, request):
        return super().post(request)

    def create(self, workspace, data):
        product = _product(workspace, data.pop("product_id"))
        module = _module(workspace, data.pop("module_id"))
        key = data.pop("id")
        feature = services.feature_create(workspace=workspace, key=key, product=product, module=module, **data)
        return selectors.feature_get(workspace=workspace, key=feature.key)


@extend_schema(tags=["catalog"], request=FeatureUpdateInput)
class FeatureDetailView(_CatalogDetail):
    serializer_class = FeatureOutput
    input_class = FeatureUpdateInput
    getter = selectors.feature_get
    lifecycle_path = "features"

    @extend_schema(responses=_detail_schema(FeatureOutput))
    def patch(self, request, key: str):
        return super().patch(request, key)

    @extend_schema(responses=_detail_schema(FeatureOutput))
    def put(self, request, key: str):
        return super().put(request, key)

    def update(self, obj, data):
        services.feature_update(feature=obj, **data)


# --- items ------------------------------------------------------------------


class ItemFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Lifecycle.choices)
    type = django_filters.ChoiceFilter(choices=Item.Type.choices)

    class Meta:
        model = Item
        fields = ["status", "type"]


@extend_schema(tags=["catalog"])
class ItemListView(_CatalogList):
    queryset = Item.objects.none()  # the model, for the schema; rows come from `selector`
    serializer_class = ItemOutput
    input_class = ItemInput
    selector = selectors.item_list
    filterset_class = ItemFilter

    @extend_schema(request=ItemInput, responses={201: ItemOutput})
    def post(self, request):
        return super().post(request)

    def create(self, workspace, data):
        return services.item_create(
            workspace=workspace,
            key=data["id"],
            name=data["name"],
            type=data["type"],
            description=data["description"],
        )


@extend_schema(tags=["catalog"], request=ItemUpdateInput)
class ItemDetailView(_CatalogDetail):
    serializer_class = ItemOutput
    input_class = ItemUpdateInput
    getter = selectors.item_get
    lifecycle_path = "items"

    @extend_schema(responses=_detail_schema(ItemOutput))
    def patch(self, request, key: str):
        return super().patch(request, key)

    @extend_schema(responses=_detail_schema(ItemOutput))
    def put(self, request, key: str):
        return super().put(request, key)

    def update(self, obj, data):
        services.item_update(item=obj, **data)


# --- lifecycle actions: POST .../{key}/activate|archive|reactivate ----------


_FEATURE_MOVES = {
    "activate": services.feature_activate,
    "archive": services.feature_archive,
    "reactivate": services.feature_reactivate,
}
_ITEM_MOVES = {
    "activate": services.item_activate,
    "archive": services.item_archive,
    "reactivate": services.item_reactivate,
}


@extend_schema(tags=["catalog"], request=None, responses=FeatureOutput)
class FeatureActionView(GenericAPIView):
    permission_classes = [ReadOrAdminScope]
    serializer_class = FeatureOutput
    action_name = ""

    def post(self, request, key: str):
        feature = selectors.feature_get(workspace=request.user.workspace, key=key)
        _FEATURE_MOVES[self.action_name](feature=feature)
        return Response(FeatureOutput(selectors.feature_get(workspace=request.user.workspace, key=key)).data)


@extend_schema(tags=["catalog"], request=None, responses=ItemOutput)
class ItemActionView(GenericAPIView):
    permission_classes = [ReadOrAdminScope]
    serializer_class = ItemOutput
    action_name = ""

    def post(self, request, key: str):
        item = selectors.item_get(workspace=request.user.workspace, key=key)
        return Response(ItemOutput(_ITEM_MOVES[self.action_name](item=item)).data)
