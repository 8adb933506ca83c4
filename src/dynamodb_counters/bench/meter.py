"""Counts what really goes over the wire: HTTP attempts, request units, reported capacity.

:class:`RequestMeter` hooks two botocore events on a client:

* ``before-parameter-build.dynamodb`` keeps the call's parameters in its request context;
* ``response-received.dynamodb`` fires once per HTTP attempt -- the SDK's own re-sends
  included -- with the parsed answer or the exception (a lost answer is a ``ReadTimeoutError``).

Each attempt is classified: *injected* (an answer made up by :mod:`dynamodb_counters.faults`,
recognised by its ``injected-`` request id: nothing reached the server), *throttled* (not
charged), *lost* (the server got it; charged as if it succeeded) or *answered*. Charged attempts
are priced with :mod:`.metrics`' rules, using :class:`ItemSizes` to know how big each item is.

Where AWS states a rule, the estimate follows it (SPEC section 10):

* a ``Query`` is charged on the full size of each item it reads, whatever its projection;
* a ``BatchGetItem`` is charged per key read, each item rounded up to 4 KB on its own, a key
  without an item at the minimum read, half a unit eventually consistent (the sharded survey);
* a failed conditional write is charged on the larger of the existing and the would-be item;
* a replayed ``ClientRequestToken`` (seen reaching the server in the last 10 minutes) is charged
  as a read of the items, not as a write.

*Reported* figures are what the backend put in ``ConsumedCapacity``; an error answer (a failed
condition, a cancelled transaction) and a lost answer carry none, so the totals count those
attempts (``unreported``) and what they cost by the rules (``unreported_rru/wru``).

With :meth:`RequestMeter.operation`, the units and lost answers of the attempts sent while an
operation of the workload runs are also booked on that operation (:class:`OpBook`), so costs can
be told apart per outcome (acknowledged, rejected by a bound, failed).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from . import metrics as m

_PARAMS = "dynamodb_counters_bench_params"
_NOT_CHARGED = frozenset(
    {"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"}
)
_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
#: How long DynamoDB remembers a ClientRequestToken.
TOKEN_WINDOW_SECONDS = 600.0
_EQUALS = re.compile(r"(#?[A-Za-z0-9_.]+)\s*=\s*(:[A-Za-z0-9_]+)")


@dataclass(slots=True)
class OpBook:
    """One operation of the workload (one request id), across its sends and retries.

    ``state`` is its last outcome: ``acked`` (``add()`` returned), ``rejected`` (a bound
    refused it) or ``error``; ``lost`` counts its attempts whose answer was lost after the
    server got them (so an op that ends in error with ``lost`` > 0 may have landed).
    """

    amount: int
    state: str = ""
    calls: int = 0
    lost: int = 0
    rru: float = 0.0
    wru: float = 0.0

    def merge(self, other: OpBook) -> None:
        self.state = other.state or self.state
        self.calls += other.calls
        self.lost += other.lost
        self.rru += other.rru
        self.wru += other.wru


@dataclass(slots=True)
class MeterTotals:
    """What a meter saw; added up across workers and processes."""

    attempts: int = 0
    injected: int = 0
    lost: int = 0
    throttled: int = 0
    estimated_rru: float = 0.0
    estimated_wru: float = 0.0
    reported_rru: float = 0.0
    reported_wru: float = 0.0
    reported_seen: int = 0
    unreported: int = 0
    unreported_rru: float = 0.0
    unreported_wru: float = 0.0
    operations: Counter[str] = field(default_factory=Counter)
    ops: dict[str, OpBook] = field(default_factory=dict)

    def merge(self, other: MeterTotals) -> None:
        self.attempts += other.attempts
        self.injected += other.injected
        self.lost += other.lost
        self.throttled += other.throttled
        self.estimated_rru += other.estimated_rru
        self.estimated_wru += other.estimated_wru
        self.reported_rru += other.reported_rru
        self.reported_wru += other.reported_wru
        self.reported_seen += other.reported_seen
        self.unreported += other.unreported
        self.unreported_rru += other.unreported_rru
        self.unreported_wru += other.unreported_wru
        self.operations.update(other.operations)
        for request_id, book in other.ops.items():
            if request_id in self.ops:
                self.ops[request_id].merge(book)
            else:
                self.ops[request_id] = book


class ItemSizes:
    """The last known full form of each item, followed from requests and answers.

    A ``PutItem`` gives the whole item; a ``GetItem``, an ``ALL_OLD`` item returned by a failed
    condition and the attributes returned by an ``UpdateItem`` correct what is known; an
    ``UpdateItem`` is applied to the known item (:func:`metrics.apply_update`). Under
    concurrency answers arrive in a slightly different order than the server applied them, so
    sizes are estimates, exact to a few bytes for the items this library writes.
    """

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Any]] = {}

    def get(self, table: str, key: dict[str, Any]) -> dict[str, Any]:
        return self._items.get(m.key_id(table, key)) or dict(key)

    def known(self, table: str, key: dict[str, Any]) -> bool:
        return m.key_id(table, key) in self._items

    def put(self, table: str, key: dict[str, Any], item: dict[str, Any] | None) -> None:
        if item is None:
            self._items.pop(m.key_id(table, key), None)
        else:
            self._items[m.key_id(table, key)] = dict(item)


def _key_of(item: dict[str, Any], key_names: tuple[str, ...]) -> dict[str, Any]:
    return {k: item[k] for k in key_names if k in item}


class RequestMeter:
    """Per-attempt accounting on botocore or aiobotocore clients; thread-safe.

    Args:
        key_names: the table's key attribute names (to find an item's key in a ``Put``).
        sizes: item sizes known up front (e.g. the counter item just created).
    """

    def __init__(self, key_names: tuple[str, ...], sizes: ItemSizes | None = None) -> None:
        self.key_names = key_names
        self.sizes = sizes or ItemSizes()
        self._lock = threading.Lock()
        self.totals = MeterTotals()
        self._clients: list[Any] = []
        # ClientRequestTokens that reached the server, and when (monotonic seconds).
        self._tokens: dict[str, float] = {}
        # The operation being booked, per thread or asyncio task (each has its own context).
        self._book: ContextVar[OpBook | None] = ContextVar(f"bench-book-{id(self)}", default=None)
        self.clock = time.monotonic

    def attach(self, client: Any) -> RequestMeter:
        events = client.meta.events
        events.register("before-parameter-build.dynamodb", self._stash)
        events.register("response-received.dynamodb", self._record)
        self._clients.append(client)
        return self

    def detach(self) -> None:
        for client in self._clients:
            client.meta.events.unregister("before-parameter-build.dynamodb", self._stash)
            client.meta.events.unregister("response-received.dynamodb", self._record)
        self._clients = []

    def take(self) -> MeterTotals:
        """Return the totals so far and start again from zero."""
        with self._lock:
            totals, self.totals = self.totals, MeterTotals()
        return totals

    @contextlib.contextmanager
    def operation(self, request_id: str, amount: int) -> Iterator[OpBook]:
        """Book the attempts this thread (or asyncio task) sends inside the block on
        ``request_id``'s :class:`OpBook` (the caller sets its ``state``)."""
        with self._lock:
            book = self.totals.ops.get(request_id)
            if book is None:
                book = self.totals.ops[request_id] = OpBook(amount)
            book.calls += 1
        token = self._book.set(book)
        try:
            yield book
        finally:
            self._book.reset(token)

    # -- handlers ----------------------------------------------------------------------------

    @staticmethod
    def _stash(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[_PARAMS] = params

    def _record(
        self,
        event_name: str,
        context: dict[str, Any],
        exception: BaseException | None = None,
        parsed_response: dict[str, Any] | None = None,
        response_dict: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        params: dict[str, Any] = context.get(_PARAMS) or {}
        answer = parsed_response or {}
        headers = (response_dict or {}).get("headers") or {}
        request_id = str(headers.get("x-amzn-requestid", "") or "")
        code = str(answer.get("Error", {}).get("Code", "")) if answer else ""
        book = self._book.get()
        with self._lock:
            totals = self.totals
            totals.attempts += 1
            totals.operations[operation] += 1
            if request_id.startswith("injected-"):
                totals.injected += 1
                return
            if code in _NOT_CHARGED:
                totals.throttled += 1
                return
            if exception is not None:
                totals.lost += 1
                if book is not None:
                    book.lost += 1
            reported = self._add_reported(operation, answer.get("ConsumedCapacity"))
            rru, wru = self._estimate(operation, params, answer, code, lost=exception is not None)
            totals.estimated_rru += rru
            totals.estimated_wru += wru
            if not reported:
                totals.unreported += 1
                totals.unreported_rru += rru
                totals.unreported_wru += wru
            if book is not None:
                book.rru += rru
                book.wru += wru

    def _add_reported(self, operation: str, consumed: Any) -> bool:
        if not consumed:
            return False
        entries = consumed if isinstance(consumed, list) else [consumed]
        totals = self.totals
        totals.reported_seen += 1
        for entry in entries:
            table = entry.get("Table") or {}
            reads = entry.get("ReadCapacityUnits", table.get("ReadCapacityUnits"))
            writes = entry.get("WriteCapacityUnits", table.get("WriteCapacityUnits"))
            if reads is None and writes is None:
                total = float(entry.get("CapacityUnits", 0) or 0)
                if operation in _READS:
                    totals.reported_rru += total
                else:
                    totals.reported_wru += total
            else:
                totals.reported_rru += float(reads or 0)
                totals.reported_wru += float(writes or 0)
        return True

    # -- estimates (called under the lock) ---------------------------------------------------

    def _estimate(
        self,
        operation: str,
        params: dict[str, Any],
        answer: dict[str, Any],
        code: str,
        *,
        lost: bool,
    ) -> tuple[float, float]:
        failed = bool(code)
        if operation == "GetItem":
            item = answer.get("Item")
            table = params.get("TableName", "")
            if item is not None:
                self.sizes.put(table, params["Key"], item)
            size = m.item_size(item)
            return m.read_units(size, consistent=bool(params.get("ConsistentRead"))), 0.0
        if operation == "Query":
            table = params.get("TableName", "")
            # A projection does not lower the charge: use the full item where known. A
            # projection may leave out the partition key; every item of a Query shares the
            # one in its key condition.
            shared = self._query_partition(params)
            size = 0
            for item in answer.get("Items", []):
                known = self.sizes.get(table, _key_of({**shared, **item}, self.key_names))
                size += max(m.item_size(item), m.item_size(known))
            return m.read_units(size, consistent=bool(params.get("ConsistentRead"))), 0.0
        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            action = {"PutItem": "Put", "UpdateItem": "Update", "DeleteItem": "Delete"}[operation]
            returned = answer.get("Item") if failed else answer.get("Attributes")
            units = self._write(action, params, returned, applied=not failed or lost)
            return 0.0, float(units)
        if operation == "TransactWriteItems":
            return self._transaction(params, answer, code, lost=lost)
        if operation == "TransactGetItems":
            return self._transaction_read(params, answer), 0.0
        if operation == "BatchGetItem":
            return self._batch_read(params, answer), 0.0
        return 0.0, 0.0

    def _batch_read(self, params: dict[str, Any], answer: dict[str, Any]) -> float:
        """AWS processes each key of a ``BatchGetItem`` as a ``GetItem`` of its own: every item
        returned is rounded up to 4 KB on its own (the sum is not rounded), a key with no item
        costs the minimum read (one 4 KB unit), each half a unit unless the table's entry asks
        for ``ConsistentRead``; unprocessed keys were not read and are not charged."""
        responses = answer.get("Responses") or {}
        unprocessed = answer.get("UnprocessedKeys") or {}
        units = 0.0
        for table, wanted in (params.get("RequestItems") or {}).items():
            consistent = bool(wanted.get("ConsistentRead"))
            left = {m.key_id(table, key) for key in (unprocessed.get(table) or {}).get("Keys", [])}
            found: dict[str, dict[str, Any]] = {}
            for item in responses.get(table) or []:
                key = _key_of(item, self.key_names)
                found[m.key_id(table, key)] = item
            for key in wanted.get("Keys") or []:
                ident = m.key_id(table, dict(key))
                if ident in left:
                    continue
                item = found.get(ident)
                if item is not None:
                    # A projection does not lower the charge: the full item where known.
                    known = self.sizes.get(table, dict(key)) if self.sizes.known(table, key) else {}
                    if not wanted.get("ProjectionExpression"):
                        self.sizes.put(table, dict(key), item)
                    size = max(m.item_size(item), m.item_size(known))
                else:
                    size = 0
                units += m.read_units(size, consistent=consistent)
        return units

    def _transaction_read(self, params: dict[str, Any], answer: dict[str, Any]) -> float:
        """A transactional read costs twice a strongly consistent read of each item."""
        responses = answer.get("Responses") or []
        units = 0.0
        for index, entry in enumerate(params.get("TransactItems") or []):
            body = entry.get("Get") or {}
            table, key = body.get("TableName", ""), dict(body.get("Key") or {})
            item = responses[index].get("Item") if index < len(responses) else None
            if item is not None:
                self.sizes.put(table, key, item)
            else:
                item = self.sizes.get(table, key)
            units += m.read_units(m.item_size(item))
        return 2 * units

    def _query_partition(self, params: dict[str, Any]) -> dict[str, Any]:
        """``{partition key: value}`` from a Query's key condition (empty if not found)."""
        names = params.get("ExpressionAttributeNames") or {}
        values = params.get("ExpressionAttributeValues") or {}
        for path, placeholder in _EQUALS.findall(params.get("KeyConditionExpression", "")):
            if names.get(path, path) == self.key_names[0] and placeholder in values:
                return {self.key_names[0]: values[placeholder]}
        return {}

    def _write(
        self,
        action: str,
        request: dict[str, Any],
        returned: dict[str, Any] | None,
        *,
        applied: bool,
    ) -> int:
        table = request.get("TableName", "")
        if action == "Put":
            new = dict(request.get("Item") or {})
            key = _key_of(new, self.key_names)
        else:
            key = dict(request.get("Key") or {})
            new = {}
        old = self.sizes.get(table, key)
        if not applied and returned:
            # A failed condition: the returned item (ALL_OLD) is the truth; nothing changed.
            self.sizes.put(table, key, returned)
            old = returned
        if action == "Update":
            new = m.apply_update(
                old,
                request.get("UpdateExpression", ""),
                request.get("ExpressionAttributeNames"),
                request.get("ExpressionAttributeValues"),
            )
            if returned and applied:
                new.update(returned)
        # AWS charges the larger of the item before and after -- for a failed condition too,
        # where "after" is the item the write would have made.
        larger = max(m.item_size(old), m.item_size(new))
        size = m.item_size(old) if action == "Delete" else larger
        if applied:
            self.sizes.put(table, key, None if action == "Delete" else new)
        return m.write_units(size)

    def _transaction(
        self, params: dict[str, Any], answer: dict[str, Any], code: str, *, lost: bool
    ) -> tuple[float, float]:
        actions = params.get("TransactItems") or []
        reasons = answer.get("CancellationReasons") or []
        token = params.get("ClientRequestToken")
        now = self.clock()
        seen = self._tokens.get(token) if token else None
        replay = not code and seen is not None and now - seen < TOKEN_WINDOW_SECONDS
        if replay or self._replayed(answer.get("ConsumedCapacity")):
            # AWS: "subsequent TransactWriteItems calls with the same client token return the
            # number of read capacity units consumed in reading the item" -- a read, no write.
            size_reads = 0.0
            for entry in actions:
                (action, body), *_ = entry.items()
                key = body.get("Key") or _key_of(body.get("Item") or {}, self.key_names)
                size_reads += m.read_units(m.item_size(self.sizes.get(body["TableName"], key)))
            return size_reads, 0.0
        applied = not code or lost
        if token and applied and seen is None:
            self._tokens[token] = now
        units = 0
        for index, entry in enumerate(actions):
            (action, body), *_ = entry.items()
            if action == "ConditionCheck":
                key = body.get("Key") or {}
                units += m.write_units(m.item_size(self.sizes.get(body["TableName"], key)))
                continue
            returned = None
            if index < len(reasons):
                returned = reasons[index].get("Item")
            units += self._write(action, body, returned, applied=applied)
        return 0.0, float(2 * units)

    @staticmethod
    def _replayed(consumed: Any) -> bool:
        """True when the backend charged reads only: a ClientRequestToken replay."""
        if not isinstance(consumed, list) or not consumed:
            return False
        reads = writes = 0.0
        broken_down = False
        for entry in consumed:
            table = entry.get("Table") or {}
            if "ReadCapacityUnits" in table or "WriteCapacityUnits" in table:
                broken_down = True
            reads += float(table.get("ReadCapacityUnits", 0) or 0)
            writes += float(table.get("WriteCapacityUnits", 0) or 0)
        return broken_down and reads > 0 and writes == 0
