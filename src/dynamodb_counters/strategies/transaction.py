"""``transaction``: TransactWriteItems with ``ClientRequestToken`` = the request id.

One ``Update`` (``ADD`` with the bounds as a condition) in a transaction whose
``ClientRequestToken`` is the request id's digest (32 hex digits: a longer id is hashed, never
truncated, and the id is scoped to its counter). DynamoDB answers a replay of the same token with
success and does not apply it again, for **10 minutes**; after that a replay is a new add
(**over-count**). The same token with another amount raises ``RequestIdMismatch``.

``applied``: DynamoDB reports a replay as *read* units and a first write as *write* units, when
asked for per-table capacity. Where the engine does not break capacity down (DynamoDB Local),
or a replay may be this call's own lost first attempt, ``applied`` is ``None``. Transactions
cost twice the write units of a plain write and do not return the new value.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from .._io import error_code
from .._steps import Steps
from ..errors import RequestIdMismatch
from ..results import AddResult
from .base import Capabilities, OpState, Strategy, n


class TransactionCounter(Strategy):
    """A one-item transaction made idempotent by its client request token."""

    name = "transaction"
    transactional = True
    idempotent = True
    capabilities = Capabilities(
        idempotent=True,
        window="10 minutes (ClientRequestToken)",
        thresholds=True,
        requests_per_add=1,
        write_units_per_add="2 per KB of the counter item (transactional write)",
        tells_duplicates="only where capacity is reported per table (not DynamoDB Local)",
    )

    def _counter_update(self, call: OpState) -> dict[str, Any]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {":amount": n(call.amount)}
        conditions = self._conditions(call.amount, names, values)
        return {
            "Update": {
                "TableName": self.layout.table,
                "Key": self.key,
                "UpdateExpression": "ADD #v :amount",
                "ConditionExpression": " AND ".join(conditions),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    def _attempt(self, call: OpState) -> Steps[AddResult]:
        assert call.digest is not None
        try:
            answer = yield from self._send(
                call,
                "TransactWriteItems",
                {"TransactItems": [self._counter_update(call)], "ClientRequestToken": call.digest},
            )
        except ClientError as exc:
            code = error_code(exc)
            if code == "IdempotentParameterMismatchException":
                raise RequestIdMismatch(
                    f"request id {call.request_id!r} was used on {self.counter_name!r} "
                    "with another amount in the last 10 minutes"
                ) from exc
            if code == "TransactionCanceledException":
                reasons = self._cancellation_reasons(exc)
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    failed = yield from self._failed_write(reasons[0].get("Item"), call, exc)
                    raise failed from exc
            raise
        return call.result(self._applied_from_capacity(answer, call), None)

    @staticmethod
    def _applied_from_capacity(answer: dict[str, Any], call: OpState) -> bool | None:
        reads = writes = 0.0
        broken_down = False
        for entry in answer.get("ConsumedCapacity") or []:
            table = entry.get("Table") or {}
            if "WriteCapacityUnits" in table or "ReadCapacityUnits" in table:
                broken_down = True
            reads += float(table.get("ReadCapacityUnits", 0) or 0)
            writes += float(table.get("WriteCapacityUnits", 0) or 0)
        if not broken_down:
            return None
        if writes > 0:
            return True
        # A replay: ours if an earlier send of this call may have landed, which we cannot know.
        return None if call.ambiguous else False
