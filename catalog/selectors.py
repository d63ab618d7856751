"""Reads for the catalog."""

from django.db.models import Case, Q, QuerySet, When
from django.db.models.functions import Upper

from accounts.models import Workspace
from core.errors import NotFound

from .models import Feature, Item, Module, Product


def product_list(*, workspace: Workspace) -> QuerySet[Product]:
    return Product.objects.filter(workspace=workspace).order_by("key")


def product_get(*, workspace: Workspace, key: str) -> Product:
    product = Product.objects.filter(workspace=workspace, key=key).first()
    if product is None:
        raise NotFound(f"No product '{key}'.", code="unknown_product")
    return product


def module_list(*, workspace: Workspace) -> QuerySet[Module]:
    return Module.objects.filter(workspace=workspace).select_related("product").order_by("key")


def module_get(*, workspace: Workspace, key: str) -> Module:
    module = Module.objects.filter(workspace=workspace, key=key).select_related("product").first()
    if module is None:
        raise NotFound(f"No module '{key}'.", code="unknown_module")
    return module


def feature_list(*, workspace: Workspace) -> QuerySet[Feature]:
    return (
        Feature.objects.filter(workspace=workspace)
        .select_related("product", "module")
        .prefetch_related("levels")
        .order_by("key")
    )


def feature_get(*, workspace: Workspace, key: str) -> Feature:
    feature = feature_list(workspace=workspace).filter(key=key).first()
    if feature is None:
        raise NotFound(f"No feature '{key}'.", code="unknown_feature")
    return feature


def item_list(*, workspace: Workspace) -> QuerySet[Item]:
    return Item.objects.filter(workspace=workspace).order_by("key")


def item_get(*, workspace: Workspace, key: str) -> Item:
    item = Item.objects.filter(workspace=workspace, key=key).first()
    if item is None:
        raise NotFound(f"No item '{key}'.", code="unknown_item")
    return item


def feature_search(*, workspace: Workspace, query: str, limit: int = 10) -> list[Feature]:
    """Features whose key or name contains the query (case-insensitive), best first: the exact key, then
    prefixes, then substrings. A workspace has at most a few hundred features, so no index is needed."""
    query = query.strip()
    if not query:
        return []
    return list(
        Feature.objects.filter(Q(key__icontains=query) | Q(name__icontains=query), workspace=workspace)
        .select_related("product", "module")
        .annotate(
            rank=Case(
                When(key__iexact=query, then=0),
                When(Q(key__istartswith=query) | Q(name__istartswith=query), then=1),
                default=2,
            )
        )
        .order_by("rank", Upper("name"), "key")[:limit]
    )
