"""The per-item throughput model: what one DynamoDB item can take per second (SPEC section 8).

One item lives in one partition, and a partition serves about 1,000 write units/s and 3,000
read units/s; above that DynamoDB answers ``ProvisionedThroughputExceededException`` with the
``ThrottlingReasons`` ``TableWriteKeyRangeThroughputExceeded`` (reads:
``TableReadKeyRangeThroughputExceeded``), whatever the table's capacity. DynamoDB Local has no
such limit, so :class:`~dynamodb_counters.faults.FaultInjector` applies this model below
botocore's retries:

* every item (table + full primary key) has a write bucket of ``write_limit`` units/s and a read
  bucket of ``read_limit`` units/s (by default 3 x the write limit);
* a bucket holds at most one second of its rate (``burst_seconds``), and starts full: a quiet
  item may take a short burst, a busy one gets its rate and no more; :meth:`ItemThroughput.drain`
  empties the buckets of items already busy when a measurement starts;
* a request is priced per item as the bench's meter prices it (:mod:`.bench.metrics`): 1 write
  unit per KB started, 2 per KB for a ``TransactWriteItems`` item (a ``ConditionCheck``
  included), 0.5 / 1 / 2 read units per 4 KB for an eventually consistent / strongly
  consistent / transactional read. The size is the larger of the item before and after, where
  the caller's ``known_item`` lookup knows the item (the bench passes its meter's), else the
  key and values in the request;
* the request goes through only if every item it touches has the units now, and then all of
  them are taken at once; otherwise nothing is taken and nothing is sent. A request whose cost
  is larger than a whole bucket passes when the bucket is full, leaving it in debt, so a big
  item is slow, never stuck.

botocore retries the answer in every retry mode: ``standard`` and ``adaptive`` count
``ProvisionedThroughputExceededException`` as a throttling error (retried while the client's
retry quota lasts, 5 of its 500 tokens a retry), ``legacy`` through DynamoDB's
``throughput_exceeded`` policy (HTTP 400 and that code; 50 ms backoff, doubling).

Not modelled by this per-item model: ``Query`` and ``Scan`` (the items they read are only known
from the answer), the partial answers of batch operations (a ``BatchWriteItem`` over an item
without units is throttled whole), and the replay of a ``ClientRequestToken`` (priced here as the
write it was). Nor what AWS does beyond one item's budget: the **AWS-like mode**
(:mod:`dynamodb_counters.aws_like`, SPEC section 11) uses these buckets per *partition* (an item
collection, or keys hashed onto P partitions) instead of per item, answers a throttled
transaction as AWS does (cancelled, ``ThrottlingError``; botocore does not retry it), and adds
transaction conflicts, stale eventually consistent reads and partial batch answers.

Neither models: DynamoDB's adaptive capacity and splits for heat (a partition stays at its
limit), a table's quota (40,000 units/s by default) or a new table's warm throughput beyond the
P partitions asked for, ``Query``/``Scan`` budgets, the latency of a real network (requests
take what DynamoDB Local takes), or budgets shared between processes (one injector's buckets
are shared by its threads only).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

#: Seconds of its rate a bucket holds (its burst).
BURST_SECONDS = 1.0
WRITE = "write"
READ = "read"

#: ``known_item(table, key)``: the last known full item, or the key alone when unknown.
ItemLookup = Callable[[str, dict[str, Any]], dict[str, Any]]

MODELLED_OPERATIONS = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "GetItem",
        "TransactWriteItems",
        "TransactGetItems",
        "BatchWriteItem",
        "BatchGetItem",
    }
)

#: One item's charge in a request: (``WRITE`` or ``READ``, table, item id, units).
Charge = tuple[str, str, str, float]


def _key_only(_table: str, key: dict[str, Any]) -> dict[str, Any]:
    return dict(key)


class RequestPricer:
    """Prices a request body (DynamoDB's JSON wire format) per item it touches.

    Args:
        key_names: the table's key attribute names (to find a ``Put``'s key in its item).
        known_item: the last known full form of an item (default: only its key is known).
    """

    def __init__(
        self, key_names: tuple[str, ...] = ("pk", "sk"), known_item: ItemLookup | None = None
    ) -> None:
        self.key_names = key_names
        self.known_item = known_item or _key_only

    def charges(self, operation: str, body: Mapping[str, Any]) -> list[Charge]:
        """What ``operation`` with ``body`` costs, per item; empty when not modelled."""
        # Imported here: the bench package imports this module's users (faults, options).
        from .bench import metrics as m

        charges: list[Charge] = []

        def write(action: str, table: str, body: Mapping[str, Any], factor: int) -> None:
            if action == "Put":
                new = dict(body.get("Item") or {})
                key = {k: new[k] for k in self.key_names if k in new}
            else:
                key = dict(body.get("Key") or {})
                new = {}
            old = self.known_item(table, key)
            if action == "Update":
                new = m.apply_update(
                    old,
                    str(body.get("UpdateExpression", "")),
                    body.get("ExpressionAttributeNames"),
                    body.get("ExpressionAttributeValues"),
                )
            size = max(m.item_size(old), m.item_size(new))
            units = factor * m.write_units(size)
            charges.append((WRITE, table, m.key_id(table, key), float(units)))

        def read(table: str, key: dict[str, Any], *, consistent: bool, factor: int) -> None:
            size = m.item_size(self.known_item(table, key))
            units = factor * m.read_units(size, consistent=consistent)
            charges.append((READ, table, m.key_id(table, key), float(units)))

        if operation in ("PutItem", "UpdateItem", "DeleteItem"):
            action = operation.removesuffix("Item")
            write(action, str(body.get("TableName", "")), body, 1)
        elif operation == "GetItem":
            table = str(body.get("TableName", ""))
            read(
                table,
                dict(body.get("Key") or {}),
                consistent=bool(body.get("ConsistentRead")),
                factor=1,
            )
        elif operation == "TransactWriteItems":
            for entry in body.get("TransactItems") or []:
                for action, part in entry.items():
                    # A ConditionCheck is priced as a write of the item it checks.
                    kind = "Check" if action == "ConditionCheck" else action
                    write(kind, str(part.get("TableName", "")), part, 2)
        elif operation == "TransactGetItems":
            for entry in body.get("TransactItems") or []:
                part = entry.get("Get") or {}
                table = str(part.get("TableName", ""))
                read(table, dict(part.get("Key") or {}), consistent=True, factor=2)
        elif operation == "BatchWriteItem":
            for table, requests in (body.get("RequestItems") or {}).items():
                for request in requests:
                    if "PutRequest" in request:
                        write("Put", table, request["PutRequest"], 1)
                    elif "DeleteRequest" in request:
                        write("Delete", table, request["DeleteRequest"], 1)
        elif operation == "BatchGetItem":
            for table, wanted in (body.get("RequestItems") or {}).items():
                consistent = bool(wanted.get("ConsistentRead"))
                for key in wanted.get("Keys") or []:
                    read(table, dict(key), consistent=consistent, factor=1)
        return charges


def parse_body(raw: bytes | str | None) -> dict[str, Any]:
    """A request's JSON body (empty if it is not JSON)."""
    try:
        loaded = json.loads(raw or b"{}")
    except (ValueError, TypeError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


class ItemThroughput:
    """Token buckets per item: ``write_limit`` write units/s, ``read_limit`` read units/s.

    Thread-safe; one instance is the budget of every client that shares it (the items'
    budget is per item, not per client). A bucket starts full (``start_full``: an item that
    was quiet has its burst), or empty (an item already at its rate: a measurement of the
    steady rate, without the first second's burst). ``admitted`` tallies the units let through per
    (kind, item id); ``refused`` the requests refused, per kind.
    """

    def __init__(
        self,
        *,
        write_limit: float | None,
        read_limit: float | None,
        burst_seconds: float = BURST_SECONDS,
        start_full: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = {WRITE: write_limit, READ: read_limit}
        self.burst_seconds = burst_seconds
        self.start_full = start_full
        self.clock = clock
        self._lock = threading.Lock()
        # (kind, item id) -> [tokens, when they were counted]
        self._buckets: dict[tuple[str, str], list[float]] = {}
        self.admitted: dict[tuple[str, str], float] = {}
        self.refused: Counter[str] = Counter()

    def capacity(self, kind: str) -> float:
        limit = self.limits[kind]
        return math.inf if limit is None else limit * self.burst_seconds

    def take(self, charges: list[Charge]) -> Charge | None:
        """Take every charge at once and return None, or take nothing and return the first
        charge whose bucket lacks the units (the request is then throttled)."""
        wanted: dict[tuple[str, str], float] = {}
        first: dict[tuple[str, str], Charge] = {}
        for charge in charges:
            kind, _table, item, units = charge
            if self.limits[kind] is None:
                continue
            wanted[(kind, item)] = wanted.get((kind, item), 0.0) + units
            first.setdefault((kind, item), charge)
        if not wanted:
            return None
        with self._lock:
            now = self.clock()
            buckets = [self._refill(slot, now) for slot in wanted]
            for (slot, units), bucket in zip(wanted.items(), buckets, strict=True):
                full = bucket[0] >= self.capacity(slot[0])
                if bucket[0] < units and not full:
                    self.refused[slot[0]] += 1
                    return first[slot]
            for (slot, units), bucket in zip(wanted.items(), buckets, strict=True):
                bucket[0] -= units
                self.admitted[slot] = self.admitted.get(slot, 0.0) + units
        return None

    def shortfall(self, charges: list[Charge]) -> list[Charge]:
        """Like :meth:`take`, but on refusal every charge whose bucket lacks the units (the
        items a cancelled transaction names), in the order given; empty when all were taken."""
        wanted: dict[tuple[str, str], float] = {}
        for kind, _table, item, units in charges:
            if self.limits[kind] is not None:
                wanted[(kind, item)] = wanted.get((kind, item), 0.0) + units
        with self._lock:
            now = self.clock()
            short = set()
            for slot, units in wanted.items():
                bucket = self._refill(slot, now)
                if bucket[0] < units and bucket[0] < self.capacity(slot[0]):
                    short.add(slot)
            if short:
                for slot in short:
                    self.refused[slot[0]] += 1
                return [c for c in charges if (c[0], c[2]) in short]
            for slot, units in wanted.items():
                self._buckets[slot][0] -= units
                self.admitted[slot] = self.admitted.get(slot, 0.0) + units
        return []

    def drain(self, items: Iterable[str]) -> None:
        """Empty the buckets of ``items`` (item ids, as in ``admitted``), read and write, now:
        items already at their rate when a measurement starts (a sale's counter and shards),
        while items first written during it (its markers) start as :attr:`start_full` says."""
        with self._lock:
            now = self.clock()
            for item in items:
                for kind in (WRITE, READ):
                    self._buckets[(kind, item)] = [0.0, now]

    def _refill(self, slot: tuple[str, str], now: float) -> list[float]:
        capacity = self.capacity(slot[0])
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = [capacity if self.start_full else 0.0, now]
            return bucket
        limit = self.limits[slot[0]] or 0.0
        bucket[0] = min(capacity, bucket[0] + (now - bucket[1]) * limit)
        bucket[1] = now
        return bucket
