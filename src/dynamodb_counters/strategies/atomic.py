"""``atomic``: one UpdateItem ``ADD``; the cheapest counter, and not idempotent.

A bound is a ConditionExpression on the value before the add, so it holds under any
concurrency. On a lost answer botocore re-sends the same ``ADD`` and the server applies it
again: the counter **over-counts** by one amount for each lost answer. When such a re-send
meets the bound, the first send may have landed: the add re-raises the original error (outcome
unknown) rather than ``ThresholdExceeded``. The library itself never re-sends an ambiguous add.
Use it where an occasional double count is acceptable, or where the SDK's retries are off.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from .._io import error_code, response_of
from .._steps import Steps
from ..results import AddResult
from .base import Capabilities, OpState, Strategy, n, to_int


class AtomicCounter(Strategy):
    """UpdateItem ``ADD value :amount`` with the bounds as a condition."""

    name = "atomic"
    idempotent = False
    capabilities = Capabilities(
        idempotent=False,
        window="none: a retried add is counted again",
        thresholds=True,
        requests_per_add=1,
        write_units_per_add="1 per KB of the counter item",
        tells_duplicates="no (no request ids)",
    )

    def _attempt(self, call: OpState) -> Steps[AddResult]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {":amount": n(call.amount)}
        conditions = self._conditions(call.amount, names, values)
        try:
            answer = yield from self._send(
                call,
                "UpdateItem",
                {
                    "TableName": self.layout.table,
                    "Key": self.key,
                    "UpdateExpression": "ADD #v :amount",
                    "ConditionExpression": " AND ".join(conditions),
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                    "ReturnValues": "UPDATED_NEW",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                },
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise (
                    yield from self._failed_write(response_of(exc).get("Item"), call, exc)
                ) from exc
            raise
        new = answer.get("Attributes", {}).get(self.layout.value_attribute)
        return call.result(True, None if new is None else to_int(new["N"]))
