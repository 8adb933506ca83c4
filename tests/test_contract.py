# mypy: disable-error-code="arg-type"
# (strategy ids come from parameter lists as plain str, and bad input is passed on purpose)
"""The contract every strategy honours (SPEC section 3), one suite parametrised over all the
strategies and both APIs (sync ``CounterStore``, async ``AsyncCounterStore``; SPEC section 9).

Everything runs against DynamoDB Local. Where a fault must be forced it is injected below
botocore's (or aiobotocore's) retries (``FaultInjector``) on a client of the test's own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from _ledger import LoseAnswers
from conftest import (
    ALL,
    ENGINES,
    IDEMPOTENT,
    THRESHOLDS,
    fresh_client,
    new_table_name,
    on_engine,
    scan_all,
    store_on,
)
from dynamodb_counters import (
    STRATEGIES,
    AddResult,
    CallRecord,
    Counter,
    CounterExists,
    CounterNotFound,
    CounterStore,
    InvalidInput,
    NotSupported,
    RequestIdMismatch,
    TableNotFound,
    ThresholdExceeded,
)
from dynamodb_counters.faults import FaultInjector, FaultPlan
from dynamodb_counters.local import DynamoDBLocal

NON_IDEMPOTENT = [name for name in ALL if name not in IDEMPOTENT]
# Strategies that can tell a reused request id with another amount from a duplicate.
TELLS_MISMATCH = ["occ_history", "transaction", "marker", "collection", "sharded"]
# Options that keep contention tests from giving up early (occ) or filling up (set).
ROOMY: dict[str, dict[str, Any]] = {
    "occ": {"max_attempts": 500},
    "occ_history": {"max_attempts": 500, "history": 200},
    "set": {"capacity": 1000},
}
WEIRD_NAME = "tickets#gig:42 'A' \"B\" ünï 🎫"
# Strategies whose write returns the new value at no extra cost (the others give None).
RETURNS_VALUE = {"atomic", "occ", "occ_history", "set"}


@pytest.fixture
def store(api_store: CounterStore) -> CounterStore:
    """Every test of this module that takes ``store`` runs once per API."""
    return api_store


def expected_applied(strategy: str, applied: bool) -> bool | None:
    """What ``AddResult.applied`` must say on DynamoDB Local (SPEC section 2).

    ``transaction`` cannot tell a replay from a first write where the engine does not break
    consumed capacity down per table, which DynamoDB Local does not: it always says None.
    """
    return None if strategy == "transaction" else applied


# ``sharded`` runs at its default 8 shards everywhere; these also run at 1 and 3 shards (a
# shard count of 1 is one item with escrow of nothing to move; 3 leaves shares uneven).
SHARD_COUNTS = ["sharded:1", "sharded:3"]


def of(strategy: str) -> str:
    """The strategy id of a case (``sharded:3`` is ``sharded`` with 3 shards)."""
    return strategy.split(":")[0]


def make(
    store: CounterStore, strategy: str, name: str = "c", initial: int = 0, **kw: Any
) -> Counter:
    if ":" in strategy:
        strategy, shards = strategy.split(":")
        kw["shards"] = int(shards)
    counter = store.counter(name, strategy=strategy, **kw)
    counter.create(initial=initial)
    return counter


def rid(strategy: str, request_id: str) -> str | None:
    """The request id to send: only idempotent strategies accept one."""
    return request_id if STRATEGIES[of(strategy)].idempotent else None


def run_threads(count: int, work: Callable[[int], None]) -> None:
    """Run ``work(i)`` in ``count`` threads started together; re-raise the first failure."""
    start = threading.Barrier(count, timeout=60)
    failures: list[BaseException] = []

    def body(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive(), "a worker thread hung"
    if failures:
        raise failures[0]


def items_of(client: Any, table: str, name: str) -> list[dict[str, Any]]:
    """Every item of the counter ``name``: its own and what its strategy keeps beside it."""
    return [
        item
        for item in scan_all(client, table)
        if item["pk"]["S"] == name or item["pk"]["S"].startswith(name + "#")
    ]


# -- life cycle -------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
@pytest.mark.parametrize("strategy", ALL)
def test_create_add_value_delete(
    client: Any, table: str, store: CounterStore, strategy: str
) -> None:
    counter = make(store, strategy, initial=10)
    assert (counter.name, counter.strategy) == ("c", strategy)
    assert counter.value() == 10
    first = counter.add(5, request_id=rid(strategy, "r1"))
    second = counter.add(-7, request_id=rid(strategy, "r2"))
    assert isinstance(first, AddResult)
    assert first.applied is expected_applied(strategy, True)
    assert second.applied is expected_applied(strategy, True)
    assert first.request_id == rid(strategy, "r1")
    assert first.requests == STRATEGIES[strategy].capabilities.requests_per_add
    assert first.sdk_retries == 0
    if strategy in RETURNS_VALUE:
        assert (first.value, second.value) == (15, 8)
    else:
        assert (first.value, second.value) == (None, None)
    assert counter.value() == 8
    counter.delete()
    assert items_of(client, table, "c") == []
    with pytest.raises(CounterNotFound):
        counter.value()


@pytest.mark.parametrize("strategy", IDEMPOTENT)
def test_generated_request_ids_are_distinct(store: CounterStore, strategy: str) -> None:
    counter = make(store, strategy)
    ids = {counter.add(1).request_id for _ in range(3)}
    assert None not in ids and len(ids) == 3
    assert counter.value() == 3


@pytest.mark.parametrize("strategy", NON_IDEMPOTENT)
def test_non_idempotent_strategies_refuse_request_ids(store: CounterStore, strategy: str) -> None:
    counter = make(store, strategy, initial=1)
    with pytest.raises(NotSupported):
        counter.add(1, request_id="order-1")
    assert counter.add(1).request_id is None
    assert counter.value() == 2


@pytest.mark.parametrize("strategy", ALL)
def test_create_on_existing_counter_raises_counter_exists(
    store: CounterStore, strategy: str
) -> None:
    counter = make(store, strategy, initial=4)
    with pytest.raises(CounterExists):
        counter.create(initial=9)
    with pytest.raises(CounterExists):
        store.counter("c", strategy=strategy).create()
    assert counter.value() == 4


@pytest.mark.parametrize("strategy", ALL)
def test_missing_counter_raises_counter_not_found(store: CounterStore, strategy: str) -> None:
    counter = store.counter("nobody", strategy=strategy)
    with pytest.raises(CounterNotFound):
        counter.value()
    with pytest.raises(CounterNotFound):
        counter.delete()
    with pytest.raises(CounterNotFound):
        counter.add(3, request_id=rid(strategy, "r"))
    with pytest.raises(CounterNotFound):
        counter.value()


@pytest.mark.parametrize("strategy", ALL)
def test_missing_table_raises_table_not_found(client: Any, strategy: str) -> None:
    store = CounterStore(client, new_table_name("missing"))
    counter = store.counter("c", strategy=strategy)
    with pytest.raises(TableNotFound):
        counter.create(initial=1)
    with pytest.raises(TableNotFound):
        counter.add(1, request_id=rid(strategy, "r"))
    with pytest.raises(TableNotFound):
        counter.value()
    with pytest.raises(TableNotFound):
        counter.delete()


@pytest.mark.parametrize("strategy", ALL)
def test_names_with_special_characters_round_trip(
    client: Any, table: str, store: CounterStore, strategy: str
) -> None:
    neighbour = make(store, strategy, name=WEIRD_NAME + " neighbour", initial=1)
    neighbour.add(1, request_id=rid(strategy, "n1"))
    counter = make(store, strategy, name=WEIRD_NAME, initial=5)
    assert counter.name == WEIRD_NAME
    counter.add(3, request_id=rid(strategy, "r1 #:'\" ü🎫"))
    counter.add(-1, request_id=rid(strategy, "r2"))
    assert counter.value() == 7
    assert store.counter(WEIRD_NAME, strategy=strategy).value() == 7
    assert any(i["pk"]["S"] == WEIRD_NAME for i in scan_all(client, table))
    counter.delete()
    assert [i for i in scan_all(client, table) if i["pk"]["S"] == WEIRD_NAME] == []
    with pytest.raises(CounterNotFound):
        counter.value()
    # Deleting one counter leaves the others (and what their strategies keep) alone.
    assert neighbour.value() == 2


# -- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ALL)
def test_bad_input_raises_invalid_input(store: CounterStore, strategy: str) -> None:
    counter = make(store, strategy, initial=1)
    for amount in (0, True, 1.5, "1", None, 10**38, -(10**38)):
        with pytest.raises(InvalidInput):
            counter.add(amount)
    if STRATEGIES[strategy].idempotent:
        for request_id in ("", "x" * 256, 7):
            with pytest.raises(InvalidInput):
                counter.add(1, request_id=request_id)
    for name in ("", "é" * 513, 42, None):
        with pytest.raises(InvalidInput):
            store.counter(name, strategy=strategy)
    with pytest.raises(InvalidInput):
        store.counter("c", strategy=strategy, no_such_option=1)  # type: ignore[call-arg]
    with pytest.raises(InvalidInput):
        store.counter("c", strategy=strategy, max_attempts=0)
    assert counter.value() == 1


@pytest.mark.parametrize("strategy", THRESHOLDS)
def test_bad_bounds_raise_invalid_input(store: CounterStore, strategy: str) -> None:
    with pytest.raises(InvalidInput):
        store.counter("c", strategy=strategy, floor=5, ceiling=4)
    with pytest.raises(InvalidInput):
        store.counter("c", strategy=strategy, floor=1.5)
    with pytest.raises(InvalidInput):
        store.counter("c", strategy=strategy, floor=0).create(initial=-1)
    with pytest.raises(InvalidInput):
        store.counter("c", strategy=strategy, ceiling=10).create(initial=11)
    with pytest.raises(CounterNotFound):
        store.counter("c", strategy=strategy).value()


def test_unknown_strategy_raises_invalid_input(store: CounterStore) -> None:
    with pytest.raises(InvalidInput):
        store.counter("c", strategy="magic")


# -- idempotency ------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", IDEMPOTENT)
def test_same_request_id_twice_counts_once(store: CounterStore, strategy: str) -> None:
    counter = make(store, strategy, initial=100)
    first = counter.add(-2, request_id="order-81")
    again = counter.add(-2, request_id="order-81")
    assert first.applied is expected_applied(strategy, True)
    assert again.applied is expected_applied(strategy, False)
    assert again.request_id == "order-81"
    assert counter.value() == 98
    other = counter.add(-2, request_id="order-82")
    assert other.applied is expected_applied(strategy, True)
    assert counter.value() == 96


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
@pytest.mark.parametrize("strategy", IDEMPOTENT)
def test_same_request_id_from_eight_threads_counts_once(store: CounterStore, strategy: str) -> None:
    # Room for DynamoDB's TransactionInProgressException while the same token is in flight.
    counter = make(store, strategy, initial=50, ambiguity_retries=20, **ROOMY.get(strategy, {}))
    results: list[AddResult] = []
    lock = threading.Lock()

    def work(_: int) -> None:
        result = counter.add(7, request_id="the-one")
        with lock:
            results.append(result)

    run_threads(8, work)
    assert counter.value() == 57
    assert len(results) == 8
    if strategy == "transaction":
        # Consistent "cannot tell": never a True for one caller and a False for another.
        assert [r.applied for r in results] == [None] * 8
    else:
        assert [r.applied for r in results].count(True) == 1
        assert [r.applied for r in results].count(False) == 7


@pytest.mark.parametrize("strategy", IDEMPOTENT)
def test_request_id_is_scoped_to_its_counter(store: CounterStore, strategy: str) -> None:
    apples = make(store, strategy, name="apples", initial=0)
    pears = make(store, strategy, name="pears", initial=0)
    assert apples.add(3, request_id="order-1").applied is expected_applied(strategy, True)
    assert pears.add(3, request_id="order-1").applied is expected_applied(strategy, True)
    assert (apples.value(), pears.value()) == (3, 3)
    assert apples.add(3, request_id="order-1").applied is expected_applied(strategy, False)
    assert (apples.value(), pears.value()) == (3, 3)


@pytest.mark.parametrize("strategy", TELLS_MISMATCH)
def test_request_id_with_another_amount_raises_mismatch(store: CounterStore, strategy: str) -> None:
    counter = make(store, strategy, initial=10)
    counter.add(5, request_id="order-9")
    with pytest.raises(RequestIdMismatch):
        counter.add(6, request_id="order-9")
    with pytest.raises(RequestIdMismatch):
        counter.add(-5, request_id="order-9")
    assert counter.value() == 15
    assert counter.add(5, request_id="order-9").applied is expected_applied(strategy, False)
    assert counter.value() == 15


# -- thresholds -------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", THRESHOLDS)
def test_threshold_exceeded_changes_nothing(store: CounterStore, strategy: str) -> None:
    counter = make(store, strategy, initial=5, floor=0, ceiling=10)
    assert (counter.floor, counter.ceiling) == (0, 10)
    with pytest.raises(ThresholdExceeded) as below:
        counter.add(-6, request_id=rid(strategy, "a"))
    with pytest.raises(ThresholdExceeded):
        counter.add(6, request_id=rid(strategy, "b"))
    assert below.value.value in (None, 5)
    assert counter.value() == 5
    # Inclusive bounds: reaching them is allowed.
    counter.add(-5, request_id=rid(strategy, "c"))
    assert counter.value() == 0
    counter.add(10, request_id=rid(strategy, "d"))
    assert counter.value() == 10
    # A refused id was not counted: it may be used again once the bound allows it.
    counter.add(-6, request_id=rid(strategy, "a"))
    assert counter.value() == 4


def contend(counter: Counter, strategy: str, amount: int) -> tuple[list[AddResult], int]:
    """6 threads each add ``amount`` 10 times; returns the acknowledged results and refusals."""
    acknowledged: list[AddResult] = []
    refused = 0
    lock = threading.Lock()

    def work(worker: int) -> None:
        nonlocal refused
        for op in range(10):
            try:
                result = counter.add(amount, request_id=rid(strategy, f"w{worker}-{op}"))
            except ThresholdExceeded:
                with lock:
                    refused += 1
            else:
                with lock:
                    acknowledged.append(result)

    run_threads(6, work)
    return acknowledged, refused


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
@pytest.mark.parametrize("strategy", THRESHOLDS + SHARD_COUNTS)
def test_floor_holds_under_contention(store: CounterStore, strategy: str) -> None:
    options = {"retry_delay": 0.001, **ROOMY.get(strategy, {})}
    counter = make(store, strategy, initial=30, floor=0, **options)
    acknowledged, refused = contend(counter, strategy, -1)
    assert (len(acknowledged), refused) == (30, 30)
    assert {r.applied for r in acknowledged} == {expected_applied(of(strategy), True)}
    assert counter.value() == 0
    values = [r.value for r in acknowledged if r.value is not None]
    assert all(v >= 0 for v in values)
    if strategy in RETURNS_VALUE:
        # Each acknowledged take returns the value it left: every one of 29..0 exactly once.
        assert sorted(values) == list(range(30))


@pytest.mark.parametrize("engine", ENGINES, indirect=True)
@pytest.mark.parametrize("strategy", THRESHOLDS + SHARD_COUNTS)
def test_ceiling_holds_under_contention(store: CounterStore, strategy: str) -> None:
    options = {"retry_delay": 0.001, **ROOMY.get(strategy, {})}
    counter = make(store, strategy, initial=0, ceiling=30, **options)
    acknowledged, refused = contend(counter, strategy, 1)
    assert (len(acknowledged), refused) == (30, 30)
    assert {r.applied for r in acknowledged} == {expected_applied(of(strategy), True)}
    assert counter.value() == 30
    values = [r.value for r in acknowledged if r.value is not None]
    if strategy in RETURNS_VALUE:
        assert sorted(values) == list(range(1, 31))


def test_collection_refuses_thresholds(store: CounterStore) -> None:
    assert not STRATEGIES["collection"].supports_thresholds
    with pytest.raises(NotSupported):
        store.counter("c", strategy="collection", floor=0)
    with pytest.raises(NotSupported):
        store.counter("c", strategy="collection", ceiling=30)
    with pytest.raises(NotSupported):
        store.counter("c", strategy="collection", floor=0, ceiling=30)


# -- lost answers -----------------------------------------------------------------------------

LOST = FaultPlan(lost_answer_rate=0.15, seed=20240611)
WORKERS, OPS = 4, 30  # 120 adds per run
AMOUNTS = (1, 2, 3, -1, 5)


# Who re-sends after a lost answer: botocore (standard mode, ``max_attempts`` 3 -- botocore
# counts re-tries, not sends) with the library's own ambiguity retries behind it, or -- with both
# switched off -- the application, through a new add() call with the same request id (so every
# lost answer exercises the window across calls).
RETRIERS: dict[str, tuple[int, dict[str, Any]]] = {
    "sdk": (3, {}),
    "app": (0, {"ambiguity_retries": 0}),
}


def lost_answer_run(
    ddb: DynamoDBLocal,
    table: str,
    strategy: str,
    amount_of: Callable[[int, int], int],
    retrier: str = "sdk",
    api: str = "sync",
    engine: str = "plain",
) -> tuple[int, dict[str, int], int, int]:
    """Add under lost answers, re-trying failed adds with the same id, as an application would.

    Returns (final value, ledger of acknowledged ids -> amount, lost answers injected, app
    retries). The ledger is kept by the test, independently of the library.
    """
    sdk_attempts, options = RETRIERS[retrier]
    client = fresh_client(ddb, api, retries={"mode": "standard", "max_attempts": sdk_attempts})
    store = store_on(client, table)
    # AWS-like: writers that conflict and retry at once would collide again in lockstep.
    delay = 0 if engine == "plain" else 0.002
    options = {"retry_delay": delay, **options, **ROOMY.get(strategy, {})}
    counter = make(store, strategy, initial=1000, **options)
    ledger: dict[str, int] = {}
    gave_up: list[str] = []
    app_retries = 0
    lock = threading.Lock()

    def work(worker: int) -> None:
        nonlocal app_retries
        for op in range(OPS):
            request_id = f"w{worker}-op{op}"
            amount = amount_of(worker, op)
            for _ in range(20):
                try:
                    counter.add(amount, request_id=rid(strategy, request_id))
                except (BotoCoreError, ClientError):
                    with lock:
                        app_retries += 1
                    continue
                with lock:
                    assert request_id not in ledger
                    ledger[request_id] = amount
                break
            else:
                with lock:
                    gave_up.append(request_id)

    with FaultInjector(client, on_engine(LOST, engine)) as faults:
        run_threads(WORKERS, work)
    assert gave_up == []
    assert len(ledger) == WORKERS * OPS
    return counter.value(), ledger, faults.stats["lost_answers"], app_retries


def lost_answer_cases() -> list[Any]:
    """Every idempotent strategy (and sharded at 1 shard) with both retriers on the sync API;
    the async API with botocore's re-sends (the same steps; the executor is what differs)."""
    cases = [
        pytest.param(s, r, "sync", id=f"sync-{s}-{r}")
        for s in [*IDEMPOTENT, "sharded:1"]
        for r in RETRIERS
    ]
    cases += [pytest.param(s, "sdk", "async", id=f"async-{s}-sdk") for s in IDEMPOTENT]
    cases = [pytest.param(*case.values, "plain", id=case.id) for case in cases]
    # AWS-like: botocore's re-sends, the sync API (the engine's answers differ, not the steps).
    cases += [
        pytest.param(s, "sdk", "sync", "aws-like", id=f"aws-like-{s}-sdk")
        for s in ["marker", "collection", "sharded"]
    ]
    return cases


@pytest.mark.parametrize(("strategy", "retrier", "api", "engine"), lost_answer_cases())
def test_lost_answers_leave_no_drift(
    ddb: DynamoDBLocal, table: str, strategy: str, retrier: str, api: str, engine: str
) -> None:
    final, ledger, lost, app_retries = lost_answer_run(
        ddb, table, strategy, lambda w, op: AMOUNTS[(w + op) % len(AMOUNTS)], retrier, api, engine
    )
    assert lost > 0, "the run must actually lose answers"
    if retrier == "app":
        # Nobody below the application re-sends: every lost answer came back as an error.
        assert app_retries == lost
    drift = final - (1000 + sum(ledger.values()))
    assert drift == 0


@pytest.mark.parametrize("retrier", list(RETRIERS))
def test_lost_answers_make_atomic_over_count(
    ddb: DynamoDBLocal, table: str, retrier: str, api: str
) -> None:
    # Every add is +1, so each lost answer (the server applied it, then botocore or the
    # application re-sent it) shows up as exactly one extra unit.
    final, ledger, lost, _ = lost_answer_run(ddb, table, "atomic", lambda w, op: 1, retrier, api)
    drift = final - (1000 + sum(ledger.values()))
    assert lost > 0
    assert drift > 0
    assert drift == lost


@pytest.mark.parametrize(("strategy", "api"), [(s, "sync") for s in ALL] + [("marker", "async")])
def test_create_recognises_its_own_write_after_lost_answers(
    ddb: DynamoDBLocal, table: str, strategy: str, api: str
) -> None:
    client = fresh_client(ddb, api, retries={"mode": "standard", "max_attempts": 10})
    store = store_on(client, table)
    retried: list[CallRecord] = []
    store.add_listener(lambda r: retried.append(r) if r.sdk_retries else None)
    # Every create is one transaction (sharded: the counter item and its shards) whose
    # ClientRequestToken is the create call's own (issue 18, item 3).
    operation = "TransactWriteItems"
    # 0.4: enough lost answers in 12 creates, without botocore backing off for a minute.
    plan = FaultPlan(lost_answer_rate=0.4, seed=3, operations=frozenset({operation}))
    # The rate may by chance never fire (bodies hold random tokens): the first answer is lost
    # in any case.
    first = LoseAnswers(operation, count=1).attach(client)
    with FaultInjector(client, plan):
        # In parallel only to keep botocore's retry backoff off the wall clock.
        run_threads(
            12, lambda i: store.counter(f"c{i}", strategy=strategy, retry_delay=0).create(initial=i)
        )
    first.detach(client)
    assert first.lost == 1
    # At least one create was re-sent by botocore after its write had landed: DynamoDB answers
    # the re-sent token with the first answer (nothing applied again), and create() returns
    # without CounterExists.
    assert any(r.operation == operation and r.error_code is None for r in retried)
    for i in range(12):
        assert store.counter(f"c{i}", strategy=strategy).value() == i


# -- counters that already exist as items -----------------------------------------------------


@pytest.fixture(params=["pk-only", "pk+sk"])
def foreign_table(request: pytest.FixtureRequest, client: Any) -> Iterator[tuple[str, bool]]:
    """A table created by plain boto3 (someone else's), with or without a sort key."""
    with_sort_key = request.param == "pk+sk"
    name = new_table_name("pk-sk" if with_sort_key else "pk-only")
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attributes = [{"AttributeName": "pk", "AttributeType": "S"}]
    if with_sort_key:
        keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attributes.append({"AttributeName": "sk", "AttributeType": "S"})
    client.create_table(
        TableName=name,
        KeySchema=keys,
        AttributeDefinitions=attributes,
        BillingMode="PAY_PER_REQUEST",
    )
    yield name, with_sort_key
    client.delete_table(TableName=name)


@pytest.mark.parametrize("strategy", ALL)
def test_counter_that_already_exists_as_a_plain_item(
    client: Any, foreign_table: tuple[str, bool], strategy: str
) -> None:
    table, with_sort_key = foreign_table
    key = {"pk": {"S": "abc123"}}
    if with_sort_key:
        key["sk"] = {"S": "#counter"}
    client.put_item(TableName=table, Item={**key, "quantity": {"N": "3"}})
    store = CounterStore(client, table, sort_key="sk" if with_sort_key else None)
    floor = 0 if STRATEGIES[strategy].supports_thresholds else None
    if strategy == "collection" and not with_sort_key:
        with pytest.raises(NotSupported):
            store.counter("abc123", strategy=strategy)
        return
    counter = store.counter("abc123", strategy=strategy, floor=floor)
    if strategy == "sharded":
        # Its value lives in shards that only create() writes: a plain item is not one.
        with pytest.raises(NotSupported):
            counter.add(2, request_id="order-1")
        with pytest.raises(NotSupported):
            counter.value()
        assert client.get_item(TableName=table, Key=key)["Item"]["quantity"] == {"N": "3"}
        return
    assert counter.value() == 3
    result = counter.add(2, request_id=rid(strategy, "order-1"))
    assert result.applied is expected_applied(strategy, True)
    assert counter.value() == 5
    if STRATEGIES[strategy].idempotent:
        again = counter.add(2, request_id="order-1")
        assert again.applied is expected_applied(strategy, False)
        assert counter.value() == 5
    if floor is not None:
        counter.add(-5, request_id=rid(strategy, "order-2"))
        with pytest.raises(ThresholdExceeded):
            counter.add(-1, request_id=rid(strategy, "order-3"))
        assert counter.value() == 0
    with pytest.raises(CounterExists):
        counter.create()
    counter.delete()
    assert "Item" not in client.get_item(TableName=table, Key=key, ConsistentRead=True)
