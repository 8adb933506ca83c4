"""``collection``: every add is its own item in the counter's item collection.

An add is one ``PutItem`` of ``{pk: <name>, sk: "delta#<digest>", <value attribute>: amount}``,
conditional on the item not existing: the sort key *is* the request id, so a replay changes
nothing (``applied=False``), a lost answer's re-send recognises its own item by the nonce it
holds (``applied=True``), and another amount raises ``RequestIdMismatch``. Writers never contend
on one item, so this scales past a single item's write limit.

The value is the counter item's value plus the sum over all delta items: a strongly consistent
``Query`` that pages through the collection (each page at most 1 MB), so reads grow with the
number of adds. There is **no threshold at write time** (a floor or ceiling raises
``NotSupported``), and ``add()`` does not check that the counter exists (that would cost a second
request): ``value()`` raises ``CounterNotFound`` for deltas without a counter.

Window: forever, as long as the delta item is kept. Needs a table with a sort key.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from .._io import error_code, response_of
from .._keys import DELTA_PREFIX
from ..errors import CounterNotFound, RequestIdMismatch
from ..results import AddResult
from .base import AddCall, Capabilities, Strategy, n, to_int


class CollectionCounter(Strategy):
    """One item per add, summed on read."""

    name = "collection"
    idempotent = True
    supports_thresholds = False
    needs_sort_key = True
    capabilities = Capabilities(
        idempotent=True,
        window="forever (the delta item is the record)",
        thresholds=False,
        requests_per_add=1,
        write_units_per_add="1 (a small new item); reads grow with the number of adds",
        tells_duplicates="yes",
    )

    def _attempt(self, call: AddCall) -> AddResult:
        assert call.digest is not None and call.request_id is not None
        item = {
            **self.layout.side_key(self.counter_name, DELTA_PREFIX, call.digest),
            self.layout.value_attribute: n(call.amount),
            "request_id": {"S": call.request_id},
            "call": {"S": call.nonce},
            "created": n(int(time.time())),
        }
        try:
            self._send(
                call,
                "PutItem",
                {
                    "TableName": self.layout.table,
                    "Item": item,
                    "ConditionExpression": "attribute_not_exists(#pk)",
                    "ExpressionAttributeNames": {"#pk": self.layout.partition_key},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            found = response_of(exc).get("Item") or {}
            amount = found.get(self.layout.value_attribute, {}).get("N")
            if amount is not None and to_int(amount) != call.amount:
                raise RequestIdMismatch(
                    f"request id {call.request_id!r} was counted on {self.counter_name!r} "
                    f"with amount {amount}, not {call.amount}"
                ) from exc
            return call.result(found.get("call", {}).get("S") == call.nonce, None)
        return call.result(True, None)

    def value(self) -> int:
        sk = self.layout.sort_key
        assert sk is not None
        params: dict[str, Any] = {
            "TableName": self.layout.table,
            "KeyConditionExpression": "#pk = :pk",
            "ExpressionAttributeNames": {
                "#pk": self.layout.partition_key,
                "#sk": sk,
                "#v": self.layout.value_attribute,
            },
            "ExpressionAttributeValues": {":pk": {"S": self.counter_name}},
            "ProjectionExpression": "#sk, #v",
            "ConsistentRead": True,
        }
        found_counter = False
        total = 0
        for item in self._query_all(params):
            sort_value = item.get(sk, {}).get("S", "")
            if sort_value == self.layout.counter_sort_value:
                found_counter = True
                total += self._value_of(item)
            elif sort_value.startswith(DELTA_PREFIX):
                total += self._value_of(item)
        if not found_counter:
            raise CounterNotFound(f"counter {self.counter_name!r} does not exist")
        return total
