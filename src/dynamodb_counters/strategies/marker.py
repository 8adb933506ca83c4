"""``marker``: a transaction that updates the counter and puts a marker item for the request.

``TransactWriteItems`` with two actions: the counter ``ADD`` (bounds as its condition) and a
``Put`` of a marker item keyed by the request id's digest, conditional on the marker not
existing. A replay finds the marker, the transaction is cancelled, nothing changes
(``applied=False``). The marker holds the amount (another amount raises ``RequestIdMismatch``)
and this call's nonce, so a re-send after a lost answer recognises its own marker
(``applied=True``).

Window: while the marker lives. Markers carry a TTL attribute (``ttl_attribute`` of the store,
default ``expires_at``) set ``marker_ttl`` ahead (default 7 days); DynamoDB deletes them some
time after that, and a replay after the deletion is counted again. In a table with a sort key the
marker shares the counter's partition (``sk = "marker#<digest>"``) and ``delete()`` removes it;
in a partition-key-only table it is ``<name>#marker#<digest>`` and is left to its TTL.
Cost: a transaction of two items, so 2 x (counter KB + marker KB) write units.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from botocore.exceptions import ClientError

from .. import _validate as v
from .._io import error_code
from .._keys import MARKER_PREFIX
from ..results import AddResult
from .base import AddCall, Capabilities, n
from .transaction import TransactionCounter


class MarkerCounter(TransactionCounter):
    """Counter update plus a conditional marker put, in one transaction."""

    name = "marker"
    own_options = frozenset({"marker_ttl"})
    defaults = MappingProxyType({"marker_ttl": timedelta(days=7)})
    capabilities = Capabilities(
        idempotent=True,
        window="while the marker lives (marker_ttl, default 7 days)",
        thresholds=True,
        requests_per_add=1,
        write_units_per_add="2 x (counter item KB + marker item KB), at least 4",
        tells_duplicates="yes",
    )

    def _configure(self, options: Mapping[str, Any]) -> None:
        self.marker_ttl = v.check_duration(
            options.get("marker_ttl", self.defaults["marker_ttl"]), what="marker_ttl"
        )

    def _attempt(self, call: AddCall) -> AddResult:
        assert call.digest is not None and call.request_id is not None
        marker = {
            **self.layout.side_key(self.counter_name, MARKER_PREFIX, call.digest),
            "request_id": {"S": call.request_id},
            "amount": n(call.amount),
            "call": {"S": call.nonce},
            self.layout.ttl_attribute: self._ttl_epoch(self.marker_ttl),
        }
        put = {
            "Put": {
                "TableName": self.layout.table,
                "Item": marker,
                "ConditionExpression": "attribute_not_exists(#pk)",
                "ExpressionAttributeNames": {"#pk": self.layout.partition_key},
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        try:
            self._send(
                call, "TransactWriteItems", {"TransactItems": [self._counter_update(call), put]}
            )
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise
            reasons = self._cancellation_reasons(exc)
            if len(reasons) < 2:
                raise
            counter_reason, marker_reason = reasons[0], reasons[1]
            # The marker first: a counted request is a duplicate even when the counter's
            # condition (a bound) would also fail now.
            if marker_reason.get("Code") == "ConditionalCheckFailed":
                found = marker_reason.get("Item") or {}
                self._check_same_amount(call, found.get("amount", {}).get("N"))
                own = found.get("call", {}).get("S") == call.nonce
                return call.result(own, None)
            if counter_reason.get("Code") == "ConditionalCheckFailed":
                raise self._failed_write(counter_reason.get("Item"), call.amount) from exc
            raise
        return call.result(True, None)
