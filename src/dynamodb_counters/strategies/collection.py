"""``collection``: every add is its own item in the counter's item collection.

An add is one ``TransactWriteItems``: a ``ConditionCheck`` that the counter item exists and is
this incarnation, and a ``Put`` of ``{pk: <name>, sk: "delta#<digest>", <value attribute>:
amount}`` on condition that the delta does not exist yet. The sort key *is* the request id, so
a replay changes nothing (``applied=False``), a lost answer's re-send recognises its own item by
the nonce it holds (``applied=True``), and another amount raises ``RequestIdMismatch``. The
check on the counter item means an add is never acknowledged for a counter that does not exist
(or was deleted and created again): such a change could never be counted (SPEC section 7).

The value is the counter item's value plus the sum over the deltas of this incarnation: a
strongly consistent ``Query`` that pages through the collection (each page at most 1 MB), then a
``GetItem`` of the counter item that shows whether a compaction folded deltas while the pages
were read (its ``_folds`` count moved); if so, the read starts again. Reads grow with the number
of adds. There is **no threshold at write time** (a floor or ceiling raises ``NotSupported``).

Window: as long as the delta item is kept. ``Counter.compact()`` folds delta items into the
counter item (one transaction per 98 deltas: the counter ``ADD``, its ``_folds`` count, and a
``Delete`` of each delta on condition that it is still the very delta that was read), which
keeps reads cheap; a replay of a folded request id is counted again, so fold only deltas older
than any retry you expect (``older_than``). Needs a table with a sort key.

Cost: the transaction costs 2 x (delta KB + counter item KB) write units, and the condition check
lands on the counter item's partition, so the counter's adds share one item's throughput like
``marker``'s do; ``sharded`` is the strategy that spreads adds over items.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from botocore.exceptions import ClientError

from .._io import error_code
from .._keys import AMOUNT, CALL, CREATED, DELTA_PREFIX, FOLDS, INCARNATION
from .._retry import is_not_applied_cancellation, is_overflow
from .._steps import NOW, Steps
from ..errors import ContentionError, CounterNotFound, ThresholdExceeded
from ..results import AddResult
from .base import Capabilities, OpState, Strategy, n

# A transaction holds at most 100 items: the counter update, and deltas.
_FOLD_BATCH = 98
_VALUE_READS = 20


class CollectionCounter(Strategy):
    """One item per add, summed on read."""

    name = "collection"
    idempotent = True
    supports_thresholds = False
    needs_sort_key = True
    capabilities = Capabilities(
        idempotent=True,
        window="forever (the delta item is the record, until compact() folds it)",
        thresholds=False,
        requests_per_add=1,
        write_units_per_add="2 x (delta KB + counter item KB): a transaction with a check",
        tells_duplicates="yes",
    )

    def _configure(self, window: Mapping[str, Any]) -> None:
        # Compactions of the counter as last seen by this handle: an add checks that none ran
        # since, so that a retry never re-puts a delta that a compaction folded meanwhile.
        self._folds_seen = 0

    def observe(self, item: Mapping[str, Any]) -> None:
        self._folds_seen = max(self._folds_seen, _folds(item))

    def _attempt(self, call: OpState) -> Steps[AddResult]:
        while True:
            now: float = yield NOW
            delta = self._side_item(call, DELTA_PREFIX)
            del delta[AMOUNT]  # the value attribute holds it (as the first release wrote deltas)
            delta[self.layout.value_attribute] = n(call.amount)
            delta[CREATED] = n(int(now))
            names: dict[str, str] = {"#folds": FOLDS}
            values: dict[str, Any] = {}
            folds = self._folds_seen
            exists = self._exists_clause(names, values)
            if folds:
                values[":folds"] = n(folds)
                unfolded = "#folds = :folds"
            else:
                unfolded = "attribute_not_exists(#folds)"
            check = {
                "ConditionCheck": {
                    "TableName": self.layout.table,
                    "Key": self.key,
                    # This incarnation, and no compaction since the handle last looked: a retry
                    # after a lost answer must not re-put a delta that was folded meanwhile.
                    "ConditionExpression": f"{exists} AND {unfolded}",
                    "ExpressionAttributeNames": names,
                    **({"ExpressionAttributeValues": values} if values else {}),
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            }
            put = self._put_new_side_item(delta)
            try:
                yield from self._send(call, "TransactWriteItems", {"TransactItems": [check, put]})
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = self._cancellation_reasons(exc)
                if len(reasons) < 2:
                    raise
                counter: dict[str, Any] | None = None
                if reasons[0].get("Code") == "ConditionalCheckFailed":
                    # No counter, or another incarnation: raises CounterNotFound or Reincarnated.
                    counter = yield from self._explain(reasons[0].get("Item"), call)
                if reasons[1].get("Code") != "ConditionalCheckFailed":
                    if counter is None or _folds(counter) == folds:
                        raise
                    if call.ambiguous:
                        # Our delta may have landed and been folded since: never put it again.
                        call.unknown_outcome(exc)
                    self.observe(counter)
                    continue  # try again, knowing the compaction
                return (
                    yield from self._replayed(call, reasons[1], delta, self.layout.value_attribute)
                )
            return call.result(True, None)

    def _mine(self, item: dict[str, Any]) -> bool:
        """A delta of this incarnation (deltas of a deleted counter never count)."""
        return bool(item.get(INCARNATION, {}).get("S") == self.incarnation)

    def _deltas(
        self, *attributes: str
    ) -> Steps[tuple[dict[str, Any] | None, list[tuple[str, Any]]]]:
        """The counter item as the Query saw it, and this incarnation's deltas."""
        counter: dict[str, Any] | None = None
        deltas: list[tuple[str, Any]] = []
        wanted = (self.layout.value_attribute, INCARNATION, FOLDS, *attributes)
        for sort_value, item in (yield from self._collection(*wanted)):
            if sort_value == self.layout.counter_sort_value:
                counter = item
            elif sort_value.startswith(DELTA_PREFIX) and self._mine(item):
                deltas.append((sort_value, item))
        return counter, deltas

    def value(self) -> Steps[int]:
        for _ in range(_VALUE_READS):
            before = yield from self._counter_first()
            counter, deltas = yield from self._deltas()
            if counter is None:
                raise CounterNotFound(f"counter {self.counter_name!r} does not exist")
            self._check_incarnation(counter)
            after = yield from self._get_item()
            if before is None:
                before = counter
            # The same fold count before the first delta was read and after the last: no
            # compaction moved a delta into the counter item while the pages were read.
            if _folds(before) == _folds(after):
                return self._value_of(before) + sum(self._value_of(d) for _, d in deltas)
        raise ContentionError(
            f"counter {self.counter_name!r}: compactions kept moving deltas during value()"
        )

    def _counter_first(self) -> Steps[dict[str, Any] | None]:
        """Read the counter item before the deltas when the Query would not return it first."""
        counter_first = self.layout.counter_sort_value.encode() < DELTA_PREFIX.encode()
        return None if counter_first else (yield from self._get_item())

    def compact(self, *, older_than: timedelta = timedelta(0)) -> Steps[int]:
        """Fold delta items created at least ``older_than`` ago into the counter item.

        Returns the number of deltas folded. Safe to run concurrently with adds, with
        ``value()`` and with another compaction: each delta is deleted on condition that it is
        still the delta that was read (its nonce), in the same transaction as the counter
        update (this incarnation only), so no delta is folded twice or folded unread.
        """
        now: float = yield NOW
        cutoff = now - older_than.total_seconds()
        zero = not older_than  # everything that was read
        sk = self.layout.sort_key
        assert sk is not None
        counter, found = yield from self._deltas(CREATED, CALL)
        if counter is None:
            raise CounterNotFound(f"counter {self.counter_name!r} does not exist")
        self._check_incarnation(counter)
        deltas = [
            (sort_value, item)
            for sort_value, item in found
            # ``created`` is whole seconds (the add's time, rounded down): the add may have
            # come up to a second later, so a delta counts as old only from a second on.
            if zero or int(item.get(CREATED, {}).get("N", "0")) + 1 <= cutoff
        ]
        folded = 0
        for start in range(0, len(deltas), _FOLD_BATCH):
            folded += yield from self._fold(deltas[start : start + _FOLD_BATCH])
        return folded

    def _fold(self, batch: list[tuple[str, Any]]) -> Steps[int]:
        """Fold one batch; a delta that changed or went away is left out and the rest tried."""
        sk = self.layout.sort_key
        assert sk is not None
        tries = OpState(amount=0, request_id=None, digest=None)
        while batch:
            deletes = [
                {
                    "Delete": {
                        "TableName": self.layout.table,
                        "Key": {self.layout.partition_key: {"S": self.counter_name}, sk: {"S": s}},
                        # Still the delta we read: not folded by another compaction, not
                        # replaced by a replay after that.
                        "ConditionExpression": "#call = :call",
                        "ExpressionAttributeNames": {"#call": CALL},
                        "ExpressionAttributeValues": {":call": item.get(CALL, {"S": ""})},
                    }
                }
                for s, item in batch
            ]
            names = {"#v": self.layout.value_attribute, "#folds": FOLDS}
            values: dict[str, Any] = {
                ":sum": n(sum(self._value_of(item) for _, item in batch)),
                ":one": n(1),
            }
            update = {
                "Update": {
                    "TableName": self.layout.table,
                    "Key": self.key,
                    "UpdateExpression": "ADD #v :sum, #folds :one",
                    "ConditionExpression": self._exists_clause(names, values),
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
            try:
                yield from self._request(
                    "TransactWriteItems", {"TransactItems": [update, *deletes]}
                )
            except ClientError as exc:
                if is_overflow(exc):
                    raise ThresholdExceeded(
                        f"{self.counter_name!r}: folding these deltas would take the counter item "
                        "beyond DynamoDB's 38-digit numbers; nothing was folded"
                    ) from exc
                if is_not_applied_cancellation(exc):
                    # Another transaction (an add's check) held an item, or an item lacked
                    # throughput: nothing was applied (see _retry).
                    yield from self._try_again(tries, exc)
                    continue
                if error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = self._cancellation_reasons(exc)
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    return 0  # the counter was deleted (or created again): nothing to fold
                failed = {
                    i - 1
                    for i, r in enumerate(reasons)
                    if r.get("Code") == "ConditionalCheckFailed"
                }
                if not failed:
                    raise
                batch = [d for i, d in enumerate(batch) if i not in failed]
                continue
            return len(batch)
        return 0


def _folds(item: Mapping[str, Any]) -> int:
    return int(item.get(FOLDS, {}).get("N", "0"))
