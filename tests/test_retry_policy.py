"""The retry policy against DynamoDB Local (SPEC section 11): what AWS documents as "not applied"
never reaches the caller while the library may retry it.

AWS cancels a ``TransactWriteItems`` or ``TransactGetItems`` whose items lack throughput
(``TransactionCanceledException``, reason ``ThrottlingError`` on an on-demand table,
``ProvisionedThroughputExceeded`` on a provisioned one, ``None`` on the other items), and botocore
does not retry it. DynamoDB Local never does that, so a ``before-send`` hook answers the first
transactions so, nothing sent; then: the add succeeds and counts once, ``value()`` and sharded
snapshots succeed, throttling that never ends surfaces DynamoDB's own error after exactly
``max_attempts`` tries with nothing applied, conflicts that never end raise ``ContentionError``.
Through the sync and the async API (``api``).
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter as Tally
from collections.abc import Sequence
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from _hooks import SendHook, operation_of
from conftest import fresh_client, store_on
from dynamodb_counters import ContentionError, CounterStore, ThresholdExceeded
from dynamodb_counters._retry import Outcome, classify, was_not_applied
from dynamodb_counters.faults import _error_response, _transact_item_count
from dynamodb_counters.local import DynamoDBLocal
from dynamodb_counters.strategies.sharded import ShardedCounter

TRANSACTIONS = frozenset({"TransactWriteItems", "TransactGetItems"})
THROTTLES = ["ThrottlingError", "ProvisionedThroughputExceeded"]
CONFLICT = "TransactionConflict"
STRATEGIES = ["transaction", "marker", "collection", "sharded"]
#: What AWS says beside each reason (the API reference's wording).
MESSAGES = {
    "ThrottlingError": "Throughput exceeds the current capacity of your table or index. DynamoDB "
    "is automatically scaling your table or index so please try again shortly.",
    "ProvisionedThroughputExceeded": "The level of configured provisioned throughput for the "
    "table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
    CONFLICT: "Transaction is ongoing for the item",
    "ConditionalCheckFailed": "The conditional request failed",
}


class Cancel(SendHook):
    """Answers the transactions (``operations``) with ``TransactionCanceledException``, nothing
    sent: the i-th one with reason ``codes[i]`` on item ``at`` and ``None`` on the others (or
    ``codes[i]``, a list, one code per item). After ``len(codes)`` answers the requests pass,
    unless ``forever`` (the last code again and again). ``cancelled`` and ``passed`` count the
    requests per operation."""

    def __init__(
        self,
        client: Any,
        codes: Sequence[str | list[str]],
        *,
        forever: bool = False,
        at: int = 0,
        operations: frozenset[str] = TRANSACTIONS,
    ) -> None:
        self.client, self.codes, self.forever, self.at = client, list(codes), forever, at
        self.operations = operations
        self.cancelled: Tally[str] = Tally()
        self.passed: Tally[str] = Tally()
        self.answers: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _hook(self, request: Any, **_: Any) -> Any:
        operation = operation_of(request)
        if operation not in self.operations:
            return None
        with self._lock:
            n = sum(self.cancelled.values())
            if n >= len(self.codes) and not self.forever:
                self.passed[operation] += 1
                return None
            self.cancelled[operation] += 1
        code = self.codes[min(n, len(self.codes) - 1)]
        count = _transact_item_count(request)
        codes = (
            code
            if isinstance(code, list)
            else [code if i == self.at else "None" for i in range(count)]
        )
        reasons = [
            {"Code": c} if c == "None" else {"Code": c, "Message": MESSAGES[c]} for c in codes
        ]
        self.answers.append({"reasons": reasons})
        named = ", ".join(codes)
        return _error_response(
            request.url,
            "TransactionCanceledException",
            f"Transaction cancelled, please refer cancellation reasons for specific reasons "
            f"[{named}]",
            CancellationReasons=reasons,
        )

    @property
    def tries(self) -> int:
        return sum(self.cancelled.values()) + sum(self.passed.values())


@pytest.fixture
def own(ddb: DynamoDBLocal, api: str) -> Any:
    """A client of this test's own (the hook is attached to it), sync or async."""
    return fresh_client(ddb, api)


def new_counter(client: Any, table: str, strategy: Any, **options: Any) -> Any:
    """A created counter (value 10; floor 0 where the strategy has bounds), no backoff."""
    store = store_on(client, table)
    floor = None if strategy == "collection" else 0
    extra = {"shards": 2} if strategy == "sharded" else {}
    counter = store.counter(
        "stock", strategy=strategy, floor=floor, retry_delay=0, **extra, **options
    )
    counter.create(initial=10)
    return counter


def reason_codes(exc: ClientError) -> list[str]:
    return [r["Code"] for r in exc.response["CancellationReasons"]]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_throttled_transaction_is_tried_again_and_counts_once(
    own: Any, table: str, strategy: str
) -> None:
    """Cancelled for ThrottlingError (on-demand), then ProvisionedThroughputExceeded
    (provisioned), then sent: applied once."""
    counter = new_counter(own, table, strategy)
    with Cancel(own, THROTTLES) as cancel:
        result = counter.add(-3, request_id="order-1")
    assert result.applied is (None if strategy == "transaction" else True)
    assert (cancel.cancelled["TransactWriteItems"], cancel.passed["TransactWriteItems"]) == (2, 1)
    assert result.requests == 3
    assert counter.value() == 7
    # The same request again: nothing more counted.
    assert counter.add(-3, request_id="order-1").applied in (False, None)
    assert counter.value() == 7


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_throttling_that_never_ends_surfaces_dynamodbs_error_with_nothing_applied(
    own: Any, table: str, strategy: str
) -> None:
    counter = new_counter(own, table, strategy, max_attempts=3)
    code = THROTTLES[STRATEGIES.index(strategy) % 2]  # each code on two strategies
    with Cancel(own, [code], forever=True) as cancel, pytest.raises(ClientError) as raised:
        counter.add(-3, request_id="order-1")
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert raised.value.response["CancellationReasons"] == cancel.answers[-1]["reasons"]
    assert reason_codes(raised.value)[0] == code
    # Exactly max_attempts tries, none of them sent.
    assert (cancel.cancelled["TransactWriteItems"], cancel.passed["TransactWriteItems"]) == (3, 0)
    assert counter.value() == 10
    # Nothing applied: the same request id counts when the throughput comes back.
    assert counter.add(-3, request_id="order-1").applied is not False
    assert counter.value() == 7


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_conflicts_that_never_end_raise_contention_error(
    own: Any, table: str, strategy: str
) -> None:
    """One budget for conflicts and throttles; the last answer says what is raised: throttled
    tries followed by a conflict end in ContentionError (nothing applied)."""
    counter = new_counter(own, table, strategy, max_attempts=4)
    codes = [THROTTLES[0], THROTTLES[1], THROTTLES[0], CONFLICT]
    with Cancel(own, codes, forever=True) as cancel, pytest.raises(ContentionError):
        counter.add(-3, request_id="order-1")
    assert cancel.cancelled["TransactWriteItems"] == 4
    assert counter.value() == 10


def test_sharded_value_and_values_read_again_after_a_throttled_snapshot(
    own: Any, table: str
) -> None:
    counter = new_counter(own, table, "sharded")
    with Cancel(own, THROTTLES) as cancel:
        assert counter.value() == 10
    assert (cancel.cancelled["TransactGetItems"], cancel.passed["TransactGetItems"]) == (2, 1)
    store = store_on(own, table)
    with Cancel(own, [CONFLICT, THROTTLES[1]]) as cancel:
        assert store.values(["stock"]) == {"stock": 10}
    assert (cancel.cancelled["TransactGetItems"], cancel.passed["TransactGetItems"]) == (2, 1)
    with Cancel(own, [THROTTLES[0]], forever=True) as cancel, pytest.raises(ClientError) as raised:
        store.counter("stock", max_attempts=2, retry_delay=0).value()
    assert reason_codes(raised.value) == ["ThrottlingError", "None"]
    assert cancel.cancelled["TransactGetItems"] == 2


def _ids_on(counter: Any, shard: int, count: int) -> list[str]:
    strategy = counter._current()
    assert isinstance(strategy, ShardedCounter)
    found = (f"r{i}" for i in itertools.count() if strategy.shard_of(f"r{i}") == shard)
    return list(itertools.islice(found, count))


def test_a_throttled_snapshot_is_never_sold_out(own: Any, table: str, client: Any) -> None:
    """The snapshot that alone may refuse a sharded add is throttled: the add reads again and
    sells the unit that is there, never ThresholdExceeded while stock remains."""
    store = store_on(own, table)
    counter = store.counter(
        "stock", strategy="sharded", floor=0, shards=2, retry_delay=0, max_attempts=5
    )
    counter.create(initial=2)  # shards [1, 1]
    first, second, third = _ids_on(counter, 0, 3)
    counter.add(-1, request_id=first)  # shard 0 dry
    counter.add(-1, request_id=second)  # taken from shard 1: the handle saw the counter empty
    CounterStore(client, table).counter("stock").add(1, request_id="restock")  # on some shard
    with Cancel(own, [*THROTTLES, CONFLICT]) as cancel:
        # The handle saw no stock: it goes straight to the snapshot, which is cancelled 3 times.
        assert counter.add(-1, request_id=third).applied is True
    assert (cancel.cancelled["TransactGetItems"], cancel.passed["TransactGetItems"]) == (3, 1)
    assert counter.value() == 0


def test_sharded_create_and_delete_are_tried_again(ddb: DynamoDBLocal, table: str) -> None:
    own = fresh_client(ddb)
    store = CounterStore(own, table)
    counter = store.counter("stock", strategy="sharded", shards=3, retry_delay=0)
    with Cancel(own, [THROTTLES[0], CONFLICT]) as cancel:
        counter.create(initial=9)
    assert (cancel.cancelled["TransactWriteItems"], cancel.passed["TransactWriteItems"]) == (2, 1)
    assert counter.value() == 9
    with Cancel(own, [THROTTLES[1]]) as cancel:
        counter.delete()
    assert (cancel.cancelled["TransactWriteItems"], cancel.passed["TransactWriteItems"]) == (1, 1)
    assert store.values(["stock"]) == {}


def test_a_throttled_compaction_is_tried_again(ddb: DynamoDBLocal, table: str) -> None:
    own = fresh_client(ddb)
    counter = CounterStore(own, table).counter("c", strategy="collection", retry_delay=0)
    counter.create()
    for i in range(4):
        counter.add(3, request_id=f"r{i}")
    with Cancel(own, [THROTTLES[0], THROTTLES[1]], at=2) as cancel:
        assert counter.compact() == 4
    assert (cancel.cancelled["TransactWriteItems"], cancel.passed["TransactWriteItems"]) == (2, 1)
    assert counter.value() == 12


def test_a_throttle_beside_a_failed_condition_is_a_condition_failure(
    ddb: DynamoDBLocal, table: str
) -> None:
    """A cancellation with ConditionalCheckFailed is interpreted as before, whatever else it
    says: the counter's bound (ThresholdExceeded, no retry)."""
    own = fresh_client(ddb)
    counter = CounterStore(own, table).counter("c", strategy="marker", floor=0, retry_delay=0)
    counter.create(initial=1)
    mixed = ["ConditionalCheckFailed", "ThrottlingError"]
    with Cancel(own, [mixed]) as cancel, pytest.raises(ThresholdExceeded):
        counter.add(-2, request_id="r")
    assert cancel.tries == 1
    assert counter.value() == 1


# -- the table itself (no database) -------------------------------------------------------------


def _answer(code: str, *reasons: str, **extra: Any) -> ClientError:
    body: Any = {"Error": {"Code": code, "Message": extra.pop("message", "canned")}, **extra}
    if reasons:
        body["CancellationReasons"] = [{"Code": r} for r in reasons]
    return ClientError(body, "Op")


EXAMPLES: list[tuple[BaseException, Outcome]] = [
    (_answer("TransactionCanceledException", "TransactionConflict", "None"), Outcome.CONFLICT),
    (_answer("TransactionConflictException"), Outcome.CONFLICT),
    (
        _answer("TransactionCanceledException", "None", "ThrottlingError"),
        Outcome.THROTTLED_TRANSACTION,
    ),
    (
        _answer("TransactionCanceledException", "ProvisionedThroughputExceeded"),
        Outcome.THROTTLED_TRANSACTION,
    ),
    (
        _answer("TransactionCanceledException", "TransactionConflict", "ThrottlingError"),
        Outcome.THROTTLED_TRANSACTION,
    ),
    (
        _answer("TransactionCanceledException", "ThrottlingError", "ConditionalCheckFailed"),
        Outcome.CONDITION_FAILED,
    ),
    (_answer("InternalServerError"), Outcome.AMBIGUOUS),
    (_answer("TransactionInProgressException"), Outcome.AMBIGUOUS),
    (ReadTimeoutError(endpoint_url="http://x"), Outcome.AMBIGUOUS),
    (EndpointConnectionError(endpoint_url="http://x"), Outcome.UNREACHABLE),
    (_answer("ThrottlingException"), Outcome.THROTTLED_REQUEST),
    (_answer("ProvisionedThroughputExceededException"), Outcome.THROTTLED_REQUEST),
    (
        _answer("ValidationException", message="Item size has exceeded the maximum allowed size"),
        Outcome.ITEM_TOO_LARGE,
    ),
    (
        _answer(
            "ValidationException",
            message="Number overflow. Attempting to store a number with magnitude larger than "
            "supported range",
        ),
        Outcome.OVERFLOW,
    ),
    (_answer("TransactionCanceledException", "None"), Outcome.OTHER),
    (
        _answer("TransactionCanceledException", "TransactionConflict", "ValidationError"),
        Outcome.OTHER,
    ),
    (_answer("AccessDeniedException"), Outcome.OTHER),
]


@pytest.mark.parametrize(("failure", "expected"), EXAMPLES, ids=lambda x: str(x)[:60])
def test_every_answer_falls_in_its_row_of_the_table(
    failure: BaseException, expected: Outcome
) -> None:
    assert classify(failure) is expected
    assert was_not_applied(failure) is (
        expected in (Outcome.CONFLICT, Outcome.THROTTLED_TRANSACTION, Outcome.THROTTLED_REQUEST)
    )


def test_the_table_names_every_answer_and_the_examples_cover_it() -> None:
    import dynamodb_counters._retry as policy

    rows = [line.split()[0] for line in (policy.__doc__ or "").splitlines() if line[:1].isupper()]
    assert {a.name for a in Outcome} <= set(rows)
    assert {expected for _, expected in EXAMPLES} == set(Outcome)


def test_the_flash_sale_sends_again_an_order_whose_transaction_stayed_throttled() -> None:
    """An order whose throttled transaction outlasted ``max_attempts`` changed nothing: the
    flash sale's worker sends it again (same id) rather than count an error."""
    from dynamodb_counters.bench.flash import _not_applied

    assert _not_applied(_answer("TransactionCanceledException", "None", "ThrottlingError"))
    assert not _not_applied(_answer("TransactionCanceledException", "ConditionalCheckFailed"))


class ConflictOnce(SendHook):
    """Answers the first ``operation`` request with ``TransactionConflictException`` (its item is
    in a running transaction, SPEC 11 item 2; botocore does not retry it), nothing sent."""

    def __init__(self, client: Any, operation: str) -> None:
        self.client, self.operation, self.conflicts, self.passed = client, operation, 0, 0

    def _hook(self, request: Any, **_: Any) -> Any:
        if operation_of(request) != self.operation:
            return None
        if self.conflicts:
            self.passed += 1
            return None
        self.conflicts += 1
        message = "Transaction is ongoing for the item"
        return _error_response(request.url, "TransactionConflictException", message)


@pytest.mark.parametrize("strategy", ["atomic", "marker"])
def test_a_delete_meeting_a_running_transaction_is_tried_again(
    ddb: DynamoDBLocal, table: str, strategy: Any
) -> None:
    own = fresh_client(ddb)
    store = CounterStore(own, table)
    counter = store.counter("c", strategy=strategy, retry_delay=0)
    counter.create(initial=3)
    if strategy == "marker":
        counter.add(1, request_id="r")
    with ConflictOnce(own, "DeleteItem") as conflict:
        counter.delete()
    assert (conflict.conflicts, conflict.passed) == (1, 1)
    assert store.values(["c"]) == {}
    assert own.scan(TableName=table)["Items"] == []  # the marker swept too
