# mypy: disable-error-code="arg-type"
# (strategy ids come from parameter lists as plain str, and bad input is passed on purpose)
"""Bad input at every library entry point (SPEC section 6), table-driven.

Each case gets its documented exception, and a read-back (a consistent scan) shows the table
unchanged. Names and request ids never reach an expression string, however nasty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from conftest import ALL, IDEMPOTENT, new_table_name, scan_all
from dynamodb_counters import (
    STRATEGIES,
    CallRecord,
    CounterExists,
    CounterNotFound,
    CounterStore,
    InvalidInput,
    NotSupported,
    TableNotFound,
    ThresholdExceeded,
)
from dynamodb_counters import local as local_module
from dynamodb_counters.faults import FaultPlan
from dynamodb_counters.local import DynamoDBLocal, LocalEngineError, find_java, free_port

BIG = 10**38  # 39 digits: one more than DynamoDB numbers carry
MAX = 10**38 - 1  # 38 digits


def name_of_bytes(n: int) -> str:
    """A name of exactly ``n`` UTF-8 bytes, mostly two-byte characters."""
    return "é" * (n // 2) + "a" * (n % 2)


@pytest.fixture
def seeded(store: CounterStore, client: Any, table: str) -> Iterator[dict[str, Any]]:
    """A counter of every strategy, with one add each, and a snapshot of the table."""
    for strategy in ALL:
        counter = store.counter(strategy, strategy=strategy)
        counter.create(initial=5)
        counter.add(2, request_id="seed" if strategy in IDEMPOTENT else None)
    yield {"before": sorted_scan(client, table)}


def sorted_scan(client: Any, table: str) -> list[Any]:
    items = scan_all(client, table)
    # _created_by nonces and tags are stable: nothing in a counter changes without a write.
    return sorted(items, key=lambda i: (i["pk"]["S"], i.get("sk", {}).get("S", "")))


def unchanged(client: Any, table: str, seeded: dict[str, Any]) -> None:
    assert sorted_scan(client, table) == seeded["before"]


# -- store.counter(...): names, strategies, options, bounds ------------------------------------

COUNTER_CASES: list[tuple[str, dict[str, Any], type[Exception]]] = [
    ("name int", {"name": 5}, InvalidInput),
    ("name bytes", {"name": b"abc"}, InvalidInput),
    ("name None", {"name": None}, InvalidInput),
    ("name empty", {"name": ""}, InvalidInput),
    ("name 1025 bytes", {"name": name_of_bytes(1025)}, InvalidInput),
    ("name 1025 bytes ascii", {"name": "a" * 1025}, InvalidInput),
    ("name lone surrogate", {"name": "ab\ud800"}, InvalidInput),
    ("strategy unknown", {"strategy": "Atomic"}, InvalidInput),
    ("strategy None", {"strategy": None}, InvalidInput),
    ("strategy int", {"strategy": 1}, InvalidInput),
    ("option unknown", {"strategy": "occ_history", "histroy": 5}, InvalidInput),
    ("option of another strategy", {"strategy": "marker", "history": 5}, InvalidInput),
    ("history zero", {"strategy": "occ_history", "history": 0}, InvalidInput),
    ("history bool", {"strategy": "occ_history", "history": True}, InvalidInput),
    ("history str", {"strategy": "occ_history", "history": "5"}, InvalidInput),
    ("capacity negative", {"strategy": "set", "capacity": -1}, InvalidInput),
    ("capacity float", {"strategy": "set", "capacity": 5.0}, InvalidInput),
    ("marker_ttl zero", {"strategy": "marker", "marker_ttl": 0}, InvalidInput),
    ("marker_ttl negative", {"strategy": "marker", "marker_ttl": timedelta(days=-1)}, InvalidInput),
    ("marker_ttl str", {"strategy": "marker", "marker_ttl": "7d"}, InvalidInput),
    ("marker_ttl bool", {"strategy": "marker", "marker_ttl": True}, InvalidInput),
    ("max_attempts zero", {"max_attempts": 0}, InvalidInput),
    ("max_attempts bool", {"max_attempts": True}, InvalidInput),
    ("ambiguity_retries bool", {"ambiguity_retries": False}, InvalidInput),
    ("ambiguity_retries float", {"ambiguity_retries": 0.0}, InvalidInput),
    ("ambiguity_retries negative", {"ambiguity_retries": -1}, InvalidInput),
    ("retry_delay bool", {"retry_delay": False}, InvalidInput),
    ("retry_delay negative", {"retry_delay": -0.5}, InvalidInput),
    ("retry_delay str", {"retry_delay": "0.1"}, InvalidInput),
    ("retry_delay NaN", {"retry_delay": float("nan")}, InvalidInput),
    ("retry_delay infinite", {"retry_delay": float("inf")}, InvalidInput),
    ("marker_ttl NaN", {"strategy": "marker", "marker_ttl": float("nan")}, InvalidInput),
    ("marker_ttl 1e300 s", {"strategy": "marker", "marker_ttl": 1e300}, InvalidInput),
    ("floor above ceiling", {"floor": 5, "ceiling": 4}, InvalidInput),
    ("floor bool", {"floor": False}, InvalidInput),
    ("ceiling bool", {"ceiling": True}, InvalidInput),
    ("floor str", {"floor": "0"}, InvalidInput),
    ("floor float", {"floor": 0.0}, InvalidInput),
    ("floor 39 digits", {"floor": -BIG}, InvalidInput),
    ("ceiling 39 digits", {"ceiling": BIG}, InvalidInput),
    ("collection floor", {"strategy": "collection", "floor": 0}, NotSupported),
    ("collection ceiling", {"strategy": "collection", "ceiling": 10}, NotSupported),
]


@pytest.mark.parametrize(
    ("kwargs", "error"), [(k, e) for _, k, e in COUNTER_CASES], ids=[c[0] for c in COUNTER_CASES]
)
def test_counter_options_are_checked(
    store: CounterStore,
    client: Any,
    table: str,
    seeded: dict[str, Any],
    kwargs: dict[str, Any],
    error: type[Exception],
) -> None:
    kwargs = {"name": "bad", "strategy": "atomic", **kwargs}
    with pytest.raises(error):
        store.counter(kwargs.pop("name"), **kwargs)
    unchanged(client, table, seeded)


def test_zero_retry_delay_turns_backoff_off(store: CounterStore) -> None:
    for i, zero in enumerate((0, 0.0, timedelta(0))):
        counter = store.counter(f"c{i}", strategy="occ", retry_delay=zero)
        counter.create()
        assert counter._current().retry_delay == 0.0


@pytest.mark.parametrize("strategy", ALL)
def test_limits_that_are_fine(store: CounterStore, strategy: str) -> None:
    """The largest valid name (1024 UTF-8 bytes), id (255 characters) and amount (38 digits)."""
    for name in (name_of_bytes(1024), "a" * 1024, "€" * 341 + "a"):
        assert len(name.encode()) == 1024
        counter = store.counter(name, strategy=strategy)
        counter.create(initial=-MAX)
        request_id = "r" * 255 if strategy in IDEMPOTENT else None
        counter.add(MAX, request_id=request_id)
        counter.add(MAX, request_id=request_id)
        expected = 0 if strategy in IDEMPOTENT else MAX
        assert counter.value() == expected
        counter.delete()


# -- create / add / delete with bad arguments --------------------------------------------------

AMOUNTS: list[tuple[str, Any]] = [
    ("zero", 0),
    ("true", True),
    ("false", False),
    ("float", 1.0),
    ("str", "1"),
    ("None", None),
    ("39 digits", BIG),
    ("minus 39 digits", -BIG),
    ("decimal-like", 2.5),
]
REQUEST_IDS: list[tuple[str, Any]] = [
    ("empty", ""),
    ("256 chars", "r" * 256),
    ("int", 7),
    ("bytes", b"id"),
    ("lone surrogate", "\udc80"),
]
INITIALS: list[tuple[str, Any]] = [
    ("str", "1"),
    ("float", 1.0),
    ("bool", True),
    ("39 digits", BIG),
    ("None", None),
]


@pytest.mark.parametrize("strategy", ALL)
def test_bad_arguments_change_nothing(
    store: CounterStore, client: Any, table: str, seeded: dict[str, Any], strategy: str
) -> None:
    counter = store.counter(strategy, strategy=strategy)
    request_id = "fresh" if strategy in IDEMPOTENT else None
    for _, amount in AMOUNTS:
        with pytest.raises(InvalidInput):
            counter.add(amount, request_id=request_id)
    for _, bad_id in REQUEST_IDS:
        with pytest.raises(InvalidInput):
            counter.add(1, request_id=bad_id)
    if strategy not in IDEMPOTENT:
        with pytest.raises(NotSupported):
            counter.add(1, request_id="order-1")
    for _, initial in INITIALS:
        with pytest.raises(InvalidInput):
            store.counter("new", strategy=strategy).create(initial=initial)
    with pytest.raises(CounterExists):
        counter.create(initial=5)
    missing = store.counter("missing", strategy=strategy)
    with pytest.raises(CounterNotFound):
        missing.value()
    with pytest.raises(CounterNotFound):
        missing.delete()
    if strategy != "collection":  # collection's add does not check (documented)
        with pytest.raises(CounterNotFound):
            missing.add(1, request_id=request_id)
    unchanged(client, table, seeded)


@pytest.mark.parametrize("strategy", [s for s in ALL if STRATEGIES[s].supports_thresholds])
def test_initial_outside_bounds(
    store: CounterStore, client: Any, table: str, seeded: dict[str, Any], strategy: str
) -> None:
    bounded = store.counter("bounded", strategy=strategy, floor=0, ceiling=10)
    for initial in (-1, 11, BIG, -BIG):
        with pytest.raises(InvalidInput):
            bounded.create(initial=initial)
    unchanged(client, table, seeded)
    bounded.create(initial=10)  # inclusive bounds
    store.counter("bounded0", strategy=strategy, floor=0, ceiling=0).create(initial=0)


def test_sum_beyond_38_digits_is_a_threshold(store: CounterStore) -> None:
    """Each amount is valid, but their sum needs 39 digits: DynamoDB refuses the write, and the
    library says so as its own error (SPEC section 7), never a bare ValidationException."""
    counter = store.counter("huge", strategy="atomic")
    counter.create(initial=MAX)
    with pytest.raises(ThresholdExceeded, match="38-digit"):
        counter.add(2)
    assert counter.value() == MAX


# -- the store itself ----------------------------------------------------------------------------

STORE_CASES: list[tuple[str, dict[str, Any]]] = [
    ("table int", {"table_name": 5}),
    ("table too short", {"table_name": "ab"}),
    ("table too long", {"table_name": "t" * 256}),
    ("client None", {"client": None}),
    ("client not a client", {"client": object()}),
    ("same keys", {"partition_key": "pk", "sort_key": "pk"}),
    ("value is a key", {"value_attribute": "sk"}),
    ("empty partition key", {"partition_key": ""}),
    ("partition key int", {"partition_key": 1}),
    ("empty counter sort value", {"counter_sort_value": ""}),
]


@pytest.mark.parametrize("kwargs", [k for _, k in STORE_CASES], ids=[c[0] for c in STORE_CASES])
def test_store_arguments_are_checked(client: Any, kwargs: dict[str, Any]) -> None:
    args = {"client": client, "table_name": "counters", **kwargs}
    with pytest.raises(InvalidInput):
        CounterStore(args.pop("client"), args.pop("table_name"), **args)


def test_ensure_table_refuses_a_table_with_other_keys(client: Any, table: str) -> None:
    before = client.describe_table(TableName=table)["Table"]["KeySchema"]
    with pytest.raises(InvalidInput, match="sort_key"):
        CounterStore(client, table, sort_key=None).ensure_table()
    assert client.describe_table(TableName=table)["Table"]["KeySchema"] == before


def test_collection_needs_a_sort_key(client: Any) -> None:
    with pytest.raises(NotSupported):
        CounterStore(client, "pk-only", sort_key=None).counter("c", strategy="collection")


# -- missing table, unreachable endpoint -----------------------------------------------------------


@pytest.mark.parametrize("strategy", ALL)
def test_missing_table(client: Any, strategy: str) -> None:
    missing = new_table_name("absent")
    counter = CounterStore(client, missing).counter("c", strategy=strategy)
    for call in (
        lambda: counter.create(initial=1),
        lambda: counter.add(1),
        counter.value,
        counter.delete,
    ):
        with pytest.raises(TableNotFound, match="ensure_table"):
            call()
    assert missing not in client.list_tables()["TableNames"]


@pytest.mark.parametrize("strategy", ALL)
def test_unreachable_endpoint_passes_botocore_error_through(strategy: str) -> None:
    """Nothing listens on the port: botocore's EndpointConnectionError reaches the caller
    unchanged (not a CounterError: the library has no better word for it), quickly."""
    engine = DynamoDBLocal(port=free_port())  # never started
    client = engine.client(connect_timeout=1, read_timeout=1, retries={"total_max_attempts": 1})
    store = CounterStore(client, "counters")
    counter = store.counter("c", strategy=strategy, retry_delay=0)
    calls: list[Callable[[], Any]] = [
        store.ensure_table,
        lambda: counter.create(initial=1),
        lambda: counter.add(1),
        counter.value,
        counter.delete,
    ]
    for call in calls:
        with pytest.raises(EndpointConnectionError):
            call()


# -- the local engine and the fault plan ---------------------------------------------------------


def test_missing_java(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    with pytest.raises(LocalEngineError, match=r"Java 17\+ is needed.*JAVA_HOME"):
        find_java()
    engine = DynamoDBLocal()
    with pytest.raises(LocalEngineError, match="Java"):
        engine.start()
    assert not engine.running
    monkeypatch.delenv("JAVA_HOME")
    with pytest.raises(LocalEngineError, match="install a JDK"):
        find_java()


def test_local_dir_without_the_jar(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DYNAMODB_LOCAL_DIR", str(tmp_path))
    with pytest.raises(LocalEngineError, match="DYNAMODB_LOCAL_DIR"):
        local_module.install()


@pytest.mark.parametrize(
    "rates",
    [
        {"lost_answer_rate": -0.1},
        {"throttle_rate": 1.5},
        {"conflict_rate": True},
        {"lost_answer_rate": "0.1"},
        {"lost_answer_rate": 0.6, "throttle_rate": 0.6},
    ],
)
def test_fault_plan_rates_are_checked(rates: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        FaultPlan(**rates)


# -- names and ids are values, never expression text ---------------------------------------------

NASTY = [
    ") OR attribute_exists(pk",
    "#pk = :pk OR #v",
    ":amount) OR (:amount",
    "'; DROP TABLE counters; --",
    'quantity" , size(pk',
    "名前 ✓ \u202e\t\n",
]

EXPRESSION_KEYS = (
    "ConditionExpression",
    "UpdateExpression",
    "KeyConditionExpression",
    "ProjectionExpression",
    "FilterExpression",
)


def expressions(params: Any) -> Iterator[str]:
    if isinstance(params, dict):
        for key, value in params.items():
            if key in EXPRESSION_KEYS or key == "ExpressionAttributeNames":
                yield str(value)
            else:
                yield from expressions(value)
    elif isinstance(params, list):
        for value in params:
            yield from expressions(value)


@pytest.mark.parametrize("strategy", ALL)
def test_names_and_ids_never_reach_expressions(
    client: Any, table: str, store: CounterStore, strategy: str
) -> None:
    records: list[CallRecord] = []
    store.add_listener(records.append)
    idempotent = strategy in IDEMPOTENT
    bounds = {"floor": -100, "ceiling": 100} if STRATEGIES[strategy].supports_thresholds else {}
    for nasty in NASTY:
        counter = store.counter(nasty, strategy=strategy, **bounds)
        counter.create(initial=3)
        first = counter.add(4, request_id=nasty if idempotent else None)
        counter.add(4, request_id=nasty if idempotent else None)
        assert first.applied is not False
        assert counter.value() == (7 if idempotent else 11)
        counter.delete()
        with pytest.raises(CounterNotFound):
            counter.value()
    store.remove_listener(records.append)
    assert len(records) >= 5 * len(NASTY)
    for record in records:
        for text in expressions(record.params):
            for nasty in NASTY:
                assert nasty not in text, (record.operation, text)
    assert [i for i in scan_all(client, table) if i["pk"]["S"] in NASTY] == []
