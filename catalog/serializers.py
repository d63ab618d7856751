"""Input and output serializers of the catalog REST API. Inputs only parse; services check the rules."""

from rest_framework import serializers

from .models import KEY_MAX_LENGTH, Feature, Item, Lifecycle


class ProductOutput(serializers.Serializer):
    id = serializers.CharField(source="key")
    name = serializers.CharField()
    description = serializers.CharField()
    resource_version = serializers.IntegerField()


class ProductInput(serializers.Serializer):
    id = serializers.CharField(max_length=200)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")


class ProductUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)


class ModuleOutput(ProductOutput):
    product_id = serializers.CharField(source="product.key")


class ModuleInput(ProductInput):
    product_id = serializers.CharField(max_length=KEY_MAX_LENGTH)


class LevelSerializer(serializers.Serializer):
    value = serializers.CharField(max_length=64)
    name = serializers.CharField(max_length=100)
    is_unlimited = serializers.BooleanField(required=False, default=False)


class FeatureOutput(serializers.Serializer):
    id = serializers.CharField(source="key")
    name = serializers.CharField()
    description = serializers.CharField()
    product_id = serializers.CharField(source="product.key")
    module_id = serializers.CharField(source="module.key", allow_null=True, default=None)
    status = serializers.ChoiceField(choices=Lifecycle.choices)
    type = serializers.ChoiceField(choices=Feature.Type.choices)
    unit = serializers.CharField()
    unit_plural = serializers.CharField()
    levels = LevelSerializer(many=True)
    metered = serializers.BooleanField()
    reset_period = serializers.ChoiceField(choices=Feature.ResetPeriod.choices)
    reset_anchor = serializers.ChoiceField(choices=Feature.ResetAnchor.choices)
    resource_version = serializers.IntegerField()


class FeatureInput(serializers.Serializer):
    id = serializers.CharField(
        max_length=200,
        required=False,
        default=None,
        help_text="Left out: a unique key is derived from the name (`Data Storage` → `data-storage`, "
        "`data-storage-2` if taken) and answered as `id`.",
    )
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    product_id = serializers.CharField(max_length=KEY_MAX_LENGTH)
    module_id = serializers.CharField(max_length=KEY_MAX_LENGTH, required=False, allow_null=True, default=None)
    type = serializers.ChoiceField(choices=Feature.Type.choices, default=Feature.Type.SWITCH)
    unit = serializers.CharField(required=False, allow_blank=True, default="")
    levels = LevelSerializer(many=True, required=False, default=list)
    metered = serializers.BooleanField(required=False, default=False)
    reset_period = serializers.ChoiceField(choices=Feature.ResetPeriod.choices, default=Feature.ResetPeriod.NONE)
    reset_anchor = serializers.ChoiceField(choices=Feature.ResetAnchor.choices, default=Feature.ResetAnchor.CALENDAR)


class FeatureUpdateInput(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    type = serializers.ChoiceField(choices=Feature.Type.choices, required=False)
    unit = serializers.CharField(required=False, allow_blank=True)
    levels = LevelSerializer(many=True, required=False)
    metered = serializers.BooleanField(required=False)
    reset_period = serializers.ChoiceField(choices=Feature.ResetPeriod.choices, required=False)
    reset_anchor = serializers.ChoiceField(choices=Feature.ResetAnchor.choices, required=False)


class ItemOutput(serializers.Serializer):
    id = serializers.CharField(source="key")
    name = serializers.CharField()
    description = serializers.CharField()
    type = serializers.ChoiceField(choices=Item.Type.choices)
    status = serializers.ChoiceField(choices=Lifecycle.choices)
    resource_version = serializers.IntegerField()


class ItemInput(serializers.Serializer):
    id = serializers.CharField(max_length=200)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    type = serializers.ChoiceField(choices=Item.Type.choices, default=Item.Type.PLAN)


class ItemUpdateInput(ProductUpdateInput):
    pass
