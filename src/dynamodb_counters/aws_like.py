"""The AWS-like engine mode of the fault injector (SPEC section 11): DynamoDB Local answering as
AWS does where it is kinder than AWS.

DynamoDB Local serializes requests, never throttles, always reads the latest item and treats
every key as a partition of its own. With ``FaultPlan(aws_like=AwsLike(...))`` the injector
(:mod:`.faults`, below botocore's retries) answers like AWS, sending nothing when it refuses:

1. **Throttled transactions are cancelled.** A ``TransactWriteItems`` / ``TransactGetItems``
   whose partitions lack the units: ``TransactionCanceledException``, reason ``ThrottlingError``
   (``billing="provisioned"``: ``ProvisionedThroughputExceeded``) on the items concerned,
   ``None`` on the others; botocore does not retry it. A single-item request over its budget
   gets ``ProvisionedThroughputExceededException`` with ``ThrottlingReasons`` (botocore retries).
2. **Conflicts.** Every write the injector lets through is *in flight* for ``in_flight``
   seconds before the injector sends it itself (a model of the request's way to the item and
   of a transaction's prepare phase, so that conflicts really happen on 2 cores; the window
   does not grow with DynamoDB Local's own latency on a loaded machine). Two
   overlapping ``TransactWriteItems`` on one item: the later one is cancelled with
   ``TransactionConflict``; a ``TransactGetItems`` reading an item with any write in flight
   likewise, and so is one that a write meets while it is being served; a single-item write
   (or a ``BatchWriteItem`` item) on an item inside a running transaction gets
   ``TransactionConflictException`` (the batch item comes back unprocessed).
3. **One token bucket per partition**: the partition key value's item collection (a counter and
   its markers, a shard and its markers) shares ``write_limit`` write units/s and
   ``read_limit`` read units/s (default 3 x); ``partitions=P`` hashes keys onto P partitions
   per table (a new on-demand table has about 4). Units as :mod:`.throughput` prices them.
4. **Eventually consistent reads are stale.** ``GetItem`` without ``ConsistentRead``,
   ``BatchGetItem`` and ``Query`` without ``ConsistentRead`` are answered, at
   ``stale_read_rate``, from a version of each item the injector saw no longer than
   ``staleness`` seconds ago (drawn from the seed, the oldest to the newest alike). Versions
   are what answers already carry, at no extra request: every read that asks for whole items
   (no ``ProjectionExpression``; consistent or not, absent items included) and writes with
   ``ReturnValues`` ``ALL_NEW`` / ``ALL_OLD``. A version is
   dated when its request was sent (the item had it at some moment after: never older than
   claimed). Limits: an item nobody read is never stale; a ``Query`` only replaces or hides
   the items it returns (never shows a deleted one).
5. **Batches answer partly**: each key of a ``BatchGetItem`` and each request of a
   ``BatchWriteItem`` is left unprocessed (``UnprocessedKeys`` / ``UnprocessedItems``) when its
   partition lacks the units, or at ``unprocessed_rate``; when none is processed the answer is
   ``ProvisionedThroughputExceededException``, as on AWS. A partial ``BatchWriteItem`` is
   re-signed and sent with its processed requests only.

One :class:`AwsLikeState` (buckets, in-flight writes, versions) is shared by the threads of a
process that use one injector, or by several injectors given the same state. Between processes,
:func:`shared_state` serves one state from a process of its own and gives a proxy that pickles
into worker processes (``multiprocessing``, any start method): every decision the engine asks
of its state (admit a request, spend units, land a write, see or recall a version) is one call,
so processes meet each other's writes in flight and share the partitions' budgets, for one local
round trip a decision.

Reproducibility: the unprocessed and stale-read rolls hash the seed, the request body, botocore's
attempt number and how many identical ones came before (as :mod:`.faults` does); whether a
bucket has units, whether two writes overlap and which versions were seen depend on timing,
so throttles, conflicts and stale answers are not reproducible from the seed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import multiprocessing
import threading
import time
import zlib
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.managers import BaseManager
from typing import Any, Literal

from botocore.awsrequest import AWSPreparedRequest, AWSRequest, AWSResponse, HTTPHeaders

from .errors import InvalidInput
from .throughput import READ, WRITE, Charge, ItemThroughput, RequestPricer, parse_body

ON_DEMAND = "on-demand"
PROVISIONED = "provisioned"
#: A new on-demand table's warm throughput: 4,000 write units/s, about 4 partitions of 1,000.
WARM_PARTITIONS = 4

#: Operations the AWS-like mode answers (the rest pass through untouched).
AWS_LIKE_OPERATIONS = frozenset(
    {
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "GetItem",
        "Query",
        "TransactWriteItems",
        "TransactGetItems",
        "BatchWriteItem",
        "BatchGetItem",
    }
)
_SINGLE_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem"})
_TRANSACTION = "transaction"
_SINGLE = "single"

_HOT_PARTITION = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically "
    "scaling your table or index so please try again shortly. If exceptions persist, check if "
    "you have a hot key (injected: AWS-like mode)"
)
_PROVISIONED = (
    "The level of configured provisioned throughput for the table was exceeded. Consider "
    "increasing your provisioning level with the UpdateTable API (injected: AWS-like mode)"
)
_ONGOING = "Transaction is ongoing for the item (injected: AWS-like mode)"


def _seconds(value: float | timedelta, name: str) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise InvalidInput(f"{name} must be a number of seconds from 0, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class AwsLike:
    """How AWS-like the injector answers (see the module docstring).

    Attributes:
        write_limit: write units/s per partition (AWS: 1,000; scale it down with DynamoDB
            Local's speed); None: not limited.
        read_limit: read units/s per partition (default 3 x ``write_limit``).
        partitions: keys hashed onto this many partitions per table; None: a partition per
            partition key value.
        in_flight: seconds a write is held in flight before its sending (``float`` or
            ``timedelta``); 0: conflicts only between truly overlapping requests.
        staleness: how old (seconds) an eventually consistent read's answer may be.
        stale_read_rate: the share (0..1) of eventually consistent reads answered stale when
            an older version is known.
        unprocessed_rate: the share (0..1) of batch keys / requests left unprocessed.
        billing: ``"on-demand"`` (reason ``ThrottlingError``) or ``"provisioned"``
            (``ProvisionedThroughputExceeded``).
    """

    write_limit: float | None = 1000.0
    read_limit: float | None = None
    partitions: int | None = None
    in_flight: float | timedelta = 0.005
    staleness: float | timedelta = 1.0
    stale_read_rate: float = 0.5
    unprocessed_rate: float = 0.0
    billing: str = ON_DEMAND

    def __post_init__(self) -> None:
        for name in ("write_limit", "read_limit"):
            limit = getattr(self, name)
            if limit is not None and (
                isinstance(limit, bool)
                or not isinstance(limit, int | float)
                or not 0 < limit < math.inf
            ):
                raise InvalidInput(f"{name} must be a number of units/s above 0, got {limit!r}")
        if self.partitions is not None and (
            isinstance(self.partitions, bool)
            or not isinstance(self.partitions, int)
            or not 1 <= self.partitions <= 100_000
        ):
            raise InvalidInput(f"partitions must be from 1 to 100000, got {self.partitions!r}")
        object.__setattr__(self, "in_flight", _seconds(self.in_flight, "in_flight"))
        object.__setattr__(self, "staleness", _seconds(self.staleness, "staleness"))
        for name in ("stale_read_rate", "unprocessed_rate"):
            rate = getattr(self, name)
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
                raise InvalidInput(f"{name} must be a number from 0 to 1, got {rate!r}")
        if self.billing not in (ON_DEMAND, PROVISIONED):
            raise InvalidInput(f"billing must be {ON_DEMAND!r} or {PROVISIONED!r}")

    @property
    def in_flight_seconds(self) -> float:
        return _seconds(self.in_flight, "in_flight")

    @property
    def staleness_seconds(self) -> float:
        return _seconds(self.staleness, "staleness")

    @property
    def partition_read_limit(self) -> float | None:
        """Read units/s per partition: as given, else 3 x the write limit."""
        if self.read_limit is not None:
            return float(self.read_limit)
        return None if self.write_limit is None else 3.0 * self.write_limit

    @property
    def throttle_reason(self) -> str:
        """The cancellation reason of a throttled transaction item."""
        return "ThrottlingError" if self.billing == ON_DEMAND else "ProvisionedThroughputExceeded"


#: What :meth:`AwsLikeState.admit` decides.
Verdict = Literal["admitted", "conflict", "throttled"]


class AwsLikeState:
    """What the AWS-like engine remembers: partition buckets, writes in flight, recent versions.

    Thread-safe; share one between the injectors (clients) of one workload. ``stats`` tallies
    ``transaction_throttles``, ``throttles``, ``conflicts``, ``stale_reads``,
    ``unprocessed``.

    Args:
        model: the :class:`AwsLike` options.
        key_names: the table's key attributes (the first is the partition key).
        start_full: the partition buckets start full (a quiet partition's burst) or empty.
        clock: seconds, monotonic.
    """

    def __init__(
        self,
        model: AwsLike,
        *,
        key_names: tuple[str, ...] = ("pk", "sk"),
        start_full: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.key_names = key_names
        self.clock = clock
        self.throughput = ItemThroughput(
            write_limit=model.write_limit,
            read_limit=model.partition_read_limit,
            start_full=start_full,
            clock=clock,
        )
        self._lock = threading.Lock()
        # item id -> {kind: writes of that kind in flight}
        self._flights: dict[str, Counter[str]] = {}
        # Transactional reads being served: ticket -> (their items, indices a write met), and
        # item id -> the tickets reading it.
        self._reads: dict[int, tuple[list[str], set[int]]] = {}
        self._readers: dict[str, set[int]] = {}
        self._tickets = itertools.count(1)
        # item id -> (when seen, the item or None for absent), oldest first
        self._versions: dict[str, deque[tuple[float, dict[str, Any] | None]]] = {}
        self.stats: Counter[str] = Counter()

    # -- partitions ------------------------------------------------------------------------

    def partition(self, table: str, key: Mapping[str, Any]) -> str:
        """The partition id of ``key`` in ``table`` (what shares one bucket)."""
        pk = key.get(self.key_names[0])
        value = json.dumps(pk, sort_keys=True, default=str)
        parts = self.model.partitions
        if parts is None:
            return f"{table}\x00{value}"
        digest = hashlib.md5(value.encode(), usedforsecurity=False).digest()
        return f"{table}\x00#{int.from_bytes(digest[:8], 'big') % parts}"

    def _partition_of(self, item: str) -> str:
        table, _, key = item.partition("\x00")
        try:
            loaded = json.loads(key)
        except ValueError:
            loaded = {}
        return self.partition(table, loaded if isinstance(loaded, dict) else {})

    def take(self, charges: list[Charge]) -> list[Charge]:
        """Spend the charges' units from their partitions' buckets; [] when taken, else the
        charges (per item) whose partition lacks them (nothing taken)."""
        return [charges[i] for i in self._short(charges)]

    def _short(self, charges: list[Charge]) -> list[int]:
        by_partition = [(k, t, self._partition_of(i), u) for k, t, i, u in charges]
        short = {c[2] for c in self.throughput.shortfall(by_partition)}
        return [i for i, p in enumerate(by_partition) if p[2] in short]

    # -- decisions: one call each (one round trip for a shared state) ------------------------

    def admit(
        self, charges: list[Charge], *, transaction: bool, write: bool
    ) -> tuple[Verdict, list[int]]:
        """Admit one request touching the charges' items, atomically: ``("conflict", i)`` when
        items ``i`` have writes in flight that it meets (a transaction's write meets a running
        transaction, so does a single write; a transactional read meets any write),
        ``("throttled", i)`` when the partitions of items ``i`` lack the units (nothing is
        spent), else ``("admitted", [])``: its units are spent and, a write, it is in flight
        (:meth:`land` it); a transactional read, ``("admitted", [ticket])``: it is being served
        until :meth:`finish_read`, and a write that boards meanwhile dooms it."""
        items = [c[2] for c in charges]
        with self._lock:
            clash = self.conflicts(items, any_write=transaction and not write)
            if clash:
                self.stats["conflicts"] += 1
                return "conflict", clash
            short = self._short(charges)
            if short:
                self.stats["transaction_throttles" if transaction else "throttles"] += 1
                return "throttled", short
            if write:
                self.board(items, _TRANSACTION if transaction else _SINGLE)
            elif transaction:
                ticket = next(self._tickets)
                self._reads[ticket] = (items, set())
                for item in items:
                    self._readers.setdefault(item, set()).add(ticket)
                return "admitted", [ticket]
        return "admitted", []

    def finish_read(self, ticket: int) -> list[int]:
        """A transactional read's serving is over: the indices of its items that a write met
        meanwhile (AWS cancels an ongoing ``TransactGetItems`` that a write meets)."""
        with self._lock:
            items, met = self._reads.pop(ticket, ([], set()))
            for item in set(items):
                readers = self._readers.get(item)
                if readers is not None:
                    readers.discard(ticket)
                    if not readers:
                        del self._readers[item]
            if met:
                self.stats["conflicts"] += 1
        return sorted(met)

    def admit_batch(self, entries: list[tuple[list[Charge], bool]]) -> list[bool]:
        """Which requests of a ``BatchWriteItem`` are processed, given each one's charges and
        whether it is left unprocessed anyway (the rate's roll): not when an item of it is in a
        running transaction or its partition lacks the units. The processed ones are in
        flight (:meth:`land` their items as single writes)."""
        kept: list[bool] = []
        with self._lock:
            for charges, refused in entries:
                ids = [c[2] for c in charges]
                ok = not (refused or self.conflicts(ids, any_write=False) or self._short(charges))
                if ok:
                    self.board(ids, _SINGLE)
                kept.append(ok)
            left = kept.count(False)
            if left:
                self.stats["unprocessed"] += left
        return kept

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.stats[name] += n

    def totals(self) -> dict[str, int]:
        """``stats`` as a plain dict (what a shared state's proxy can give)."""
        with self._lock:
            return dict(self.stats)

    def now(self) -> float:
        return self.clock()

    def drain(self, partitions: list[str]) -> None:
        """Empty the buckets of ``partitions`` (ids from :meth:`partition`)."""
        self.throughput.drain(partitions)

    # -- writes in flight --------------------------------------------------------------------

    def conflicts(self, items: list[str], *, any_write: bool) -> list[int]:
        """Which of ``items`` a request meets in flight: a running transaction's writes (what a
        write meets) or any write (``any_write``: what a transactional read meets). Caller
        holds the lock."""
        found = []
        for index, item in enumerate(items):
            flights = self._flights.get(item)
            if not flights:
                continue
            if any_write or flights[_TRANSACTION]:
                found.append(index)
        return found

    def board(self, items: list[str], kind: str) -> None:
        """Put a write's items in flight (caller holds the lock); it dooms the transactional
        reads being served that read any of them."""
        for item in items:
            self._flights.setdefault(item, Counter())[kind] += 1
            for ticket in self._readers.get(item, ()):
                reading, met = self._reads[ticket]
                met.update(i for i, x in enumerate(reading) if x == item)

    def land(self, items: list[str], kind: str) -> None:
        with self._lock:
            for item in items:
                flights = self._flights.get(item)
                if flights is None:
                    continue
                flights[kind] -= 1
                if flights[kind] <= 0:
                    del flights[kind]
                if not flights:
                    del self._flights[item]

    # -- versions ------------------------------------------------------------------------------

    def seen(self, item: str, version: dict[str, Any] | None, at: float) -> None:
        """``item`` was ``version`` (None: absent) at some moment after ``at``."""
        horizon = self.clock() - self.model.staleness_seconds
        with self._lock:
            versions = self._versions.setdefault(item, deque())
            versions.append((at, version))
            while versions and versions[0][0] < horizon:
                versions.popleft()

    def past(self, item: str, fraction: float) -> tuple[bool, dict[str, Any] | None]:
        """(known, version): a version seen within the staleness window, ``fraction`` (0..1)
        of the way from the oldest to the newest (0: the oldest)."""
        horizon = self.clock() - self.model.staleness_seconds
        with self._lock:
            versions = self._versions.get(item)
            while versions and versions[0][0] < horizon:
                versions.popleft()
            if not versions:
                return False, None
            return True, versions[min(len(versions) - 1, int(fraction * len(versions)))][1]

    @property
    def lock(self) -> threading.Lock:
        return self._lock


class _StateServer(BaseManager):
    """Serves one :class:`AwsLikeState` to processes (see :func:`shared_state`)."""


_StateServer.register(
    "AwsLikeState",
    AwsLikeState,
    exposed=(
        "admit",
        "admit_batch",
        "finish_read",
        "take",
        "land",
        "seen",
        "past",
        "count",
        "totals",
        "now",
        "partition",
        "drain",
    ),
)


def _follow_parent() -> None:
    """In the serving process: end with the process that started it, even one killed outright
    (SIGKILL runs no clean-up; the server would otherwise wait forever)."""
    import multiprocessing.connection
    import os

    parent = multiprocessing.parent_process()
    if parent is None:  # pragma: no cover -- always started by a parent
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="aws-like-parent", daemon=True).start()


class SharedState:
    """A :class:`AwsLikeState` served by a process of its own (:func:`shared_state`); ``state``
    is its proxy, to give to :class:`~dynamodb_counters.faults.FaultInjector` (``aws_state=``)
    here and in other processes (it pickles; every process of the workload uses the same)."""

    def __init__(self, server: BaseManager, state: AwsLikeState) -> None:
        self._server = server
        self.state = state

    def close(self) -> None:
        """Stop the serving process (the proxies stop working)."""
        self._server.shutdown()

    def __enter__(self) -> SharedState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def shared_state(
    model: AwsLike,
    *,
    key_names: tuple[str, ...] = ("pk", "sk"),
    start_full: bool = True,
    clock: Callable[[], float] = time.monotonic,
) -> SharedState:
    """One AWS-like engine state for several processes, served by a process of its own
    (``spawn``: safe from a threaded parent). ``clock`` runs there (a picklable function): the
    machine's monotonic clock by default, the same in every process."""
    server = _StateServer(ctx=multiprocessing.get_context("spawn"))
    server.start(initializer=_follow_parent)
    make: Callable[..., AwsLikeState] = server.AwsLikeState  # type: ignore[attr-defined]
    return SharedState(server, make(model, key_names=key_names, start_full=start_full, clock=clock))


#: Sends a prepared request for real (the injector's HTTP session).
Sender = Callable[[AWSPreparedRequest], AWSResponse]
#: A deterministic number in [0, 1) for (request, operation), as the injector rolls.
Roller = Callable[[AWSPreparedRequest, str], float]
#: What the injector does later, maybe in a worker thread: sleeps, sends, answers.
Deferred = Callable[[], AWSResponse]


def response(url: str, status: int, body: dict[str, Any]) -> AWSResponse:
    """An answer as DynamoDB writes it (with the CRC32 header botocore checks)."""
    data = json.dumps(body).encode()
    headers = HTTPHeaders()
    headers["Content-Type"] = "application/x-amz-json-1.0"
    headers["x-amzn-RequestId"] = "injected-" + hashlib.sha1(data).hexdigest()[:12]
    headers["x-amz-crc32"] = str(zlib.crc32(data) & 0xFFFFFFFF)
    headers["Content-Length"] = str(len(data))
    return AWSResponse(url, status, headers, _Body(data))


def error(url: str, code: str, message: str, **extra: Any) -> AWSResponse:
    body = {"__type": f"com.amazonaws.dynamodb.v20120810#{code}", "message": message, **extra}
    return response(url, 400, body)


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


class AwsLikeEngine:
    """Answers one client's requests the AWS-like way (used by :class:`.faults.FaultInjector`).

    :meth:`answer` returns None (send as usual), a refusal (nothing sent), or a
    :data:`Deferred` that sends the request itself (holding its writes in flight) and gives
    back the answer, to be run where blocking is allowed.
    """

    def __init__(
        self,
        state: AwsLikeState,
        pricer: RequestPricer,
        *,
        send: Sender,
        roll: Roller,
        signer: Any,
        region: str | None,
        model: AwsLike | None = None,
        tally: Callable[[str, int], None] | None = None,
    ) -> None:
        """``model``: the state's (needed when ``state`` is a :func:`shared_state` proxy);
        ``tally(name, n)`` counts what this engine answered, beside the state's ``stats``
        (which count every client's)."""
        self.state = state
        self.model = model if model is not None else state.model
        self._tally_hook = tally
        self.pricer = pricer
        self.send = send
        self.roll = roll
        self.signer = signer
        self.region = region or "us-east-1"

    def answer(self, request: AWSPreparedRequest, operation: str) -> AWSResponse | Deferred | None:
        if operation not in AWS_LIKE_OPERATIONS:
            return None
        raw = request.body if isinstance(request.body, str | bytes) else None
        body = parse_body(raw)
        if operation == "TransactWriteItems":
            return self._transaction(request, body, write=True)
        if operation == "TransactGetItems":
            return self._transaction(request, body, write=False)
        if operation in _SINGLE_WRITES:
            return self._single_write(request, operation, body)
        if operation == "BatchWriteItem":
            return self._batch_write(request, body)
        if operation == "BatchGetItem":
            return self._batch_get(request, body)
        return self._read(request, operation, body)

    # -- transactions ---------------------------------------------------------------------------

    def _transaction(
        self, request: AWSPreparedRequest, body: dict[str, Any], *, write: bool
    ) -> AWSResponse | Deferred:
        operation = "TransactWriteItems" if write else "TransactGetItems"
        charges = self.pricer.charges(operation, body)
        items = [c[2] for c in charges]
        verdict, which = self.state.admit(charges, transaction=True, write=write)
        if verdict == "conflict":
            self._tally("conflicts")
            return self._cancelled(request, len(items), which, "TransactionConflict")
        if verdict == "throttled":
            self._tally("transaction_throttles")
            return self._cancelled(request, len(items), which, self.model.throttle_reason)
        if not write:
            return self._reading(request, operation, body, ticket=which[0], count=len(items))
        return self._flying(request, items, _TRANSACTION)

    def _cancelled(
        self, request: AWSPreparedRequest, count: int, which: list[int], reason: str
    ) -> AWSResponse:
        message = _ONGOING if reason == "TransactionConflict" else _HOT_PARTITION
        reasons: list[dict[str, str]] = [
            {"Code": reason, "Message": message} if i in which else {"Code": "None"}
            for i in range(count)
        ]
        codes = ", ".join(r["Code"] for r in reasons)
        return error(
            request.url,
            "TransactionCanceledException",
            "Transaction cancelled, please refer cancellation reasons for specific reasons "
            f"[{codes}] (injected: AWS-like mode)",
            CancellationReasons=reasons,
        )

    # -- single-item writes ------------------------------------------------------------------

    def _single_write(
        self, request: AWSPreparedRequest, operation: str, body: dict[str, Any]
    ) -> AWSResponse | Deferred:
        charges = self.pricer.charges(operation, body)
        items = [c[2] for c in charges]
        verdict, which = self.state.admit(charges, transaction=False, write=True)
        if verdict == "conflict":
            self._tally("conflicts")
            return error(request.url, "TransactionConflictException", _ONGOING)
        if verdict == "throttled":
            self._tally("throttles")
            return self._throttled(request, charges[which[0]])
        return self._flying(request, items, _SINGLE, body=body)

    def _throttled(self, request: AWSPreparedRequest, refused: Charge) -> AWSResponse:
        kind, table, _item, _units = refused
        reason = (
            "TableReadKeyRangeThroughputExceeded"
            if kind == READ
            else "TableWriteKeyRangeThroughputExceeded"
        )
        resource = f"arn:aws:dynamodb:{self.region}:000000000000:table/{table}"
        return error(
            request.url,
            "ProvisionedThroughputExceededException",
            _HOT_PARTITION if self.model.billing == ON_DEMAND else _PROVISIONED,
            ThrottlingReasons=[{"reason": reason, "resource": resource}],
        )

    def _flying(
        self,
        request: AWSPreparedRequest,
        items: list[str],
        kind: str,
        *,
        body: dict[str, Any] | None = None,
    ) -> Deferred:
        """Hold the write in flight for the model's window (it boarded already), then send it.

        The window is the model's alone, before the sending: how long DynamoDB Local takes to
        answer (slow on a loaded machine) never widens it, and it serializes what it runs."""
        window = self.model.in_flight_seconds
        sent_at = self.state.now()

        def fly() -> AWSResponse:
            try:
                if window:
                    time.sleep(window)
            finally:
                self.state.land(items, kind)
            answer = self.send(request)
            if body is not None and answer.status_code == 200:
                self._seen_returned(body, answer, sent_at)
            return answer

        return fly

    def _seen_returned(self, body: dict[str, Any], answer: AWSResponse, at: float) -> None:
        """A single write's ``ALL_NEW`` / ``ALL_OLD`` answer is a whole version of its item."""
        if body.get("ReturnValues") not in ("ALL_NEW", "ALL_OLD"):
            return
        reply = parse_body(answer.content)
        table = str(body.get("TableName", ""))
        key = dict(body.get("Key") or {}) or self._key_of(body.get("Item") or {})
        item = reply.get("Attributes")
        self.state.seen(self._id(table, key), dict(item) if item else None, at)

    # -- batches ---------------------------------------------------------------------------

    def _batch_write(
        self, request: AWSPreparedRequest, body: dict[str, Any]
    ) -> AWSResponse | Deferred:
        kept: dict[str, list[Any]] = {}
        left: dict[str, list[Any]] = {}
        items: list[str] = []
        rolls = self._rolls(request, "BatchWriteItem")
        asked: list[tuple[str, Any, list[Charge]]] = []
        for table, requests in (body.get("RequestItems") or {}).items():
            for entry in requests:
                one = {"RequestItems": {table: [entry]}}
                asked.append((table, entry, self.pricer.charges("BatchWriteItem", one)))
        decided = self.state.admit_batch(
            [(charges, next(rolls) < self.model.unprocessed_rate) for _, _, charges in asked]
        )
        for (table, entry, charges), ok in zip(asked, decided, strict=True):
            if ok:
                kept.setdefault(table, []).append(entry)
                items.extend(c[2] for c in charges)
            else:
                left.setdefault(table, []).append(entry)
        if left:
            self._tally("unprocessed", sum(len(v) for v in left.values()))
        if not kept:
            return self._throttled(request, (WRITE, next(iter(left), ""), "", 0.0))
        if not left:
            return self._flying(request, items, _SINGLE)
        partial = self._resigned(request, "BatchWriteItem", {**body, "RequestItems": kept})
        fly = self._flying(partial, items, _SINGLE)

        def merged() -> AWSResponse:
            answer = fly()
            if answer.status_code != 200:
                return answer
            reply = parse_body(answer.content)
            unprocessed = dict(reply.get("UnprocessedItems") or {})
            for table, entries in left.items():
                unprocessed[table] = list(unprocessed.get(table, [])) + entries
            return response(request.url, 200, {**reply, "UnprocessedItems": unprocessed})

        return merged

    def _resigned(
        self, request: AWSPreparedRequest, operation: str, body: dict[str, Any]
    ) -> AWSPreparedRequest:
        """``request`` with another body, signed again as the client signs."""
        dropped = {"authorization", "x-amz-date", "content-length", "x-amz-security-token"}
        headers = {
            k: v.decode() if isinstance(v, bytes) else v
            for k, v in request.headers.items()
            if k.lower() not in dropped
        }
        fresh = AWSRequest(
            method=request.method, url=request.url, headers=headers, data=json.dumps(body)
        )
        self.signer.sign(operation, fresh)
        return fresh.prepare()

    def _batch_get(
        self, request: AWSPreparedRequest, body: dict[str, Any]
    ) -> AWSResponse | Deferred:
        state = self.state
        left: dict[str, dict[str, Any]] = {}
        wanted = 0
        rolls = self._rolls(request, "BatchGetItem")
        for table, asked in (body.get("RequestItems") or {}).items():
            for key in asked.get("Keys") or []:
                wanted += 1
                one = {"RequestItems": {table: {**asked, "Keys": [key]}}}
                charges = self.pricer.charges("BatchGetItem", one)
                if next(rolls) < self.model.unprocessed_rate or state.take(charges):
                    entry = left.setdefault(table, {**asked, "Keys": []})
                    entry["Keys"].append(key)
        missing = sum(len(v["Keys"]) for v in left.values())
        if missing:
            self._count("unprocessed", missing)
            if missing == wanted:
                return self._throttled(request, (READ, next(iter(left), ""), "", 0.0))
        return self._reading(request, "BatchGetItem", body, left=left)

    # -- reads -----------------------------------------------------------------------------

    def _read(
        self, request: AWSPreparedRequest, operation: str, body: dict[str, Any]
    ) -> AWSResponse | Deferred:
        charges = self.pricer.charges(operation, body)
        if charges:
            short = self.state.take(charges)
            if short:
                self._count("throttles")
                return self._throttled(request, short[0])
        return self._reading(request, operation, body)

    def _reading(
        self,
        request: AWSPreparedRequest,
        operation: str,
        body: dict[str, Any],
        *,
        left: dict[str, dict[str, Any]] | None = None,
        ticket: int | None = None,
        count: int = 0,
    ) -> Deferred:
        """Send a read; record the versions it shows; answer stale or partly where due. A
        transactional read (``ticket``, of ``count`` items) that a write met while it was
        served is cancelled, as AWS cancels it."""
        sent_at = self.state.now()

        def read() -> AWSResponse:
            try:
                answer = self.send(request)
            finally:
                met = [] if ticket is None else self.state.finish_read(ticket)
            if met and answer.status_code == 200:
                self._tally("conflicts")
                return self._cancelled(request, count, met, "TransactionConflict")
            if answer.status_code != 200:
                return answer
            reply = parse_body(answer.content)
            changed = self._observe(request, operation, body, reply, sent_at, left or {})
            return answer if changed is None else response(request.url, 200, changed)

        return read

    def _observe(
        self,
        request: AWSPreparedRequest,
        operation: str,
        body: dict[str, Any],
        reply: dict[str, Any],
        at: float,
        left: dict[str, dict[str, Any]],
    ) -> dict[str, Any] | None:
        """Record what ``reply`` shows; the reply to give instead (stale, partial) or None."""
        stale = self._stale_roll(request, operation, body)
        if operation == "GetItem":
            table = str(body.get("TableName", ""))
            item_id = self._id(table, dict(body.get("Key") or {}))
            real = reply.get("Item")
            if "ProjectionExpression" in body:
                return None
            changed = None
            if stale is not None:
                known, old = self.state.past(item_id, stale)
                if known and old != real:
                    self._count("stale_reads")
                    changed = {k: v for k, v in reply.items() if k != "Item"}
                    if old is not None:
                        changed["Item"] = old
            self.state.seen(item_id, dict(real) if real else None, at)
            return changed
        if operation == "TransactGetItems":
            for entry, got in zip(
                body.get("TransactItems") or [], reply.get("Responses") or [], strict=False
            ):
                part = entry.get("Get") or {}
                if "ProjectionExpression" in part:
                    continue
                item_id = self._id(str(part.get("TableName", "")), dict(part.get("Key") or {}))
                found = got.get("Item")
                self.state.seen(item_id, dict(found) if found else None, at)
            return None
        if operation == "Query":
            return self._query(body, reply, at, stale)
        return self._batch_reply(body, reply, at, stale, left)

    def _batch_reply(
        self,
        body: dict[str, Any],
        reply: dict[str, Any],
        at: float,
        stale: float | None,
        left: dict[str, dict[str, Any]],
    ) -> dict[str, Any] | None:
        responses: dict[str, list[dict[str, Any]]] = {}
        changed = bool(left)
        for table, asked in (body.get("RequestItems") or {}).items():
            whole = "ProjectionExpression" not in asked
            consistent = bool(asked.get("ConsistentRead"))
            found = {
                self._id(table, self._key_of(item)): item
                for item in (reply.get("Responses") or {}).get(table, [])
            }
            held = {self._id(table, dict(k)) for k in (left.get(table) or {}).get("Keys", [])}
            unanswered = {
                self._id(table, dict(k))
                for k in ((reply.get("UnprocessedKeys") or {}).get(table) or {}).get("Keys", [])
            }
            rows = []
            for key in asked.get("Keys") or []:
                item_id = self._id(table, dict(key))
                if item_id in unanswered:
                    continue
                real = found.get(item_id)
                shown = real
                if stale is not None and whole and not consistent and item_id not in held:
                    known, old = self.state.past(item_id, stale)
                    if known and old != real:
                        self._count("stale_reads")
                        shown, changed = old, True
                if whole:
                    self.state.seen(item_id, dict(real) if real else None, at)
                if item_id in held:
                    changed = True
                    continue
                if shown is not None:
                    rows.append(shown)
            responses[table] = rows
        if not changed:
            return None
        unprocessed = dict(reply.get("UnprocessedKeys") or {})
        for table, entry in left.items():
            before = unprocessed.get(table)
            keys = list(before.get("Keys", [])) if before else []
            unprocessed[table] = {**entry, "Keys": keys + entry["Keys"]}
        return {**reply, "Responses": responses, "UnprocessedKeys": unprocessed}

    def _query(
        self, body: dict[str, Any], reply: dict[str, Any], at: float, stale: float | None
    ) -> dict[str, Any] | None:
        if "ProjectionExpression" in body or body.get("IndexName"):
            return None
        table = str(body.get("TableName", ""))
        rows: list[dict[str, Any]] = []
        changed = False
        for item in reply.get("Items") or []:
            item_id = self._id(table, self._key_of(item))
            shown: dict[str, Any] | None = item
            if stale is not None and not body.get("ConsistentRead"):
                known, old = self.state.past(item_id, stale)
                if known and old != item:
                    self._count("stale_reads")
                    shown, changed = old, True
            self.state.seen(item_id, dict(item), at)
            if shown is not None:
                rows.append(shown)
        if not changed:
            return None
        return {**reply, "Items": rows, "Count": len(rows)}

    # -- helpers -------------------------------------------------------------------------------

    def _stale_roll(
        self, request: AWSPreparedRequest, operation: str, body: dict[str, Any]
    ) -> float | None:
        """None: answer as it is; else how far (0..1) from the oldest version seen within the
        staleness window to the newest the answer comes from (0: the oldest)."""
        if operation in ("GetItem", "Query") and body.get("ConsistentRead"):
            return None
        rate = self.model.stale_read_rate
        if operation == "TransactGetItems" or not rate:
            return None
        roll = self.roll(request, operation + "/stale")
        return roll / rate if roll < rate else None

    def _rolls(self, request: AWSPreparedRequest, operation: str) -> Any:
        """Rolls for a batch's entries in order (only drawn when the rate is on)."""
        index = 0
        while True:
            if not self.model.unprocessed_rate:
                yield 1.0
                continue
            index += 1
            yield self.roll(request, f"{operation}/{index}")

    def _tally(self, name: str, n: int = 1) -> None:
        if self._tally_hook is not None:
            self._tally_hook(name, n)

    def _count(self, name: str, n: int = 1) -> None:
        """Count in the state (all its clients) and in this client's tally."""
        self.state.count(name, n)
        self._tally(name, n)

    def _key_of(self, item: Mapping[str, Any]) -> dict[str, Any]:
        return {k: item[k] for k in self.pricer.key_names if k in item}

    def _id(self, table: str, key: Mapping[str, Any]) -> str:
        from .bench import metrics as m

        return m.key_id(table, key)
