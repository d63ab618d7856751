"""An OpenFeature provider that answers flags from Uptake entitlements (`pip install uptake-client[openfeature]`).

    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext
    from uptake_client import Uptake
    from uptake_client.openfeature import UptakeProvider

    api.set_provider(UptakeProvider(Uptake(api_key="…", host="https://uptake.example.com")))
    flags = api.get_client()
    flags.get_boolean_value("sso", False, EvaluationContext(targeting_key="acme"))   # entitled?
    flags.get_integer_value("api-calls", 0, EvaluationContext(targeting_key="acme"))  # remaining allowance

The flag key is the feature id and the targeting key the account id. Flags are read through the client's
`check()`, so they share its cache. Resolution:

- boolean: `entitled`; integer (and float): the remaining allowance of a metered feature, or its limit with
  `integer_value="limit"`; a non-metered quantity or range feature gives its value; unlimited gives
  `unlimited_integer` (default sys.maxsize); not entitled gives 0; string: the entitlement's value (the
  default value when there is none); object: the whole entitlement as a dict.
- reason: `CACHED` when answered from the cache, `TARGETING_MATCH` when Uptake answered for this account,
  `STATIC` when the account is unknown to Uptake (the answer every unknown account gets), `ERROR` with an
  error code.
- errors (all with the caller's default value, as OpenFeature requires): an unknown feature is
  `FLAG_NOT_FOUND`, no targeting key `TARGETING_KEY_MISSING`, a value of the wrong kind (an integer flag on a
  switch feature) `TYPE_MISMATCH`, Uptake unreachable with nothing cached `GENERAL`. Uptake unreachable with
  an answer cached gives that last known value with reason `STALE`, an error message and flag metadata
  `stale: true` (an error code would make the SDK answer the default instead).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, Callable

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata

from . import models
from .client import Uptake
from .models import Entitlement

_NUMERIC_TYPES = ("quantity", "range")


class UptakeProvider(AbstractProvider):
    """OpenFeature provider over an `Uptake` client (sharing its check cache)."""

    def __init__(
        self,
        client: Uptake,
        *,
        integer_value: str = "remaining",
        unlimited_integer: int = sys.maxsize,
    ) -> None:
        if integer_value not in ("remaining", "limit"):
            raise ValueError("integer_value is 'remaining' or 'limit'")
        self.client = client
        self.integer_value = integer_value
        self.unlimited_integer = unlimited_integer

    def get_metadata(self) -> Metadata:
        return Metadata(name="Uptake")

    # ------------------------------------------------------------------

    def _resolve(
        self,
        flag_key: str,
        default_value: Any,
        evaluation_context: EvaluationContext | None,
        convert: Callable[[Entitlement], Any],
    ) -> FlagResolutionDetails:
        account_id = evaluation_context.targeting_key if evaluation_context is not None else None
        if not account_id:
            return _error(default_value, ErrorCode.TARGETING_KEY_MISSING, "The targeting key (account id) is missing.")
        answer = self.client.check(account_id, flag_key)
        metadata = {"source": answer.source, "stale": answer.stale}
        if answer.source == models.DEFAULT:
            return _error(default_value, ErrorCode.GENERAL, f"Uptake could not answer: {answer.error}", metadata)
        if answer.reason == "unknown_feature":
            return _error(default_value, ErrorCode.FLAG_NOT_FOUND, f"Uptake has no feature '{flag_key}'.", metadata)
        try:
            value = convert(answer)
        except TypeError as exc:
            return _error(default_value, ErrorCode.TYPE_MISMATCH, str(exc), metadata)
        if value is None:
            value = default_value
        variant = answer.reason or "entitled"
        if answer.source == models.STALE:
            # No error code here: the SDK would replace the value with the caller's default.
            return FlagResolutionDetails(
                value=value,
                error_message=f"Uptake could not answer; the last known value: {answer.error}",
                reason=Reason.STALE,
                variant=variant,
                flag_metadata=metadata,
            )
        if answer.source == models.CACHE:
            reason = Reason.CACHED
        elif answer.reason == "unknown_account":
            reason = Reason.STATIC
        else:
            reason = Reason.TARGETING_MATCH
        return FlagResolutionDetails(value=value, reason=reason, variant=variant, flag_metadata=metadata)

    def _number(self, answer: Entitlement) -> int | None:
        if not answer.entitled:
            return 0
        if answer.unlimited:
            return self.unlimited_integer
        if answer.limit is not None:
            return answer.remaining if self.integer_value == "remaining" else answer.limit
        if answer.type in _NUMERIC_TYPES and answer.value is not None:
            return int(answer.value)
        raise TypeError(f"Feature '{answer.feature_id}' is a {answer.type} feature: it has no number.")

    # ------------------------------------------------------------------

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, lambda answer: answer.entitled)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, self._number)

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[float]:
        def as_float(answer: Entitlement) -> float | None:
            number = self._number(answer)
            return None if number is None else float(number)

        return self._resolve(flag_key, default_value, evaluation_context, as_float)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, lambda answer: answer.value)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[Any] | Mapping[str, Any],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[Any] | Mapping[str, Any]]:
        return self._resolve(flag_key, default_value, evaluation_context, lambda answer: answer.as_dict())


def _error(default_value: Any, code: ErrorCode, message: str, metadata: dict | None = None) -> FlagResolutionDetails:
    return FlagResolutionDetails(
        value=default_value,
        error_code=code,
        error_message=message,
        reason=Reason.ERROR,
        flag_metadata=metadata or {},
    )


__all__ = ["UptakeProvider"]
