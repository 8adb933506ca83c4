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

Window: as long as the delta item is kept. ``Counter.compact()`` folds delta items into the
counter item (one transaction per 99 deltas: the counter ``ADD`` and a conditional ``Delete`` of
each delta), which keeps reads cheap; a replay of a folded request id is counted again, so fold
only deltas older than any retry you expect (``older_than``). Needs a table with a sort key.
"""

from __future__ import annotations

import time
from datetime import timedelta

from botocore.exceptions import ClientError

from .._io import error_code
from .._keys import DELTA_PREFIX
from ..errors import CounterNotFound
from ..results import AddResult
from .base import AddCall, Capabilities, Strategy, n


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
        found = self._put_if_absent(call, item)
        if found is None:
            return call.result(True, None)
        self._check_same_amount(call, found.get(self.layout.value_attribute, {}).get("N"))
        return call.result(found.get("call", {}).get("S") == call.nonce, None)

    def value(self) -> int:
        found_counter = False
        total = 0
        for sort_value, item in self._collection(self.layout.value_attribute):
            if sort_value == self.layout.counter_sort_value:
                found_counter = True
                total += self._value_of(item)
            elif sort_value.startswith(DELTA_PREFIX):
                total += self._value_of(item)
        if not found_counter:
            raise CounterNotFound(f"counter {self.counter_name!r} does not exist")
        return total

    def compact(self, *, older_than: timedelta = timedelta(0)) -> int:
        """Fold delta items created at least ``older_than`` ago into the counter item.

        Returns the number of deltas folded. Safe to run concurrently with adds and with
        another compaction: each delta is deleted on condition that it still exists, in the
        same transaction as the counter update, so no delta is folded twice.
        """
        cutoff = time.time() - older_than.total_seconds()
        sk = self.layout.sort_key
        assert sk is not None
        deltas: list[tuple[str, int]] = []
        found_counter = False
        for sort_value, item in self._collection(self.layout.value_attribute, "created"):
            if sort_value == self.layout.counter_sort_value:
                found_counter = True
            elif sort_value.startswith(DELTA_PREFIX):
                created = int(item.get("created", {}).get("N", "0"))
                if created <= cutoff:
                    deltas.append((sort_value, self._value_of(item)))
        if not found_counter:
            raise CounterNotFound(f"counter {self.counter_name!r} does not exist")
        folded = 0
        for start in range(0, len(deltas), 99):
            batch = deltas[start : start + 99]
            deletes = [
                {
                    "Delete": {
                        "TableName": self.layout.table,
                        "Key": {self.layout.partition_key: {"S": self.counter_name}, sk: {"S": s}},
                        # Another compaction may have folded it already: never fold twice.
                        "ConditionExpression": "attribute_exists(#pk)",
                        "ExpressionAttributeNames": {"#pk": self.layout.partition_key},
                    }
                }
                for s, _ in batch
            ]
            update = {
                "Update": {
                    "TableName": self.layout.table,
                    "Key": self.key,
                    "UpdateExpression": "ADD #v :sum",
                    "ConditionExpression": "attribute_exists(#pk)",
                    "ExpressionAttributeNames": {
                        "#pk": self.layout.partition_key,
                        "#v": self.layout.value_attribute,
                    },
                    "ExpressionAttributeValues": {":sum": n(sum(a for _, a in batch))},
                }
            }
            try:
                self._call("TransactWriteItems", {"TransactItems": [update, *deletes]})
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                # A concurrent compaction took some of these; the next run picks up the rest.
                continue
            folded += len(batch)
        return folded
