"""`UNSET`: the default of an update service's optional arguments, so that None can mean "clear this"."""

from typing import Any


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
