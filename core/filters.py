"""Query-parameter filters of the API lists (django-filter) that refuse what they cannot read, as every other
parameter does, instead of ignoring it: `?metered=maybe` listed every feature as if the filter were absent."""

import django_filters
from django import forms
from django.core.exceptions import ValidationError

from .text import echo

_TRUE = frozenset(("true", "1"))
_FALSE = frozenset(("false", "0"))


class _StrictNullBooleanField(forms.NullBooleanField):
    widget = forms.TextInput

    def to_python(self, value):
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValidationError(f"'{echo(value, limit=40)}' is not a boolean: use true or false.", code="invalid")

    def validate(self, value):
        return None


class StrictBooleanFilter(django_filters.BooleanFilter):
    """`true`/`false` (or `1`/`0`, any case); absent or empty means no filter; anything else is a 400."""

    field_class = _StrictNullBooleanField
