"""``set``: UpdateItem that adds the amount and the request id to a string set, atomically.

``ADD <value> :amount, _ids :{digest}`` on condition that the set does not contain the digest
yet (``contains()``), holds fewer than ``capacity`` ids (``size()``), and no bound is crossed.
When the condition fails DynamoDB returns the item (``ReturnValuesOnConditionCheckFailure``), so
the library tells, without another request, a duplicate (``applied=False``) from a full set
(``CapacityExceeded``) from a bound (``ThresholdExceeded``). The item also records the nonce of
the last call that wrote it: a re-send after a lost answer that finds its own nonce reports
``applied=True``; if another writer came in between, ``applied`` is ``None``.

Window: while the set holds the id -- ids are never dropped, so the window is the counter's
life, and the set refuses new ids at ``capacity`` (default 100). Every id makes the item ~33 bytes
larger, and write units grow with it (1 per KB). Suits bounded counters (seats, one id per
holder). A replay with another amount cannot be told from a duplicate and is reported as one.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from botocore.exceptions import ClientError

from .. import _validate as v
from .._io import error_code, response_of
from ..errors import CapacityExceeded
from ..results import AddResult
from .base import AddCall, Capabilities, Strategy, n, to_int

IDS = "_ids"
LAST = "_last"


class SetCounter(Strategy):
    """The request ids counted so far live in a string set on the counter item."""

    name = "set"
    idempotent = True
    own_options = frozenset({"capacity"})
    defaults = MappingProxyType({"capacity": 100})
    capabilities = Capabilities(
        idempotent=True,
        window="while the set holds the id; refuses new ids at `capacity` (default 100)",
        thresholds=True,
        requests_per_add=1,
        write_units_per_add="1 per KB of the counter item, ~33 bytes per id held",
        tells_duplicates="yes (None if another writer raced a lost answer)",
    )

    def _configure(self, options: Mapping[str, Any]) -> None:
        self.capacity = v.check_positive_int(
            options.get("capacity", self.defaults["capacity"]), what="capacity", maximum=10000
        )

    def _attempt(self, call: AddCall) -> AddResult:
        assert call.digest is not None
        names = {"#ids": IDS, "#last": LAST}
        values: dict[str, Any] = {
            ":amount": n(call.amount),
            ":idset": {"SS": [call.digest]},
            ":id": {"S": call.digest},
            ":cap": n(self.capacity),
            ":nonce": {"S": call.nonce},
        }
        conditions = [
            *self._conditions(call.amount, names, values),
            # Not counted yet: this is the idempotency check.
            "NOT contains(#ids, :id)",
            # Room for one more id: a full set must refuse, not grow past the item limit.
            "(attribute_not_exists(#ids) OR size(#ids) < :cap)",
        ]
        try:
            answer = self._send(
                call,
                "UpdateItem",
                {
                    "TableName": self.layout.table,
                    "Key": self.key,
                    "UpdateExpression": "ADD #v :amount, #ids :idset SET #last = :nonce",
                    "ConditionExpression": " AND ".join(conditions),
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                    "ReturnValues": "UPDATED_NEW",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            old = response_of(exc).get("Item")
            if old is None:
                raise self._failed_write(None, call.amount) from exc
            ids = old.get(IDS, {}).get("SS", [])
            if call.digest in ids:
                if old.get(LAST, {}).get("S") == call.nonce:
                    # Nobody wrote since this call's own write: the item holds its new value.
                    mine = old.get(self.layout.value_attribute)
                    return call.result(True, None if mine is None else to_int(mine["N"]))
                return call.result(None if call.ambiguous else False, None)
            if len(ids) >= self.capacity:
                raise CapacityExceeded(
                    f"counter {self.counter_name!r} holds {len(ids)} request ids, "
                    f"its capacity ({self.capacity}); it refuses new ones"
                ) from exc
            raise self._failed_write(old, call.amount) from exc
        new = answer.get("Attributes", {}).get(self.layout.value_attribute)
        return call.result(True, None if new is None else to_int(new["N"]))
